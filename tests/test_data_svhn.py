"""SVHN: tiny *_32x32.mat files (X is H x W x C x N, 10 means 0) -> TFRecords with the same digits."""

import os

import numpy as np
import pytest
import scipy.io
import tensorflow as tf

from cycada_tf.data import pipeline, schema, tfrecord
from tools import prepare_data

COUNTS = {"train": 11, "test": 4, "extra": 3}
FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat", "extra": "extra_32x32.mat"}


def mat_arrays(count, seed):
    """X (32, 32, 3, N) uint8 whose top-left pixel is pure red, y (N, 1) in 1..10 with a 10 in it."""
    rng = np.random.RandomState(seed)
    x = rng.randint(0, 200, size=(32, 32, 3, count)).astype(np.uint8)
    x[0, 0, :, :] = np.array([255, 0, 0])[:, None]
    y = rng.randint(1, 11, size=(count, 1)).astype(np.uint8)
    y[0] = 10
    return x, y


def write_svhn(raw_dir, splits=("train", "test")):
    os.makedirs(raw_dir, exist_ok=True)
    data = {}
    for seed, split in enumerate(splits):
        x, y = mat_arrays(COUNTS[split], seed)
        scipy.io.savemat(os.path.join(raw_dir, FILES[split]), {"X": x, "y": y})
        data[split] = (x, y)
    return data


def _prepare(raw_dir, data_dir):
    return prepare_data.main(["--dataset=svhn", f"--raw_dir={raw_dir}", f"--data_dir={data_dir}"])


def test_records_hold_the_same_digits_with_zero_for_ten(tmp_path):
    raw_dir, data_dir = str(tmp_path / "raw"), str(tmp_path / "data")
    data = write_svhn(raw_dir)
    assert _prepare(raw_dir, data_dir) == 0
    for split, (x, y) in data.items():
        parsed = [schema.parse(r) for r in pipeline.records("svhn", split, data_dir)]
        images = np.stack([tf.io.decode_png(p[schema.IMAGE]).numpy() for p in parsed])
        labels = np.array([int(p[schema.LABEL]) for p in parsed])
        assert images.shape == (COUNTS[split], 32, 32, 3)
        np.testing.assert_array_equal(images[:, 0, 0], [[255, 0, 0]] * COUNTS[split])  # red top-left
        for i in range(COUNTS[split]):
            np.testing.assert_array_equal(images[i], x[:, :, :, i])  # image i is X[:, :, :, i], rows first
        np.testing.assert_array_equal(labels, np.where(y[:, 0] == 10, 0, y[:, 0]))
        assert labels[0] == 0
        assert parsed[2][schema.KEY].numpy().decode() == f"{FILES[split]}:2"
    x, y = pipeline.arrays("svhn", "test", data_dir, image_size=32, channels=3)
    np.testing.assert_allclose(x, np.moveaxis(data["test"][0], 3, 0) / 127.5 - 1.0, atol=1e-4)
    grey, _ = pipeline.arrays("svhn", "test", data_dir, image_size=28, channels=1)
    assert grey.shape == (COUNTS["test"], 28, 28, 1)
    assert "extra" not in tfrecord.read_manifest(os.path.join(data_dir, "svhn"))["splits"]


def test_extra_split_when_its_file_is_there(tmp_path):
    raw_dir, data_dir = str(tmp_path / "raw"), str(tmp_path / "data")
    data = write_svhn(raw_dir, ("train", "test", "extra"))
    _prepare(raw_dir, data_dir)
    assert pipeline.count("svhn", "extra", data_dir) == COUNTS["extra"]
    _, labels = pipeline.arrays("svhn", "extra", data_dir, image_size=32, channels=3)
    np.testing.assert_array_equal(labels, np.where(data["extra"][1][:, 0] == 10, 0, data["extra"][1][:, 0]))


def _savemat(raw_dir, split, **variables):
    scipy.io.savemat(os.path.join(raw_dir, FILES[split]), variables)


def _truncate(path, cut):
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[:len(data) - cut])


def _y_first_truncated(raw_dir):
    x, y = mat_arrays(COUNTS["train"], 0)
    scipy.io.savemat(os.path.join(raw_dir, FILES["train"]), {"y": y, "X": x})
    _truncate(os.path.join(raw_dir, FILES["train"]), 5000)


def _bad_label(raw_dir, value):
    x, y = mat_arrays(COUNTS["test"], 1)
    y[2] = value
    _savemat(raw_dir, "test", X=x, y=y)


CORRUPTIONS = {
    # name: (damage, file the message names, words it holds)
    "no X": (lambda d: _savemat(d, "test", y=mat_arrays(4, 1)[1]), "test_32x32.mat", "no variable 'X'"),
    "no y": (lambda d: _savemat(d, "train", X=mat_arrays(11, 0)[0]), "train_32x32.mat", "no variable 'y'"),
    "label 11": (lambda d: _bad_label(d, 11), "test_32x32.mat", "label 11 at index 2"),
    "label 0": (lambda d: _bad_label(d, 0), "test_32x32.mat", "outside 1..10"),
    "images first": (lambda d: _savemat(d, "test", X=np.moveaxis(mat_arrays(4, 1)[0], 3, 0),
                                        y=mat_arrays(4, 1)[1]),
                     "test_32x32.mat", "X has shape (4, 32, 32, 3)"),
    "label count": (lambda d: _savemat(d, "test", X=mat_arrays(4, 1)[0], y=np.ones((3, 1), np.uint8)),
                    "test_32x32.mat", "y has shape (3, 1)"),
    "float pixels": (lambda d: _savemat(d, "test", X=mat_arrays(4, 1)[0].astype(np.float64),
                                        y=mat_arrays(4, 1)[1]), "test_32x32.mat",
                     "X holds double values, expected uint8"),
    "not a mat file": (lambda d: open(os.path.join(d, FILES["test"]), "w").write("<html>404</html>"),
                       "test_32x32.mat", "unreadable"),
    "truncated": (lambda d: _truncate(os.path.join(d, FILES["train"]), 5000), "train_32x32.mat", "truncated"),
    # y before X: labels and header read fine, the images fail while the split is being written
    "truncated images": (_y_first_truncated, "train_32x32.mat", "unreadable .mat file"),
    "missing test file": (lambda d: os.remove(os.path.join(d, FILES["test"])), "test_32x32.mat", "missing"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_input_stops_with_the_file_name_and_leaves_nothing(tmp_path, corruption):
    damage, culprit, words = CORRUPTIONS[corruption]
    raw_dir, data_dir = str(tmp_path / "raw"), tmp_path / "data"
    write_svhn(raw_dir)
    damage(raw_dir)
    with pytest.raises(tfrecord.DataError) as error:
        _prepare(raw_dir, str(data_dir))
    assert culprit in str(error.value) and words in str(error.value), str(error.value)
    assert not data_dir.exists()
