"""Training on real disks: a corrupt shard met while training, a directory that cannot be written and a full
disk each end with one line on stderr and exit status 2; a full disk mid-run keeps the last checkpoint
loadable; weights are checked finite before a checkpoint is saved; a lower learning rate after a non-finite
loss continues the run when asked for (--accept_lr_change), and config.json keeps the change."""

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, child_env, run_experiment
from cycada_tf.config import experiment_config as config_lib
from cycada_tf.train import losses, resume
from cycada_tf.experiments import runner

FAST = ["--seeds=0", "--stages=source", "--source_epochs=1", "--summary_every_epochs=0", "--verbose=0"]


def digits(data_dir, run_dir, *flags, timeout=600):
    return run_experiment("digits", f"--data_dir={data_dir}", f"--run_dir={run_dir}", *(flags or FAST),
                          check=False, timeout=timeout)


def one_line(done):
    """The one "error:" line on stderr of a run that failed with exit status 2, and no traceback (TensorFlow's
    start-up lines aside)."""
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    return lines[0]


def copy_embedded(embedded_data_dir, data_dir):
    for name in ("uci", "uci_m"):
        shutil.copytree(os.path.join(embedded_data_dir, name), os.path.join(data_dir, name))


def test_a_corrupt_training_shard_is_one_line_naming_the_shard_and_offset(embedded_data_dir, tmp_path):
    data_dir = str(tmp_path / "data")
    copy_embedded(embedded_data_dir, data_dir)
    shard = os.path.join(data_dir, "uci", "train-00000-of-00001.tfrecord")
    data = bytearray(open(shard, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(shard, "wb").write(bytes(data))
    line = one_line(digits(data_dir, str(tmp_path / "run")))
    assert line.startswith(f"error: {shard}: corrupt TFRecord shard (the record at byte "), line
    assert "Delete " + os.path.join(data_dir, "uci") in line and "rerun the same command" in line


@contextlib.contextmanager
def tmpfs(path, options):
    """A tmpfs mounted at `path` (root only), or a skip."""
    os.makedirs(path, exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", path], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=True)


def fill(directory):
    """Write zeros into directory until the disk is full; returns the file."""
    path = os.path.join(directory, "filler")
    with open(path, "wb") as handle:
        with contextlib.suppress(OSError):
            while True:
                handle.write(b"\0" * (1 << 16))
                handle.flush()
    return path


@contextlib.contextmanager
def read_only_dir(path):
    """A directory this user cannot write: a read-only tmpfs for root, mode 0555 for anyone else."""
    if os.geteuid() == 0:
        with tmpfs(path, "ro,size=1m"):
            yield path
    else:
        os.makedirs(path)
        os.chmod(path, 0o555)
        yield path
        os.chmod(path, 0o755)


def test_run_dir_and_data_dir_that_cannot_be_written_are_one_line(embedded_data_dir, tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    line = one_line(digits(embedded_data_dir, str(a_file)))
    assert line == f"error: --run_dir={a_file}: Not a directory; give a directory"
    line = one_line(digits(str(a_file), str(tmp_path / "run")))
    assert line == f"error: --data_dir={a_file}: Not a directory; give a directory"
    line = one_line(digits(embedded_data_dir, "/proc/cycada_run"))
    assert line.startswith("error: --run_dir=/proc/cycada_run: No such file or directory"), line
    with read_only_dir(str(tmp_path / "read_only")) as read_only:
        done = digits(embedded_data_dir, read_only)
        assert "epoch" not in done.stderr  # refused at start, not after an epoch's training
        line = one_line(done)
        assert line.startswith(f"error: --run_dir={read_only}: ") and ("Read-only file system" in line
                                                                      or "Permission denied" in line), line
        line = one_line(digits(os.path.join(read_only, "data"), str(tmp_path / "run2")))  # embedded: built there
        assert line.startswith(f"error: {read_only}") and "Read-only file system" in line, line


def test_a_full_disk_at_start_is_one_line(embedded_data_dir, tmp_path):
    with tmpfs(str(tmp_path / "small"), "size=256k") as small:
        fill(small)
        line = one_line(digits(embedded_data_dir, os.path.join(small, "run")))
    assert line.startswith(f"error: --run_dir={small}/run: No space left on device"), line


def test_a_full_disk_mid_run_keeps_the_last_checkpoint_loadable(embedded_data_dir, tmp_path):
    planned = 10  # the disk fills after the first checkpoint: the run ends at the next, well before the last
    flags = ["--seeds=0", "--stages=source", f"--source_epochs={planned}", "--summary_every_epochs=0",
             "--verbose=0"]
    with tmpfs(str(tmp_path / "disk"), "size=48m") as disk:
        run_dir = os.path.join(disk, "run")
        ckpt = os.path.join(run_dir, "seed_0", "source", "ckpt")
        process = subprocess.Popen([sys.executable, "-m", "cycada_tf.experiments.digits",
                                    f"--data_dir={embedded_data_dir}", f"--run_dir={run_dir}", *flags],
                                   cwd=REPO, env=child_env(),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300
        while not os.path.exists(os.path.join(ckpt, "checkpoint")):
            assert process.poll() is None and time.time() < deadline, process.communicate()
            time.sleep(0.02)
        filler = fill(disk)
        out, err = process.communicate(timeout=300)
        line = one_line(subprocess.CompletedProcess([], process.returncode, out, err))
        assert "No space left on device" in line and "rerun the same command" in line, line
        latest = tf.train.latest_checkpoint(ckpt)
        reader = tf.train.load_checkpoint(latest)  # every tensor of the last complete checkpoint reads back
        for name in reader.get_variable_to_shape_map():
            value = reader.get_tensor(name)
            if np.issubdtype(np.asarray(value).dtype, np.floating):
                assert np.all(np.isfinite(value)), name
        epochs = int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE"))
        assert 1 <= epochs < planned
        os.remove(filler)
        again = digits(embedded_data_dir, run_dir, *flags)
        assert again.returncode == 0, again.stderr[-3000:]
        assert f"source: resuming from {ckpt}" in again.stderr
        assert os.path.exists(os.path.join(run_dir, "results.json"))


def test_weights_are_checked_finite_before_a_checkpoint_is_saved(tmp_path):
    net = keras.Sequential([keras.layers.Dense(3)])
    net.build((None, 2))
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(net.trainable_variables)
    checkpoint = resume.StageCheckpoint("source", str(tmp_path / "ckpt"), log=lambda m: None,
                                        variables=list(net.variables), optimizer=optimizer)
    checkpoint.on_train_begin()
    checkpoint.on_epoch_end(0, {"loss": 1.0})
    assert tf.train.latest_checkpoint(str(tmp_path / "ckpt")).endswith("ckpt-1")
    net.layers[0].kernel.assign(np.full((2, 3), np.inf, np.float32))
    with pytest.raises(resume.NonFiniteLoss, match=r"non-finite weights in .*kernel after epoch 2.*ckpt-1"):
        checkpoint.on_epoch_end(1, {"loss": 1.0})  # the logged loss is finite, the weights are not
    assert tf.train.latest_checkpoint(str(tmp_path / "ckpt")).endswith("ckpt-1")


def _config(data_dir, run_dir, **overrides):
    values = dict(seeds=(0,), stages=("source",), source_epochs=3, summary_every_epochs=0, verbose=0)
    return config_lib.DigitsConfig(data_dir=data_dir, run_dir=run_dir, **{**values, **overrides})


def test_a_non_finite_loss_then_a_lower_learning_rate_continues_the_run(embedded_data_dir, tmp_path,
                                                                       monkeypatch, capsys):
    calls = tf.Variable(0, dtype=tf.int64)
    steps_per_epoch = 900 // 128  # uci's source half, source_batch_size 128
    task_loss = losses.task_loss

    def poisoned(labels, logits):  # NaN in the second epoch
        calls.assign_add(1)
        loss = task_loss(labels, logits)
        return tf.where(calls > steps_per_epoch + 2, tf.constant(np.nan, loss.dtype), loss)

    monkeypatch.setattr(losses, "task_loss", poisoned)
    run_dir = str(tmp_path / "run")
    with pytest.raises(resume.NonFiniteLoss, match="--accept_lr_change"):
        runner.run(_config(embedded_data_dir, run_dir))
    monkeypatch.setattr(losses, "task_loss", task_loss)

    lower = _config(embedded_data_dir, run_dir, source_lr=2e-5)
    with pytest.raises(ValueError, match=r"--source_lr=2e-05 \(run directory: 0.0001\).*--accept_lr_change"):
        runner.run(lower)
    capsys.readouterr()
    runner.run(dataclasses.replace(lower, accept_lr_change=True))
    ckpt = os.path.join(run_dir, "seed_0", "source", "ckpt")
    assert f"source: resuming from {ckpt}/ckpt-1 (1 epochs" in capsys.readouterr().err
    latest = tf.train.latest_checkpoint(ckpt)
    reader = tf.train.load_checkpoint(latest)
    assert int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")) == 3
    # the resumed epochs ran at the new rate, not at the one the checkpoint held
    rate = [n for n in reader.get_variable_to_shape_map() if n.startswith("optimizer/_learning_rate")]
    assert len(rate) == 1 and reader.get_tensor(rate[0]) == pytest.approx(2e-5)
    for name in reader.get_variable_to_shape_map():
        value = reader.get_tensor(name)
        if np.issubdtype(np.asarray(value).dtype, np.floating):
            assert np.all(np.isfinite(value)), name
    with open(os.path.join(run_dir, "config.json")) as handle:
        stored = json.load(handle)
    assert stored["source_lr"] == 2e-5 and "accept_lr_change" not in stored
    assert [entry["changed"] for entry in stored["history"]] == [{"source_lr": {"from": 1e-4, "to": 2e-5}}]
    runner.run(lower)  # the run directory now holds the new rate: no flag needed to reuse it
    assert os.path.exists(os.path.join(run_dir, "results.json"))


def _corrupt_dataset(directory):
    """A one-shard dataset at `directory` with a byte flipped in its middle; returns the shard."""
    from cycada_tf.data import schema, tfrecord
    examples = [schema.make_example(np.full((8, 8, 1), i, np.uint8), i % 10) for i in range(20)]
    tfrecord.write_dataset(directory, {"train": examples}, {"x": "1"})
    shard = os.path.join(directory, "train-00000-of-00001.tfrecord")
    data = bytearray(open(shard, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(shard, "wb").write(bytes(data))
    return shard


@pytest.mark.parametrize("where", ["prepared", "translated"])
def test_the_corrupt_record_line_names_the_command_for_each_kind_of_shard(tmp_path, where):
    from cycada_tf.train import failures
    data_dir, run_dir = str(tmp_path / "data"), str(tmp_path / "run")
    if where == "prepared":
        shard = _corrupt_dataset(os.path.join(data_dir, "mnist"))
        command = f"python tools/prepare_data.py --dataset=mnist --data_dir={data_dir} --verify"
    else:
        shard = _corrupt_dataset(os.path.join(run_dir, "seed_0", "translated_source"))
        command = "rerun the same command: the pixel stage's translations are written again"
    config = config_lib.DigitsConfig(source="mnist", target="usps", data_dir=data_dir, run_dir=run_dir)
    line = failures.one_line(tf.errors.DataLossError(None, None, "corrupted record at 12"), config)
    assert line.startswith(f"{shard}: corrupt TFRecord shard (the record at byte ") and command in line, line
