"""A seed's final model (exported, the table's final row), chosen without target labels among the source
model and the adapted models that finished, all compared on common ground: each candidate reads the same raw
target training images as its exported model does (through G_T->S where it was trained on that view), and
each criterion scores what it predicts there."""

import numpy as np
import tensorflow as tf

from cycada_tf import config as config_lib, summaries
from cycada_tf.selection import reverse
from cycada_tf.selection.criteria import InformationMaximisation, agreement, choose

# Criteria the final model can be chosen by (--final_criterion); tools/decide.py computes them all.
CRITERIA = config_lib.FINAL_CRITERIA
MIXVAL_WEIGHT = 0.55  # MixVal's mixing weight of the first image (Hu et al. 2023)
MIXVAL_PAIRS = 1000


class Candidates:
    """The raw target images every criterion reads (task.selection_images) and, per candidate stage, its
    predicted classes there and its information maximisation, computed once."""

    def __init__(self, trial, stages):
        self.trial, self.task = trial, trial.task
        self.images = self.task.selection_images()
        self.labels, self.information = {}, {}
        for stage in stages:
            net, view = trial.network(stage), trial.view_of(stage)
            score, labels = InformationMaximisation(), []
            for x in self.images:
                p = self.task.probabilities(net, x, view)
                score.update(p)
                labels.append(np.argmax(p, axis=-1).astype(np.uint8))
            self.labels[stage], self.information[stage] = labels, score.result()

    def criterion(self, name, stage):
        """The value of criterion `name` for candidate `stage` (larger: better), or None if it does not apply."""
        if name == "information_maximisation":
            return self.information[stage]
        if name == "agreement":
            return agreement(np.concatenate([a.ravel() for a in self.labels[stage]]),
                             [np.concatenate([a.ravel() for a in self.labels[o]]) for o in self.labels if o != stage])
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


def final_model(trial, results, candidates, criterion=None):
    """This seed's final model among the finished `candidates` (stage names, the source model among them):
    the largest `criterion` (default --final_criterion), the source model unless an adapted one beats it by
    more than --final_margin. What the target test labels would have picked is recorded beside it (reporting
    only). None until an adapted candidate finished (the source model alone is not a choice)."""
    config, key = trial.config, trial.task.score_key
    criterion = criterion or config.final_criterion
    stages = [stage for stage in candidates if stage in results]
    if not [stage for stage in stages if stage != "source"]:
        return None
    scored = Candidates(trial, stages)
    values = {stage: scored.criterion(criterion, stage) for stage in stages}
    oracle = {stage: results[stage][key] for stage in stages if key in results[stage]}
    decision = choose(values, oracle if len(oracle) == len(stages) else None)
    decision["criterion_name"] = criterion
    if criterion.startswith("reverse_validation"):
        decision["reverse_steps"] = trial.task.reverse_steps  # tools/decide.py recomputes with the run's steps
    if "source" in values and decision["choice"] != "source" and (
            values[decision["choice"]] <= values["source"] + config.final_margin):
        decision["choice"], decision["kept_source"] = "source", True
        if "oracle_choice" in decision:
            decision["agrees"] = decision["oracle_choice"] == "source"
    summaries.log(f"seed {trial.seed}: final model: '{decision['choice']}' ({criterion}: "
                  + ", ".join(f"{stage} {value:.4f}" for stage, value in decision["criterion"].items())
                  + ("; no adapted model beats the source model by the margin" if decision.get("kept_source") else "")
                  + (f"; the oracle would pick '{decision['oracle_choice']}')" if "oracle_choice" in decision
                     else ")"))
    if key in results[decision["choice"]]:
        decision[key] = results[decision["choice"]][key]
    return decision
