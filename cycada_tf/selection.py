"""Decisions a run makes from data, with criteria that read no target label (DESIGN.md, rules of the method).

The criterion is information maximisation on the unlabelled target training images (Krause et al. 2010; the
objective SHOT adapts with): I(x; y) = H(E_x[p(y|x)]) - E_x[H(p(y|x))], in nats. High when every prediction
is confident and the predictions spread over the classes; low for a model that is unsure, or that puts most
images into a few classes. Beside each decision the run records what the target test labels would have
picked ("oracle"), for reporting only, so users see how often the criterion agrees.
"""

import numpy as np

from cycada_tf import summaries

FINAL_CANDIDATES = ("target", "feature", "self_train")  # the adapted models a seed's final model is one of


class InformationMaximisation:
    """I(x; y) accumulated over batches of class probabilities (..., K) (segmenters: every pixel an example),
    without keeping them: the marginal's sum and the entropies' sum."""

    def __init__(self):
        self.total, self.entropy, self.count = 0.0, 0.0, 0

    def update(self, probabilities):
        p = np.asarray(probabilities, np.float64)
        p = np.clip(p.reshape(-1, p.shape[-1]), 1e-12, 1.0)
        self.total = self.total + p.sum(axis=0)
        self.entropy += float(-(p * np.log(p)).sum())
        self.count += len(p)
        return self

    def mean_entropy(self):
        """E_x[H(p(y|x))], in nats (lower: more confident)."""
        return self.entropy / self.count

    def result(self):
        marginal = self.total / self.count
        return float(-(marginal * np.log(marginal)).sum() - self.entropy / self.count)


def information_maximisation(probabilities):
    """I(x; y) of class probabilities (N, K), in nats."""
    return InformationMaximisation().update(probabilities).result()


def choose(criteria, oracle=None):
    """{"choice": the key of the largest criterion, "criterion": criteria, "oracle_choice": the key of the
    largest `oracle` value (target test scores, reporting only), "agrees": whether they match}."""
    choice = max(criteria, key=criteria.get)
    result = {"choice": choice, "criterion": {k: round(float(v), 6) for k, v in criteria.items()}}
    if oracle:
        best = max(oracle, key=oracle.get)
        result.update(oracle_choice=best, oracle={k: round(float(v), 6) for k, v in oracle.items()},
                      agrees=best == choice)
    return result


def choose_direction(trial, f_s, g_ts):
    """--pixel_direction=auto's decision, made without target labels: t2s when f_S is more decisive on
    G_T->S(x_t) than on x_t itself (information maximisation over the target training images), i.e. when
    mapping target images into the source domain makes them more source-like to the source model; else s2t.
    The oracle's view (f_S's target test score either way) is recorded beside it, for reporting only."""
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


def final_model(trial, results, candidates=FINAL_CANDIDATES):
    """Which finished adapted model is this seed's result (exported, the table's final row), chosen without
    target labels: the largest information maximisation on the target training images, as each model reads
    them. Self-training maximises a form of it, so it is picked unless it collapsed; what the target test
    labels would have picked is recorded beside it (reporting only). Written to seed_<k>/final.json by the
    chief (what export reads); None when no candidate finished."""
    key = trial.task.score_key
    stages = [stage for stage in candidates if stage in results]
    if not stages:
        return None
    criteria = {stage: trial.task.information_maximisation(trial.network(stage), trial.view_of(stage))
                for stage in stages}
    oracle = {stage: results[stage][key] for stage in stages if key in results[stage]}
    decision = choose(criteria, oracle if len(oracle) == len(stages) else None)
    summaries.log(f"seed {trial.seed}: final model: '{decision['choice']}' (label-free criterion"
                  + (f"; the oracle would pick '{decision['oracle_choice']}')" if "oracle_choice" in decision
                     else ")"))
    if key in results[decision["choice"]]:
        decision[key] = results[decision["choice"]][key]
    return decision
