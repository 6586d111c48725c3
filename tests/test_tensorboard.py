"""What TensorBoard itself shows of a run, asked through its HTTP API as its web page asks (a `tensorboard`
process on loopback): runs named seed_<k>/<stage>, train/ and target_test/ tags each with a description, the
config and decisions as text, and the hparams plugin's view of the seeds with their final scores."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request

import keras
import numpy as np
import pytest

from cycada_tf.reporting import tensorboard_views as board
from cycada_tf.train import summaries
from cycada_tf.config import experiment_config as config_lib
from cycada_tf.stages.source import TaskStage

STAGES = ("source", "pixel", "target", "feature", "self_train", "oracle")
SESSION_GROUPS = {"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN"], "startIndex": 0, "sliceSize": 100}


class Board:
    """A `tensorboard --logdir` process on 127.0.0.1, a free port; `get` answers a path of its HTTP API."""

    def __init__(self, logdir):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tensorboard.main", "--logdir", logdir, "--host", "127.0.0.1", "--port", "0",
             "--load_fast", "false", "--reload_interval", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        self.url = None
        for line in self.process.stdout:
            found = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            if found:
                self.url = found.group(1)
                break
        assert self.url, "tensorboard printed no address"

    def get(self, path, body=None):
        request = urllib.request.Request(self.url + path, data=None if body is None else json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def runs(self, expected, timeout=120):
        """/data/runs once TensorBoard has loaded every run of `expected`."""
        deadline = time.monotonic() + timeout
        while True:
            runs = self.get("/data/runs")
            if set(expected) <= set(runs) or time.monotonic() > deadline:
                time.sleep(1.5)  # the reload that found the last run may still be reading its events
                return self.get("/data/runs")
            time.sleep(0.5)

    def close(self):
        self.process.kill()
        self.process.communicate(timeout=30)


@pytest.fixture
def tensorboard():
    boards = []
    yield lambda logdir: boards.append(Board(logdir)) or boards[-1]
    for served in boards:
        served.close()


def _stage_run(log_dir):
    """A source stage's run of two epochs as the runner writes it (TensorBoardSummaries on a TaskStage)."""
    keras.utils.set_random_seed(0)
    model = TaskStage(keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)]))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = np.random.RandomState(0).normal(size=(8, 4)).astype(np.float32)
    callback = summaries.TensorBoardSummaries(log_dir, 1, periodic=lambda m: {"target_test/accuracy": 0.5},
                                              text=board.stage_text(config_lib.DigitsConfig(), "source"))
    model.fit(x, np.arange(8) % 3, batch_size=4, epochs=2, verbose=0, callbacks=[callback])


def _check_scalar_tags(tags, runs):
    """Every scalar of the stage runs is tagged train/ or target_test/ and has a description."""
    for run in runs:
        assert tags[run], run
        for tag, info in tags[run].items():
            assert tag.startswith(("train/", "target_test/")), (run, tag)
            assert len(info["description"]) > 20, (run, tag, info)


def test_a_written_run_reads_back_through_tensorboards_api(tmp_path, tensorboard):
    run_dir = str(tmp_path / "run")
    _stage_run(os.path.join(run_dir, "seed_0", "source"))
    decision = {"choice": "feature", "criterion_name": "veto", "criterion": {"source": 0.0, "feature": 2.0},
                "oracle_choice": "source", "accuracy": 0.75}
    per_seed = {seed: {"source": {"accuracy": 0.5 + int(seed) / 10}, "feature": {"accuracy": 0.75},
                       "final": decision} for seed in ("0", "1")}
    config = config_lib.DigitsConfig(seeds=(0, 1), source_epochs=2)
    board.write(run_dir, config, per_seed, "accuracy", STAGES)

    served = tensorboard(run_dir)
    runs = served.runs(["seed_0/source", "seed_0", "seed_1", "."])
    assert {"seed_0/source", "seed_0", "seed_1", "."} <= set(runs) and not [r for r in runs if r.endswith("/tb")]
    tags = served.get("/data/plugin/scalars/tags")
    assert set(tags["seed_0/source"]) == {"train/loss", "train/accuracy", "target_test/accuracy"}
    _check_scalar_tags(tags, ["seed_0/source"])
    assert "cross-entropy" in tags["seed_0/source"]["train/loss"]["description"]
    assert "target test split" in tags["seed_0/source"]["target_test/accuracy"]["description"]
    text = served.get("/data/plugin/text/tags")
    assert text["seed_0/source"] == ["config"] and set(text["seed_0"]) == {"config", "decisions"}

    experiment = served.get("/data/plugin/hparams/experiment", {"experimentName": ""})
    hparams = {h["name"] for h in experiment["hparamInfos"]}
    # what tells the seeds apart, the flags that are not the defaults, and each decision's choice
    assert {"seed", "source", "target", "source_epochs", "decision: final model"} <= hparams
    assert "data_dir" not in hparams and "pixel_epochs" not in hparams  # a path; a default
    metrics = {m["name"]["tag"]: m for m in experiment["metricInfos"]}
    assert set(metrics) == {"final/accuracy", "stages/source/accuracy", "stages/feature/accuracy"}
    assert all(m["description"] for m in metrics.values())
    groups = served.get("/data/plugin/hparams/session_groups", SESSION_GROUPS)["sessionGroups"]
    by_seed = {g["name"]: g for g in groups}
    assert set(by_seed) == {"seed_0", "seed_1"}
    assert by_seed["seed_1"]["hparams"]["seed"] == 1
    assert by_seed["seed_1"]["hparams"]["decision: final model"] == "feature"
    values = {v["name"]["tag"]: v["value"] for v in by_seed["seed_1"]["metricValues"]}
    assert values == pytest.approx({"final/accuracy": 0.75, "stages/source/accuracy": 0.6,
                                    "stages/feature/accuracy": 0.75})


def test_decisions_text_says_the_criterion_the_choice_and_the_oracles():
    results = {"pixel": {"direction": {"choice": "t2s", "criterion": {"s2t": 1.0, "t2s": 1.25}}},
               "final": {"choice": "source", "criterion_name": "veto", "criterion": {"source": 0.0, "feature": 0.0},
                         "kept_source": True, "oracle_choice": "feature"}}
    text = board.decisions_text(results)
    assert "**pixel direction**: `t2s`, by information maximisation (s2t 1, t2s 1.25)" in text
    assert "**final model**: `source`, by veto" in text and "source model is kept" in text
    assert "would have picked `feature`" in text
    assert board.decisions_text({}) == "No decision made from data in this run."
    given = board.decisions_text(results, config_lib.DigitsConfig(pixel_direction="t2s"))
    assert "**pixel direction**: `t2s`, given by --pixel_direction (information maximisation recorded: " in given


def test_a_label_free_seed_reports_its_criteria_as_the_hparams_metrics():
    results = {"source": {"entropy": 1.0, "information_maximisation": 0.5},
               "feature": {"entropy": 0.7, "information_maximisation": 0.9},
               "final": {"choice": "feature", "criterion_name": "veto", "criterion": {}}}
    assert board.scores_of(results, "accuracy", STAGES) == {
        "final/information_maximisation": 0.9, "stages/source/information_maximisation": 0.5,
        "stages/feature/information_maximisation": 0.9, "final/entropy": 0.7, "stages/source/entropy": 1.0,
        "stages/feature/entropy": 0.7}


@pytest.mark.slow
def test_a_tiny_run_in_tensorboard(tiny_digits_run, tensorboard):
    run_dir = tiny_digits_run["run_dir"]  # the session's tiny whole run, read only
    results = json.load(open(os.path.join(run_dir, "results.json")))
    served = tensorboard(run_dir)
    stage_runs = [f"seed_0/{stage}" for stage in STAGES]
    runs = served.runs(stage_runs + ["seed_0", "."])
    assert set(runs) == set(stage_runs) | {"seed_0", "."}
    tags = served.get("/data/plugin/scalars/tags")
    _check_scalar_tags(tags, stage_runs)
    assert {"train/gate_open", "train/d_accuracy", "target_test/accuracy"} <= set(tags["seed_0/feature"])
    text = served.get("/data/plugin/text/tags")
    assert set(text["seed_0"]) == {"config", "decisions"} and all(text[run] == ["config"] for run in stage_runs)
    experiment = served.get("/data/plugin/hparams/experiment", {"experimentName": ""})
    assert {"seed", "decision: final model", "decision: pixel direction"} <= {
        h["name"] for h in experiment["hparamInfos"]}
    [group] = served.get("/data/plugin/hparams/session_groups", SESSION_GROUPS)["sessionGroups"]
    final = results["per_seed"]["0"]["final"]
    assert group["hparams"]["decision: final model"] == final["choice"]
    values = {v["name"]["tag"]: v["value"] for v in group["metricValues"]}
    assert values["final/accuracy"] == pytest.approx(final["accuracy"])
