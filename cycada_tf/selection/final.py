"""A seed's final model (exported, the table's final row), chosen without target labels among the source
model and the adapted models that finished, all compared on common ground: each candidate reads the same raw
target training images as its exported model does (through G_T->S where it was trained on that view), and
each criterion scores what it predicts there."""

import hashlib
import os

import numpy as np
import tensorflow as tf

from cycada_tf.config import experiment_config as config_lib
from cycada_tf.train import summaries
from cycada_tf.selection import reverse
from cycada_tf.selection.criteria import InformationMaximisation, agreement, choose

# Criteria the final model can be chosen by (--final_criterion); tools/decide.py computes them all.
CRITERIA = config_lib.FINAL_CRITERIA
TRAINS_A_NETWORK = ("veto", "learnability", "reverse_validation", "reverse_validation_translated")  # reverse_steps
# --final_criterion=veto: the latest adapted stage ships unless both of these score it no higher than the source
# model (+ --final_margin); then the stage before it is tried, and the source model ships if all are vetoed.
VETO = ("learnability", "reverse_validation")
# The choice's time for the run's time left, in the stages' prior unit (a pixel epoch of the task, stages/base.
# Stage.prior) at the defaults, by the pixel stage's precision: the veto's three fresh networks per candidate it
# looks at dominate it, and they train in float32 whatever --precision is, so against a pixel epoch in mixed
# precision the choice costs about twice as much (docs/speed.md). Segmentation: measured in float32 only.
PRIOR_COST = {"digits": {"float32": 1.4, "mixed": 2.8}, "segmentation": {"float32": 1.5, "mixed": 1.5}}


def prior_cost(task, pixel_precision):
    """The choice's prior cost (PRIOR_COST) for `task` when the pixel stage computes in `pixel_precision`;
    None for a task without one."""
    costs = PRIOR_COST.get(task)
    return None if costs is None else costs["float32" if pixel_precision == "float32" else "mixed"]


MIXVAL_WEIGHT = 0.55  # MixVal's mixing weight of the first image (Hu et al. 2023)
MIXVAL_PAIRS = 1000


class Candidates:
    """The raw target images every criterion reads (task.selection_images) and, per candidate stage, its
    predicted classes there and its information maximisation, computed once; `source` names the source model,
    the candidate the veto weighs every adapted one against."""

    def __init__(self, trial, stages, source):
        self.trial, self.task, self.source = trial, trial.task, source
        self.images = self.task.selection_images()
        self.labels, self.information, self.values = {}, {}, {}
        self.margin = trial.config.final_margin
        for stage in stages:
            net, view = trial.network(stage), trial.view_of(stage)
            score, labels = InformationMaximisation(), []
            for x in self.images:
                p = self.task.probabilities(net, x, view)
                score.update(p)
                labels.append(np.argmax(p, axis=-1).astype(np.uint8))
            self.labels[stage], self.information[stage] = labels, score.result()

    def criterion(self, name, stage):
        """The value of criterion `name` for candidate `stage` (larger: better), or None if it does not apply;
        computed once. veto's value: how many of VETO score the stage above the source model (the source
        model itself: 0)."""
        if (name, stage) not in self.values:
            self.values[(name, stage)] = self._compute(name, stage)
        return self.values[(name, stage)]

    def votes(self, stage):
        """{criterion of VETO: (its value for `stage`, its value for the source model)}."""
        return {name: (self.criterion(name, stage), self.criterion(name, self.source)) for name in VETO}

    def _compute(self, name, stage):
        if name == "veto":
            if stage == self.source:
                return 0.0
            if self.source not in self.labels:
                return float(len(VETO))
            return float(sum(mine > source + self.margin for mine, source in self.votes(stage).values()))
        if name == "information_maximisation":
            return self.information[stage]
        if name == "agreement":
            return agreement(np.concatenate([a.ravel() for a in self.labels[stage]]),
                             [np.concatenate([a.ravel() for a in self.labels[o]]) for o in self.labels if o != stage])
        if name == "learnability":
            return reverse.learnability(self.task, self.images, self.labels[stage], self.trial.seed)
        if name == "reverse_validation":
            return reverse.score(self.task, self.images, self.labels[stage], self.trial.seed)
        if name == "reverse_validation_translated":  # scored on G_S->T(x_s): labelled target-looking images
            if not self.trial.has_generators():
                return None
            return reverse.score(self.task, self.images, self.labels[stage], self.trial.seed,
                                 translate=self.trial.generators()[0])
        if name == "mixval":
            return self.mixval(stage)
        if name == "translated_source":  # the candidate's score on G_S->T(x_s) of the source test split
            if not self.trial.has_generators():
                return None
            g_st, view = self.trial.generators()[0], self.trial.view_of(stage)
            both = g_st if view is None else (lambda x, training=False: view(g_st(x, training=False),
                                                                               training=False))
            return self.task.scores(self.trial.network(stage), "source", translate=both).get(self.task.score_key)
        raise ValueError(f"--final_criterion must be one of {', '.join(CRITERIA)}, got {name!r}")

    def mixval(self, stage):
        """MixVal (Hu et al., NeurIPS 2023), its inter-cluster probe: images mixed MIXVAL_WEIGHT : 1 - that
        from pairs the candidate labels differently; the fraction it gives the first image's label. Images of
        one shape only (classification); None for label maps."""
        labels = np.concatenate(self.labels[stage])
        if labels.ndim != 1:
            return None
        images = np.concatenate([np.asarray(x) for x in self.images])
        rng = np.random.RandomState(self.trial.seed)
        first, second = rng.randint(len(images), size=(2, 4 * MIXVAL_PAIRS))
        differ = labels[first] != labels[second]
        first, second = first[differ][:MIXVAL_PAIRS], second[differ][:MIXVAL_PAIRS]
        if not len(first):
            return 0.0
        mixed = MIXVAL_WEIGHT * images[first] + (1.0 - MIXVAL_WEIGHT) * images[second]
        net, view = self.trial.network(stage), self.trial.view_of(stage)
        predicted = np.argmax(self.task.probabilities(net, tf.constant(mixed), view), axis=-1)
        return float(np.mean(predicted == labels[first]))


def _made_from(trial, stages, criterion):
    """What a decision is computed from: the criterion, --final_margin, the fresh networks' steps and each
    candidate's done.json (as a digest: a stage that runs again writes a new one). A rerun with the same (the
    --final_* flags may change on a rerun) has the decision already in final.json, and does not compute it
    again."""
    def digest(stage):
        with open(os.path.join(trial.dir, stage, "done.json"), "rb") as handle:
            return hashlib.sha256(handle.read()).hexdigest()[:16]
    return {"criterion": criterion, "margin": trial.config.final_margin, "reverse_steps": trial.task.reverse_steps,
            "done": {stage: digest(stage) for stage in stages}}


def pick(criterion, values, source):
    """The candidate criterion `criterion` picks from `values` ({stage: value}, in the pipeline's order): for
    veto the latest stage with a vote (the source model, `source`, if none has one), else the largest value."""
    if criterion == "veto":
        return next((stage for stage in reversed(list(values)) if values[stage] > 0), source)
    return max(values, key=values.get)


def _values(scored, criterion, stages):
    """{stage: value} of `criterion`; for veto only the stages it looks at: the latest first, down to the
    first one not vetoed, and the source model (each costs three fresh networks: learnability's two folds
    and reverse validation's one)."""
    if criterion != "veto":
        return {stage: scored.criterion(criterion, stage) for stage in stages}
    looked = [scored.source]
    for stage in reversed([stage for stage in stages if stage != scored.source]):
        looked.append(stage)
        if scored.criterion(criterion, stage) > 0:
            break
    return {stage: scored.criterion(criterion, stage) for stage in stages if stage in looked}


def _describe(criterion, decision, scored):
    if criterion != "veto":
        return ", ".join(f"{stage} {value:.4f}" for stage, value in decision["criterion"].items())
    return "; ".join(f"{stage} above the source model on {value:.0f} of {len(VETO)} ("
                     + ", ".join(f"{name} {mine:.4f} against {source:.4f}"
                                 for name, (mine, source) in scored.votes(stage).items()) + ")"
                     for stage, value in reversed(decision["criterion"].items()) if stage != scored.source)


def final_model(trial, results, candidates, criterion=None):
    """This seed's final model among the finished `candidates` (stage names in the pipeline's order, the
    source model first), by `criterion` (default --final_criterion): the source model unless an adapted one
    beats it by more than --final_margin. What the target test labels would have picked is recorded beside it
    (reporting only). None until an adapted candidate finished (the source model alone is not a choice)."""
    config, key, source = trial.config, trial.task.score_key, candidates[0]
    criterion = criterion or config.final_criterion
    stages = [stage for stage in candidates if stage in results]
    if not [stage for stage in stages if stage != source]:
        return None
    made_from = _made_from(trial, stages, criterion)
    earlier = trial.final()
    if earlier and earlier.get("made_from") == made_from:
        summaries.log(f"seed {trial.seed}: final model: '{earlier['choice']}', chosen before from these same "
                      "finished stages (final.json), kept")
        return earlier
    scored = Candidates(trial, stages, source)
    values = _values(scored, criterion, stages)
    oracle = {stage: results[stage][key] for stage in stages if key in results[stage]}
    decision = choose(values, oracle if len(oracle) == len(stages) else None, pick(criterion, values, source))
    decision["criterion_name"] = criterion
    decision["made_from"] = made_from
    if criterion in TRAINS_A_NETWORK:
        decision["reverse_steps"] = trial.task.reverse_steps  # tools/decide.py recomputes with the run's steps
    if criterion == "veto":
        decision["votes"] = {stage: {name: [round(float(v), 6) for v in pair]
                                     for name, pair in scored.votes(stage).items()}
                             for stage in values if stage != source}
        decision["kept_source"] = decision["choice"] == source
    elif source in values and decision["choice"] != source and (
            values[decision["choice"]] <= values[source] + config.final_margin):
        decision["choice"], decision["kept_source"] = source, True
    if "oracle_choice" in decision:
        decision["agrees"] = decision["oracle_choice"] == decision["choice"]
    summaries.log(f"seed {trial.seed}: final model: '{decision['choice']}' ({criterion}: "
                  + _describe(criterion, decision, scored)
                  + ("; no adapted model beats the source model by the margin" if decision.get("kept_source") else "")
                  + (f"; the oracle would pick '{decision['oracle_choice']}')" if "oracle_choice" in decision
                     else ")"))
    if key in results[decision["choice"]]:
        decision[key] = results[decision["choice"]][key]
    return decision
