"""A full disk at each writer of a run (data and translated records, checkpoints, weights, export, report,
figures, JSON records): every one raises an error that cycada_tf.train.failures says in one line ("No space left on
device"), and none leaves a partial file behind (the names tools/fault_inject.py counts) or an HDF5 file open.
On a real small filesystem: a tmpfs (root only, as in tests/test_failure_paths_run.py), filled up first."""

import contextlib
import os
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf

from cycada_tf.serving import export
from cycada_tf.reporting import report
from cycada_tf.train import atomic_files as files, failures, figures, resume
from cycada_tf.data import schema, tfrecord, translated
from tools import fault_inject

FULL = os.strerror(28)  # "No space left on device"


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs with no space left (a file fills it); yields its path."""
    path = str(tmp_path / "disk")
    os.makedirs(path)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", path], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        with contextlib.suppress(OSError), open(os.path.join(path, "filler"), "wb") as handle:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
        yield path
    finally:
        subprocess.run(["umount", "-l", path], check=True)


def refused(write):
    """Run `write`, which must fail for the full disk; returns failures' one line for its error."""
    with pytest.raises(Exception) as caught:
        write()
    line = failures.one_line(caught.value, config=None)
    assert line is not None and FULL in line and "\n" not in line, (type(caught.value), str(caught.value)[:500])
    return line


def assert_nothing_partial(disk):
    assert fault_inject.leftovers(disk) == []
    left = sorted(os.path.relpath(os.path.join(root, name), disk) for root, _, names in os.walk(disk)
                  for name in names)
    assert left == ["filler"], left


def _examples(count=64):
    noise = np.random.RandomState(0).randint(0, 256, (count, 32, 32, 3)).astype(np.uint8)
    return (schema.make_example(image, 0, key=str(i)) for i, image in enumerate(noise))


def _model():
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(512)])


def test_data_records(full_disk):
    refused(lambda: tfrecord.write_dataset(os.path.join(full_disk, "uci"), {"train": _examples()}, {"x": "1"}))
    assert_nothing_partial(full_disk)


def test_translated_records(full_disk):
    batches = tf.data.Dataset.from_tensor_slices(np.zeros((16, 32, 32, 3), np.float32)).batch(8)
    refused(lambda: translated.write(os.path.join(full_disk, "translated_source"), batches, lambda x: x,
                                     translated.classification_example, 4, {"x": "1"}, {}))
    assert_nothing_partial(full_disk)


def test_checkpoints(full_disk):
    weights = tf.Variable(tf.zeros([512, 512]))
    checkpoint = resume.StageCheckpoint("source", os.path.join(full_disk, "ckpt"), log=lambda _: None,
                                        variables=[weights])
    refused(lambda: checkpoint.on_epoch_end(0, {"loss": 1.0}))
    assert fault_inject.leftovers(full_disk) == [] and checkpoint.manager.latest_checkpoint is None


def test_weights_are_closed_and_removed(full_disk):
    import h5py
    path = os.path.join(full_disk, "source", "f.weights.h5")
    line = refused(lambda: files.save_weights(_model(), path))
    assert line.startswith(f"{path}: {FULL}"), line
    assert len(h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE)) == 0  # left open, h5py crashes at exit
    assert_nothing_partial(full_disk)


def test_export(full_disk):
    module = tf.Module()
    module.weights = tf.Variable(tf.zeros([512, 512]))
    module.f = tf.function(lambda x: x + 1.0, input_signature=[tf.TensorSpec([None], tf.float32)])
    module.signatures = lambda: {"serving_default": module.f}
    module.classes = ()
    refused(lambda: export.save(module, full_disk, "classifier"))
    assert os.listdir(os.path.join(full_disk, "classifier")) == []


def test_report_figures_and_records(full_disk):
    run_dir = os.path.join(full_disk, "run")
    os.makedirs(run_dir)
    refused(lambda: report.write(run_dir, "title", "| table |", ["section"]))
    refused(lambda: figures.save_png(np.zeros((64, 64, 3), np.uint8), os.path.join(run_dir, "grid.png")))
    refused(lambda: files.write_json(os.path.join(run_dir, "results.json"), {"x": list(range(1000))}))
    refused(lambda: files.write_text(os.path.join(run_dir, "results.md"), "| table |\n"))
    assert_nothing_partial(full_disk)
