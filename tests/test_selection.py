"""The final model's choice (selection/): reverse validation ranks a candidate's labels by how right they are,
every candidate is compared on the same images, the source model is kept unless beaten by the margin, and
tools/decide.py reproduces a run's own decision from its saved weights."""

import json
import os
import tempfile
import types

import keras
import numpy as np
import pytest

from cycada_tf.selection import criteria, final, reverse

CLASSES = 3


def _blobs(n, shift, seed):
    """n points of each of CLASSES Gaussian blobs in 2-D (the source domain shifted by `shift`)."""
    rng = np.random.RandomState(seed)
    centres = np.array([[0.0, 3.0], [3.0, -2.0], [-3.0, -2.0]])
    labels = np.repeat(np.arange(CLASSES), n)
    points = centres[labels] + rng.normal(size=(len(labels), 2)) + shift
    return points.astype(np.float32), labels


class BlobTask:
    """The task hooks selection/ calls, on 2-D points: target points unshifted, source points shifted."""
    score_key, ignore_label, num_classes = "accuracy", None, CLASSES
    reverse_steps, reverse_batch_size = 200, 32

    def __init__(self):
        self.target, self.target_labels = _blobs(60, 0.0, 1)
        self.source, self.source_labels = _blobs(60, 0.7, 2)

    def selection_images(self):
        return [self.target[:90], self.target[90:]]

    def probabilities(self, net, x, view=None):
        return net(x)

    def reverse_network(self):
        net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, activation="relu"),
                                keras.layers.Dense(CLASSES)])
        return net

    def reverse_data(self, images, labels):
        return np.concatenate(images), np.concatenate(labels).astype(np.int32)

    def reverse_batch(self, data, rng):
        pick = rng.randint(len(data[0]), size=self.reverse_batch_size)
        return data[0][pick], data[1][pick]

    def reverse_score(self, net, translate=None):
        return float(np.mean(np.argmax(net(self.source), axis=-1) == self.source_labels))


def _labeller(task, wrong_fraction):
    """A 'network' whose classes are the target points' true ones but in the leftmost `wrong_fraction` of each
    blob, given the next class: a confusion of a region of the input, as a model's errors are (label noise
    scattered at random would be outvoted by its neighbours and go unseen)."""
    wrong = np.zeros(len(task.target), bool)
    for k in range(CLASSES):
        members = np.flatnonzero(task.target_labels == k)
        order = members[np.argsort(task.target[members, 0])]
        wrong[order[:int(round(wrong_fraction * len(members)))]] = True
    labels = np.where(wrong, (task.target_labels + 1) % CLASSES, task.target_labels)
    table = {tuple(p): k for p, k in zip(task.target.round(5), labels)}

    def net(x):
        return np.eye(CLASSES, dtype=np.float32)[[table[tuple(p)] for p in np.asarray(x).round(5)]]
    return net


def _batches(task, net):
    return [np.argmax(net(x), axis=-1) for x in task.selection_images()]


def test_reverse_validation_ranks_labels_by_how_right_they_are():
    task = BlobTask()
    scores = [reverse.score(task, task.selection_images(), _batches(task, _labeller(task, wrong)), seed=0)
              for wrong in (0.0, 0.3, 0.6)]
    assert scores[0] > 0.9 and scores[0] > scores[1] > scores[2]
    collapsed = [np.zeros(len(x), np.int64) for x in task.selection_images()]
    assert reverse.score(task, task.selection_images(), collapsed, seed=0) == pytest.approx(1 / 3, abs=0.01)


def test_reverse_validation_is_repeatable():
    task = BlobTask()
    labels = _batches(task, _labeller(task, 0.3))
    assert reverse.score(task, task.selection_images(), labels, 3) == reverse.score(
        task, task.selection_images(), labels, 3)


class DropoutBlobTask(BlobTask):
    """BlobTask whose network has dropout (its own random state, as LeNet's)."""

    def reverse_network(self):
        return keras.Sequential([keras.Input((2,)), keras.layers.Dense(16, activation="relu"),
                                 keras.layers.Dropout(0.3), keras.layers.Dense(CLASSES)])


def test_each_fit_on_the_reused_network_is_the_fit_on_a_fresh_one():
    # one network and traced step per task and seed, put back to its start for every fit: the weights, the
    # optimizer, dropout's random state and the global random state after it are a fresh network's
    import random
    shared = DropoutBlobTask()
    for wrong in (0.0, 0.6, 0.3):
        labels = _batches(shared, _labeller(shared, wrong))
        reused = reverse._fit(shared, shared.selection_images(), labels, seed=4)
        after_reused = (random.random(), np.random.rand())
        fresh = reverse._fit(DropoutBlobTask(), shared.selection_images(), labels, seed=4)
        after_fresh = (random.random(), np.random.rand())
        assert all(np.array_equal(a, b) for a, b in zip(reused.get_weights(), fresh.get_weights())), wrong
        assert after_reused == after_fresh
    assert len(shared._reverse_fits) == 1


def test_learnability_prefers_labels_that_follow_the_clusters_and_counts_chance_as_nothing():
    task = BlobTask()
    right, *wrong = [reverse.learnability(task, task.selection_images(), _batches(task, _labeller(task, w)), 0)
                     for w in (0.0, 0.3, 0.6)]
    # right labels put their boundaries in the gaps between blobs: the held-out half is predicted as labelled
    assert right > 0.95 and all(right > other + 0.05 for other in wrong)
    collapsed = [np.zeros(len(x), np.int64) for x in task.selection_images()]
    assert reverse.learnability(task, task.selection_images(), collapsed, 0) == 0.0
    scattered = [np.random.RandomState(k).randint(CLASSES, size=len(x)) for k, x in
                 enumerate(task.selection_images())]
    assert abs(reverse.learnability(task, task.selection_images(), scattered, 0)) < 0.15
    labels = _batches(task, _labeller(task, 0.3))
    assert reverse.learnability(task, task.selection_images(), labels, 3) == reverse.learnability(
        task, task.selection_images(), labels, 3)


def test_kappa_by_hand():
    assert reverse.kappa([[5, 0], [0, 5]]) == 1.0
    assert reverse.kappa([[10, 0], [0, 0]]) == 0.0  # one class only: all agreement is chance
    # observed 0.7, chance 0.5 * 0.5 + 0.5 * 0.5 = 0.5: (0.7 - 0.5) / 0.5
    assert reverse.kappa([[35, 15], [15, 35]]) == pytest.approx(0.4)


def _trial(task, nets, margin, criterion="reverse_validation"):
    """What final_model reads of a Trial: a seed directory with each stage's done.json, and no final.json."""
    config = types.SimpleNamespace(final_criterion=criterion, final_margin=margin)
    seed_dir = tempfile.mkdtemp()
    for stage in nets:
        os.makedirs(os.path.join(seed_dir, stage))
        with open(os.path.join(seed_dir, stage, "done.json"), "w") as handle:
            json.dump({"stage": stage}, handle)
    return types.SimpleNamespace(task=task, config=config, seed=0, network=lambda stage: nets[stage],
                                 view_of=lambda stage: None, dir=seed_dir, final=lambda: None)


def test_a_rerun_keeps_the_decision_made_from_the_same_finished_stages():
    task = BlobTask()
    nets = {"source": _labeller(task, 0.5), "self_train": _labeller(task, 0.0)}
    results = {"source": {"accuracy": 0.5}, "self_train": {"accuracy": 1.0}}
    trial = _trial(task, nets, 0.0, "veto")
    first = final.final_model(trial, results, ("source", "self_train"))
    assert set(first["made_from"]["done"]) == {"source", "self_train"}
    recorded = json.loads(json.dumps(first))  # as final.json holds it
    trial.final = lambda: recorded
    trial.network = lambda stage: pytest.fail("a kept decision reads no network")
    assert final.final_model(trial, results, ("source", "self_train")) == recorded
    trial.network = lambda stage: nets[stage]
    # another criterion, margin or number of steps (flags a rerun may change) is decided anew
    assert final.final_model(trial, results, ("source", "self_train"), "learnability")["criterion_name"] == (
        "learnability")
    trial.config.final_margin = 0.5
    assert final.final_model(trial, results, ("source", "self_train"))["made_from"]["margin"] == 0.5
    trial.config.final_margin, task.reverse_steps = 0.0, 100
    assert final.final_model(trial, results, ("source", "self_train"))["made_from"]["reverse_steps"] == 100
    task.reverse_steps = BlobTask.reverse_steps
    # and so is a stage that ran again (a new done.json)
    with open(os.path.join(trial.dir, "self_train", "done.json"), "w") as handle:
        json.dump({"stage": "self_train", "again": True}, handle)
    again = final.final_model(trial, results, ("source", "self_train"))
    assert again["made_from"]["done"]["self_train"] != recorded["made_from"]["done"]["self_train"]
    assert again["made_from"]["done"]["source"] == recorded["made_from"]["done"]["source"]
    assert again["choice"] == first["choice"]


@pytest.mark.parametrize("margin, chosen", [(0.0, "self_train"), (0.9, "source")])
def test_the_source_model_is_kept_unless_an_adapted_one_beats_it_by_the_margin(margin, chosen):
    task = BlobTask()
    nets = {"source": _labeller(task, 0.5), "target": _labeller(task, 0.4), "self_train": _labeller(task, 0.0)}
    results = {stage: {"accuracy": 1.0 - wrong} for stage, wrong in (("source", 0.5), ("target", 0.4),
                                                                      ("self_train", 0.0))}
    decision = final.final_model(_trial(task, nets, margin), results, ("source", "target", "feature", "self_train"))
    assert set(decision["criterion"]) == {"source", "target", "self_train"}  # feature did not finish
    assert decision["choice"] == chosen and decision["oracle_choice"] == "self_train"
    assert decision.get("kept_source", False) == (chosen == "source")
    assert decision["accuracy"] == results[chosen]["accuracy"]


def _collapsed(x):
    return np.eye(CLASSES, dtype=np.float32)[np.zeros(len(np.asarray(x)), np.int64)]


def test_veto_ships_the_latest_stage_unless_both_criteria_score_it_below_the_source_model():
    task, stages = BlobTask(), ("source", "target", "feature", "self_train")
    results = {stage: {"accuracy": 0.5} for stage in stages}
    # self_train is not the best labeller, but both criteria score it above the source model: it ships, and
    # no earlier stage is looked at
    nets = {"source": _labeller(task, 0.5), "target": _labeller(task, 0.1), "feature": _labeller(task, 0.0),
            "self_train": _labeller(task, 0.3)}
    decision = final.final_model(_trial(task, nets, 0.0, "veto"), results, stages)
    assert decision["choice"] == "self_train" and not decision["kept_source"]
    assert decision["criterion"] == {"source": 0.0, "self_train": 2.0} and set(decision["votes"]) == {"self_train"}
    for name, (mine, source) in decision["votes"]["self_train"].items():
        assert mine > source, name
    # self_train collapsed to one class: learnability 0 and reverse validation at chance veto it; feature ships
    nets["self_train"] = _collapsed
    decision = final.final_model(_trial(task, nets, 0.0, "veto"), results, stages)
    assert decision["choice"] == "feature" and decision["criterion"]["self_train"] == 0.0
    assert decision["criterion"]["feature"] == 2.0 and "target" not in decision["criterion"]
    # every adapted stage collapsed: the source model ships, and the decision says so
    nets.update(target=_collapsed, feature=_collapsed)
    decision = final.final_model(_trial(task, nets, 0.0, "veto"), results, stages)
    assert decision["choice"] == "source" and decision["kept_source"]
    assert decision["criterion"] == {stage: 0.0 for stage in stages}
    from cycada_tf.reporting import report
    said = "".join(report.decisions_lines([("final model", {"0": {**decision, "oracle_choice": "feature"}})]))
    assert "0: source / feature" in said and "both scored every adapted model no higher than the source" in said
    # tools/decide.py's pick gives the same choices from every stage's value
    assert final.pick("veto", {"source": 0.0, "target": 2.0, "feature": 1.0, "self_train": 0.0}, "source") == "feature"
    assert final.pick("veto", {"source": 0.0, "target": 0.0}, "source") == "source"


def test_agreement_and_information_maximisation_by_hand():
    assert criteria.agreement([0, 1, 2, 2], [[0, 1, 1, 1], [0, 1, 2, 0]]) == pytest.approx((0.5 + 0.75) / 2)
    assert criteria.information_maximisation(np.eye(4)) == pytest.approx(np.log(4))
    assert criteria.information_maximisation(np.full((5, 4), 0.25)) == pytest.approx(0.0, abs=1e-9)
