"""--strategy=multi_worker: two worker processes on 127.0.0.1 (TF_CONFIG) train through
cycada_tf/train/multi_worker_fit.py and end with identical weights, only the chief writes the run directory, and
each global batch is split between the workers as one device would take it whole."""

import json
import os
import socket
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import REPO, child_env
from cycada_tf.train import distribute

# Each worker must end by itself within it; a hung collective is killed and fails the test. A hung collective
# never ends, so the limit only needs to be above a slow machine's honest run: two TensorFlow processes that
# each trace the pixel step, on 2 cores shared with the suite's other worker.
TIMEOUT_S = 600


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def _run_workers(command, workers=2):
    """Start `workers` processes of `command` (a list, or a function of the worker index) as one cluster;
    return their (returncode, output) once all have ended, or fail after TIMEOUT_S having killed them."""
    ports = _free_ports(workers)
    processes = []
    for index in range(workers):
        env = child_env(TF_CONFIG=_tf_config(ports, index))
        args = command(index) if callable(command) else command
        processes.append(subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, text=True))
    results = []
    try:
        for process in processes:
            output, _ = process.communicate(timeout=TIMEOUT_S)
            results.append((process.returncode, output))
    except subprocess.TimeoutExpired:
        for process in processes:
            process.kill()
        outputs = [process.communicate()[0] for process in processes]
        pytest.fail(f"the workers did not end within {TIMEOUT_S} s:\n" + "\n".join(o[-2000:] for o in outputs))
    return results


def _weights(path):
    arrays = {}
    with h5py.File(path) as handle:
        handle.visititems(lambda name, item: arrays.__setitem__(name, item[()])
                          if isinstance(item, h5py.Dataset) else None)
    return arrays


TINY = ["--seeds=0", "--stages=source,pixel", "--source_epochs=2", "--pixel_epochs=1", "--pixel_batch_size=64",
        "--generator_width=4", "--discriminator_width=4", "--noise_channels=2", "--summary_every_epochs=1",
        "--verbose=0"]


@pytest.mark.slow
def test_two_workers_train_the_same_weights_and_only_the_chief_writes(embedded_data_dir, tmp_path):
    run_dir, worker_dir = str(tmp_path / "run"), str(tmp_path / "workers")
    command = [sys.executable, "-m", "cycada_tf.experiments.digits", "--strategy=multi_worker",
               f"--data_dir={embedded_data_dir}", f"--run_dir={run_dir}", f"--worker_dir={worker_dir}", *TINY]
    (chief_rc, chief_out), (other_rc, other_out) = _run_workers(command)
    assert chief_rc == 0, chief_out[-3000:]
    assert other_rc == 0, other_out[-3000:]

    # The chief wrote the run directory's results; the other worker printed no table and wrote its own copies
    # of the stages' files (checkpoints, summaries, weights) under --worker_dir/worker_1 only.
    for name in ("config.json", "results.json", "results.md", "report.md"):
        assert os.path.exists(os.path.join(run_dir, name)), name
    assert "| Source only |" in chief_out and "| Source only |" not in other_out
    assert sorted(os.listdir(worker_dir)) == ["worker_1"]
    private = os.path.join(worker_dir, "worker_1")
    assert sorted(os.listdir(private)) == ["seed_0"]
    with open(os.path.join(run_dir, "results.json")) as handle:
        results = json.load(handle)
    assert [row["stage"] for row in results["table"]] == ["source", "pixel"]
    # it learned: 297 source test digits, a guess scores 10% +- 1.7% (one s.d.); 30% is over 11 s.d. away
    assert results["per_seed"]["0"]["source"]["source_test_accuracy"] >= 0.3

    # The same weights on both workers, after training moved them (the pixel stage starts from f_S, which
    # the other worker read from the chief's file after the source stage's barrier).
    for stage, name in (("source", "f"), ("pixel", "g_st"), ("pixel", "g_ts")):
        chief = _weights(os.path.join(run_dir, "seed_0", stage, f"{name}.weights.h5"))
        other = _weights(os.path.join(private, "seed_0", stage, f"{name}.weights.h5"))
        assert sorted(chief) == sorted(other) and chief, (stage, name)
        for key in chief:
            np.testing.assert_array_equal(chief[key], other[key], err_msg=f"{stage}/{name}: {key}")
    # Both checkpointed the same global steps: 900 uci training digits // global batch 128, per epoch.
    import tensorflow as tf
    for directory in (run_dir, private):
        ckpt = tf.train.latest_checkpoint(os.path.join(directory, "seed_0", "source", "ckpt"))
        assert int(tf.train.load_variable(ckpt, "step/.ATTRIBUTES/VARIABLE_VALUE")) == 2 * (900 // 128)
    # The epoch logs are the same on both workers (reduced across replicas).
    lines = [[line.split("] ", 1)[1] for line in out.splitlines() if " epoch " in line and "/epoch" in line]
             for out in (chief_out, other_out)]
    assert len(lines[0]) == 3 and [l.split(": ", 1)[1] for l in lines[0]] == [l.split(": ", 1)[1] for l in lines[1]]


# One global batch of BATCH examples per step, split between 2 workers, against one device taking it whole.
# LeNet without dropout and plain SGD, so that only float rounding may differ (as tests/test_strategy.py).
SCRIPT = r"""
import json, sys
mode, out = sys.argv[1], sys.argv[2]
from cycada_tf.train import distribute, multi_worker_fit as loop
strategy = distribute.strategy_from_flag(mode)
import keras
import numpy as np
import tensorflow as tf
from cycada_tf.models import lenet
from cycada_tf.stages.base import build_optimizer
from cycada_tf.stages.source import TaskStage

SIZE, BATCH, STEPS = 16, 16, 4
rng = np.random.default_rng(0)
x = rng.uniform(-1, 1, (BATCH * STEPS, SIZE, SIZE, 3)).astype("float32")
y = rng.integers(0, 10, BATCH * STEPS).astype("int32")
keras.utils.set_random_seed(0)
with distribute.scope(strategy):
    net = lenet.LeNet(10, dropout=0.0)
    net.build((None, SIZE, SIZE, 3))
    model = TaskStage(net)
    model.compile(optimizer=keras.optimizers.SGD(0.05))
    build_optimizer(model.optimizer, net.trainable_variables)
data = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(BATCH, drop_remainder=True)
report = {"replicas": strategy.num_replicas_in_sync if strategy else 1,
          "initial": [v.numpy().tolist() for v in net.trainable_variables]}
if distribute.is_multi_worker(strategy):
    history = loop.fit(model, data, epochs=2, steps_per_epoch=STEPS // 2, strategy=strategy)
    # which examples of the first two global batches this worker's replica was given
    ids = tf.data.Dataset.range(BATCH * 2).batch(BATCH, drop_remainder=True)
    batches = iter(strategy.experimental_distribute_dataset(loop.shard_by_data(ids)))
    report["ids"] = [strategy.experimental_local_results(next(batches))[0].numpy().tolist() for _ in range(2)]
    report["chief"] = distribute.is_chief(strategy)
else:
    history = model.fit(data, epochs=2, steps_per_epoch=STEPS // 2, verbose=0)
report["history"] = {k: [float(v) for v in vs] for k, vs in history.history.items()}
report["weights"] = [v.numpy().tolist() for v in net.trainable_variables]
with open(out, "w") as handle:
    json.dump(report, handle)
"""


@pytest.mark.slow
def test_a_global_batch_split_between_two_workers_trains_as_on_one_device(tmp_path):
    env = child_env()
    env.pop("TF_CONFIG", None)
    one = subprocess.run([sys.executable, "-c", SCRIPT, "one_device", str(tmp_path / "one.json")], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert one.returncode == 0, one.stdout[-2000:] + one.stderr[-2000:]
    results = _run_workers(lambda i: [sys.executable, "-c", SCRIPT, "multi_worker", str(tmp_path / f"w{i}.json")])
    for rc, output in results:
        assert rc == 0, output[-3000:]
    reports = [json.load(open(tmp_path / name)) for name in ("one.json", "w0.json", "w1.json")]
    single, chief, other = reports
    assert [chief["replicas"], other["replicas"]] == [2, 2]
    assert [chief["chief"], other["chief"]] == [True, False]
    # each worker takes its half of each global batch: together all of it, each example once
    for step in range(2):
        halves = chief["ids"][step], other["ids"][step]
        assert [len(h) for h in halves] == [8, 8]
        assert sorted(halves[0] + halves[1]) == list(range(16 * step, 16 * (step + 1)))
    for a, b in zip(chief["weights"], other["weights"]):
        np.testing.assert_array_equal(np.array(a), np.array(b))
    np.testing.assert_array_equal(np.array(chief["initial"][0]), np.array(single["initial"][0]))
    for a, b, start in zip(chief["weights"], single["weights"], single["initial"]):
        a, b, start = np.array(a), np.array(b), np.array(start)
        moved = float(np.max(np.abs(b - start)))
        assert moved > 1e-4  # the steps trained
        # a loss scaled twice (or not at all) across the replicas would halve (double) every SGD step: a
        # difference near half (all) of how far the variable moved
        assert float(np.max(np.abs(a - b))) < 1e-3 * moved
    # the epoch logs: the metrics' means over the global batch, as on one device, one list entry per epoch
    assert sorted(chief["history"]) == sorted(single["history"]) == ["accuracy", "loss"]
    for key in ("loss", "accuracy"):
        assert len(chief["history"][key]) == 2
        np.testing.assert_allclose(chief["history"][key], single["history"][key], rtol=1e-4, atol=1e-6)


def test_multi_worker_needs_a_valid_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="--strategy=multi_worker needs the TF_CONFIG environment variable"):
        distribute.strategy_from_flag("multi_worker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        distribute.strategy_from_flag("multi_worker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {}, "task": {"type": "worker", "index": 0}}))
    with pytest.raises(ValueError, match="TF_CONFIG must name the cluster's workers"):
        distribute.strategy_from_flag("auto")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1", "b:1"]},
                                                "task": {"type": "worker", "index": 2}}))
    with pytest.raises(ValueError, match="TF_CONFIG must say which task this process is"):
        distribute.strategy_from_flag("multi_worker")


def test_auto_picks_multi_worker_when_tf_config_names_two_workers(monkeypatch):
    created = []
    monkeypatch.setattr(distribute.tf.distribute, "MultiWorkerMirroredStrategy", lambda: created.append(1) or "mw")
    monkeypatch.setattr(distribute, "_configure_coordination", lambda cluster: None)  # this process stays local
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert distribute.strategy_from_flag("auto") == "mw" and created == [1]
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert distribute.strategy_from_flag("auto") != "mw" and created == [1]  # one worker: a single host


def test_the_chief_is_the_chief_task_or_worker_0():
    assert distribute.chief_task("worker", 0, {"worker": ["a:1", "b:1"]})
    assert not distribute.chief_task("worker", 1, {"worker": ["a:1", "b:1"]})
    assert distribute.chief_task("chief", 0, {"chief": ["a:1"], "worker": ["b:1"]})
    assert not distribute.chief_task("worker", 0, {"chief": ["a:1"], "worker": ["b:1"]})
    assert distribute.is_chief(None)  # every single-host strategy writes
