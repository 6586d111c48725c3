"""--pixel_direction=auto: which side of the translators the target model lives on, chosen without labels."""

from cycada_tf.train import summaries
from cycada_tf.selection.criteria import choose


def choose_direction(trial, f_s, g_ts):
    """t2s when f_S is more decisive on G_T->S(x_t) than on x_t itself (information maximisation over the
    target training images), i.e. when mapping target images into the source domain makes them more
    source-like to the source model; else s2t. The oracle's view (f_S's target test score either way) is
    recorded beside it, for reporting only."""
    c, task = trial.config, trial.task
    criteria = {"s2t": task.information_maximisation(f_s), "t2s": task.information_maximisation(f_s, g_ts)}
    oracle = None
    if task.target_spec.labelled:
        oracle = {direction: task.scores(f_s, "target", translate=view).get(task.score_key)
                  for direction, view in (("s2t", None), ("t2s", g_ts))}
        oracle = oracle if None not in oracle.values() else None
    decision = choose(criteria, oracle)
    given = c.pixel_direction != "auto"
    if given:
        decision["choice"] = c.pixel_direction  # given by the flag; the criterion is only recorded
    summaries.log(f"pixel direction: {decision['choice']} ({'--pixel_direction' if given else 'label-free criterion'}"
                  f"; information maximisation of f_S on x_t {decision['criterion']['s2t']:.3f}, on G_T->S(x_t) "
                  f"{decision['criterion']['t2s']:.3f}"
                  + (f"; the oracle would pick {decision['oracle_choice']})" if oracle else ")"))
    return decision
