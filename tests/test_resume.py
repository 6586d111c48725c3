"""A killed run continues from the last checkpoint of its unfinished stage and skips its finished ones; a
non-finite loss stops a stage with one message and leaves the last good checkpoint; a run directory refuses
other flags."""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, child_env
from cycada_tf.config import experiment_config as config_lib
from cycada_tf.train import losses, resume
from cycada_tf.experiments import runner

ORACLE_EPOCHS = 10
# The oracle stage is the one killed: it runs after source (finished before the kill) and its epochs are short.
KILLED = ["--seeds=0", "--stages=source,oracle", "--source_epochs=1", f"--oracle_epochs={ORACLE_EPOCHS}",
          "--summary_every_epochs=0", "--verbose=0"]


def _command(data_dir, run_dir):
    return [sys.executable, "-m", "cycada_tf.experiments.digits", f"--data_dir={data_dir}",
            f"--run_dir={run_dir}", *KILLED]


def _checkpoint_value(directory, name):
    return int(tf.train.load_variable(tf.train.latest_checkpoint(directory), f"{name}/.ATTRIBUTES/VARIABLE_VALUE"))


@pytest.mark.slow
def test_a_killed_run_resumes_its_stage_and_skips_finished_ones(embedded_data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    seed_dir = os.path.join(run_dir, "seed_0")
    ckpt = os.path.join(seed_dir, "oracle", "ckpt")
    process = subprocess.Popen(_command(embedded_data_dir, run_dir), cwd=REPO, env=child_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while not os.path.exists(os.path.join(ckpt, "checkpoint")):
        assert process.poll() is None, f"the run ended before it was killed:\n{process.stdout.read()[-3000:]}"
        assert time.time() < deadline, "no oracle checkpoint within 300 s"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert not os.path.exists(os.path.join(seed_dir, "oracle", "done.json"))
    epochs_before = _checkpoint_value(ckpt, "epoch")
    assert 1 <= epochs_before < ORACLE_EPOCHS
    source_weights = os.path.join(seed_dir, "source", "f.weights.h5")
    source_mtime = os.stat(source_weights).st_mtime_ns

    second = subprocess.run(_command(embedded_data_dir, run_dir), cwd=REPO, env=child_env(), capture_output=True,
                            text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    out = second.stderr
    assert "stage 'source' already done, skipped" in out
    assert os.stat(source_weights).st_mtime_ns == source_mtime  # not retrained
    resumed = re.search(r"oracle: resuming from \S+ \((\d+) epochs, (\d+) steps done", out)
    assert resumed, out[-3000:]
    done_before = int(resumed.group(1))
    assert done_before >= epochs_before  # the kill may land after one more checkpoint was complete
    # the epochs continue: the first progress line of the rerun is the epoch after the checkpoint (and then one
    # every ~10 s at most, and the last)
    epochs_run = [int(e) for e in re.findall(rf"oracle epoch (\d+)/{ORACLE_EPOCHS}", out)]
    assert epochs_run[0] == done_before + 1 and epochs_run[-1] == ORACLE_EPOCHS and epochs_run == sorted(epochs_run)
    steps_per_epoch = int(resumed.group(2)) // done_before
    assert _checkpoint_value(ckpt, "epoch") == ORACLE_EPOCHS
    assert _checkpoint_value(ckpt, "step") == ORACLE_EPOCHS * steps_per_epoch  # the step count continued
    with open(os.path.join(run_dir, "results.json")) as handle:
        results = json.load(handle)
    assert {row["stage"] for row in results["table"]} == {"source", "oracle"}
    assert os.path.exists(os.path.join(seed_dir, "oracle", "done.json"))
    # the resumed stage learned: 297 target test digits, a guess scores 10% +- 1.7% (one s.d.), 30% is over 11
    # s.d. away
    assert results["per_seed"]["0"]["oracle"]["accuracy"] >= 0.3


def _config(data_dir, run_dir, **overrides):
    values = dict(seeds=(0,), stages=("source",), source_epochs=3, summary_every_epochs=0, verbose=0)
    return config_lib.DigitsConfig(data_dir=data_dir, run_dir=run_dir, **{**values, **overrides})


def test_a_non_finite_loss_stops_the_stage_and_keeps_the_last_checkpoint(embedded_data_dir, tmp_path,
                                                                        monkeypatch):
    calls = tf.Variable(0, dtype=tf.int64)
    steps_per_epoch = 900 // 128  # uci's source half, source_batch_size 128
    task_loss = losses.task_loss

    def poisoned(labels, logits):  # finite for the first epoch and a half, NaN after
        calls.assign_add(1)
        loss = task_loss(labels, logits)
        return tf.where(calls > steps_per_epoch + steps_per_epoch // 2, tf.constant(np.nan, loss.dtype), loss)

    monkeypatch.setattr(losses, "task_loss", poisoned)
    run_dir = str(tmp_path / "run")
    with pytest.raises(resume.NonFiniteLoss) as error:
        runner.run(_config(embedded_data_dir, run_dir))
    message = str(error.value)
    assert isinstance(error.value, ValueError)  # the experiment mains print "error: ..." and exit 2
    step = steps_per_epoch + steps_per_epoch // 2 + 1
    assert f"stage 'source': non-finite loss (nan) at epoch 2, step {step}" in message, message
    stage_dir = os.path.join(run_dir, "seed_0", "source")
    assert not os.path.exists(os.path.join(stage_dir, "done.json"))
    assert not os.path.exists(os.path.join(stage_dir, "f.weights.h5"))
    ckpt = os.path.join(stage_dir, "ckpt")
    latest = tf.train.latest_checkpoint(ckpt)
    assert latest.endswith("ckpt-1") and latest in message
    assert _checkpoint_value(ckpt, "epoch") == 1 and _checkpoint_value(ckpt, "step") == steps_per_epoch
    for name, _ in tf.train.list_variables(latest):  # every weight of the last good checkpoint is finite
        value = tf.train.load_variable(latest, name)
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            assert np.all(np.isfinite(value)), name


def test_a_run_directory_refuses_other_flags(embedded_data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    config = _config(embedded_data_dir, run_dir, source_epochs=1)
    runner.run(config)
    # flags that do not change results may differ, and seeds may be added
    runner.run(dataclasses.replace(config, verbose=1, summary_every_epochs=3, seeds=(0, 1)))
    with pytest.raises(ValueError) as error:
        runner.run(dataclasses.replace(config, source_lr=1e-3, pixel_batch_size=7))
    message = str(error.value)
    assert "--pixel_batch_size=7 (run directory: 32)" in message and "--source_lr=0.001" in message
    assert "--verbose" not in message


def test_a_run_directory_accepts_rerun_fields_and_refuses_others(tmp_path):
    """What may differ is config.rerun_fields (field metadata); config.json records the task."""
    config = config_lib.SegmentationConfig(seeds=(0,))
    resume.check_run_config(config, str(tmp_path))
    with open(tmp_path / resume.CONFIG_FILE) as handle:
        stored = json.load(handle)
    assert stored["task"] == "segmentation" and not set(stored) & set(config_lib.rerun_fields(type(config)))
    resume.check_run_config(dataclasses.replace(config, seeds=(0, 1), verbose=2, export_dir="x"), str(tmp_path))
    with pytest.raises(ValueError, match=r"--feature_beta_1=0.9 \(run directory: 0.5\)"):
        resume.check_run_config(dataclasses.replace(config, feature_beta_1=0.9), str(tmp_path))
    with pytest.raises(ValueError, match=r", task digits \(run directory: segmentation\)") as error:
        resume.check_run_config(config_lib.DigitsConfig(), str(tmp_path))
    assert "--task" not in str(error.value)  # the task is no flag


def test_a_run_directory_made_before_the_new_fields_continues(tmp_path):
    """A config.json written before the task and the digits' gate_window, optimizer and feature_beta_1 flags:
    they take their defaults, which are what such a run did; another value of them is still refused."""
    added = ("task", "gate_window", "task_optimizer", "momentum", "feature_optimizer", "feature_momentum",
             "feature_beta_1")
    rerun = config_lib.rerun_fields(config_lib.DigitsConfig)
    old = {k: v for k, v in config_lib.to_json(config_lib.DigitsConfig()).items() if k not in (*added, *rerun)}
    (tmp_path / resume.CONFIG_FILE).write_text(json.dumps(old))
    resume.check_run_config(config_lib.DigitsConfig(verbose=0), str(tmp_path))
    assert json.loads((tmp_path / resume.CONFIG_FILE).read_text()) == old  # nothing changed, nothing written
    with pytest.raises(ValueError, match=r"--gate_window=5 \(run directory: 1\)"):
        resume.check_run_config(config_lib.DigitsConfig(gate_window=5), str(tmp_path))
