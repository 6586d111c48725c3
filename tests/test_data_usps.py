"""USPS: tiny zip.train.gz/zip.test.gz and usps.h5 files -> TFRecords with the same digits, white on black."""

import gzip
import os

import h5py
import numpy as np
import pytest
import tensorflow as tf

from cycada_tf.data import pipeline, schema, tfrecord
from tools import prepare_data

COUNTS = {"train": 9, "test": 4}


def digits(count, seed):
    """Random uint8 images with a bright top-left pixel; labels 0-9."""
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 200, size=(count, 16, 16)).astype(np.uint8)
    images[:, 0, 0] = 255
    images[:, 15, 15] = 0
    return images, rng.randint(0, 10, size=count)


def text_line(image, label):
    """The ESL format: label as a float, then 256 values in [-1, 1] (-1 background), row-major."""
    values = image.reshape(-1) / 127.5 - 1.0
    return f"{label:.4f} " + " ".join(f"{v:.4f}" for v in values) + " \n"


def write_text(raw_dir, data):
    os.makedirs(raw_dir, exist_ok=True)
    for split, (images, labels) in data.items():
        with gzip.open(os.path.join(raw_dir, f"zip.{split}.gz"), "wt") as handle:
            handle.writelines(text_line(im, lab) for im, lab in zip(images, labels))


def write_h5(raw_dir, data):
    os.makedirs(raw_dir, exist_ok=True)
    with h5py.File(os.path.join(raw_dir, "usps.h5"), "w") as handle:
        for split, (images, labels) in data.items():
            group = handle.create_group(split)
            group.create_dataset("data", data=images.reshape(len(images), -1).astype(np.float32) / 255.0)
            group.create_dataset("target", data=labels.astype(np.int64))


@pytest.fixture
def data():
    return {split: digits(n, seed) for seed, (split, n) in enumerate(COUNTS.items())}


def _prepare(raw_dir, data_dir):
    return prepare_data.main(["--dataset=usps", f"--raw_dir={raw_dir}", f"--data_dir={data_dir}"])


def _stored(split, data_dir):
    parsed = [schema.parse(r) for r in pipeline.records("usps", split, data_dir)]
    images = np.stack([tf.io.decode_png(p[schema.IMAGE]).numpy()[..., 0] for p in parsed])
    return images, np.array([int(p[schema.LABEL]) for p in parsed]), [p[schema.KEY].numpy().decode()
                                                                        for p in parsed]


@pytest.mark.parametrize("layout", ["text", "h5"])
def test_records_hold_the_same_digits(data, tmp_path, layout):
    raw_dir, data_dir = str(tmp_path / "raw"), str(tmp_path / "data")
    (write_text if layout == "text" else write_h5)(raw_dir, data)
    assert _prepare(raw_dir, data_dir) == 0
    for split, (images, labels) in data.items():
        stored, stored_labels, keys = _stored(split, data_dir)
        np.testing.assert_array_equal(stored, images)  # same orientation, ink 255 on background 0
        np.testing.assert_array_equal(stored_labels, labels)
        assert keys[1] == (f"zip.{split}.gz:2" if layout == "text" else f"usps.h5:{split}[1]")
    x, y = pipeline.arrays("usps", "train", data_dir, image_size=16, channels=1)
    np.testing.assert_allclose(x[..., 0], data["train"][0] / 127.5 - 1.0, atol=1e-4)
    np.testing.assert_array_equal(y, data["train"][1])
    x28, _ = pipeline.arrays("usps", "test", data_dir, image_size=28, channels=1)
    assert x28.shape == (COUNTS["test"], 28, 28, 1)
    assert x28[:, 0, 0, 0].mean() > x28[:, -1, -1, 0].mean()  # resizing keeps the bright corner


def test_text_files_win_when_both_layouts_are_there(data, tmp_path):
    raw_dir, data_dir = str(tmp_path / "raw"), str(tmp_path / "data")
    write_text(raw_dir, data)
    write_h5(raw_dir, {split: digits(n, 99) for split, n in COUNTS.items()})
    _prepare(raw_dir, data_dir)
    stored, _, keys = _stored("train", data_dir)
    np.testing.assert_array_equal(stored, data["train"][0])
    assert keys[0].startswith("zip.train.gz:")


def _replace_line(path, number, line):
    with gzip.open(path, "rt") as handle:
        lines = handle.readlines()
    lines[number - 1] = line
    with gzip.open(path, "wt") as handle:
        handle.writelines(lines)


def _h5_without_test(raw_dir):
    with h5py.File(os.path.join(raw_dir, "usps.h5"), "a") as handle:
        del handle["test"]


def _h5_label(raw_dir):
    with h5py.File(os.path.join(raw_dir, "usps.h5"), "a") as handle:
        handle["train"]["target"][2] = 12


CORRUPTIONS = {
    # name: (layout, damage, file the message names, words it holds)
    "short line": ("text", lambda d: _replace_line(os.path.join(d, "zip.test.gz"), 3, "3.0000 -1 1\n"),
                   "zip.test.gz", "line 3 has 3 values"),
    "not a number": ("text", lambda d: _replace_line(os.path.join(d, "zip.train.gz"), 2,
                                                     "x " + "0 " * 256 + "\n"),
                     "zip.train.gz", "line 2"),
    "label out of range": ("text", lambda d: _replace_line(os.path.join(d, "zip.train.gz"), 4,
                                                           "11.0000 " + "-1 " * 256 + "\n"),
                           "zip.train.gz", "label 11 at line 4"),
    "pixel out of range": ("text", lambda d: _replace_line(os.path.join(d, "zip.test.gz"), 1,
                                                           "1.0000 " + "2 " * 256 + "\n"),
                           "zip.test.gz", "outside [-1, 1] at line 1"),
    "missing test file": ("text", lambda d: os.remove(os.path.join(d, "zip.test.gz")),
                          "zip.train.gz", "zip.test.gz"),
    "h5 without test group": ("h5", _h5_without_test, "usps.h5", "test/data"),
    "h5 label out of range": ("h5", _h5_label, "usps.h5", "label 12 at train[2]"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_input_stops_with_the_file_name_and_leaves_nothing(data, tmp_path, corruption):
    layout, damage, culprit, words = CORRUPTIONS[corruption]
    raw_dir, data_dir = str(tmp_path / "raw"), tmp_path / "data"
    (write_text if layout == "text" else write_h5)(raw_dir, data)
    damage(raw_dir)
    with pytest.raises(tfrecord.DataError) as error:
        _prepare(raw_dir, str(data_dir))
    assert culprit in str(error.value) and words in str(error.value), str(error.value)
    assert not data_dir.exists()
