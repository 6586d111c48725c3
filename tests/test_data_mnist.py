"""MNIST: tiny IDX files in the official format -> TFRecords with the same pixels, labels and orientation."""

import gzip
import os
import struct

import numpy as np
import pytest
import tensorflow as tf

from cycada_tf.data import pipeline, schema, tfrecord
from cycada_tf.data.sources import mnist
from tools import prepare_data

COUNTS = {"train": 12, "test": 5}


def idx_bytes(magic, array):
    array = np.asarray(array, np.uint8)
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes()


def digits(count, seed):
    """Random images (no symmetry a transpose or flip could hide), top-left pixel always 255."""
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 200, size=(count, 28, 28)).astype(np.uint8)
    images[:, 0, 0] = 255
    return images, rng.randint(0, 10, size=count).astype(np.uint8)


def write_mnist(raw_dir, gzipped=("train",)):
    """The four official files; the splits in `gzipped` get .gz names and gzip content."""
    os.makedirs(raw_dir, exist_ok=True)
    data = {}
    for seed, (split, (images_stem, labels_stem)) in enumerate(mnist.FILES.items()):
        images, labels = digits(COUNTS[split], seed)
        data[split] = (images, labels)
        for stem, payload in ((images_stem, idx_bytes(mnist.IMAGE_MAGIC, images)),
                              (labels_stem, idx_bytes(mnist.LABEL_MAGIC, labels))):
            if split in gzipped:
                with gzip.open(os.path.join(raw_dir, stem + ".gz"), "wb") as handle:
                    handle.write(payload)
            else:
                with open(os.path.join(raw_dir, stem), "wb") as handle:
                    handle.write(payload)
    return data


@pytest.fixture
def raw(tmp_path):
    return str(tmp_path / "raw"), write_mnist(str(tmp_path / "raw"))


def test_records_hold_the_same_pixels_labels_and_keys(raw, tmp_path):
    raw_dir, data = raw
    data_dir = str(tmp_path / "data")
    assert prepare_data.main(["--dataset=mnist", f"--raw_dir={raw_dir}", f"--data_dir={data_dir}"]) == 0
    for split, (images, labels) in data.items():
        parsed = [schema.parse(r) for r in pipeline.records("mnist", split, data_dir)]
        decoded = np.stack([tf.io.decode_png(p[schema.IMAGE]).numpy() for p in parsed])
        assert decoded.shape == (COUNTS[split], 28, 28, 1)
        np.testing.assert_array_equal(decoded[..., 0], images)
        assert decoded[0, 0, 0, 0] == 255  # top-left stays top-left
        np.testing.assert_array_equal([int(p[schema.LABEL]) for p in parsed], labels)
        stem = mnist.FILES[split][0]
        assert parsed[3][schema.KEY].numpy().decode().startswith(stem) and \
            parsed[3][schema.KEY].numpy().decode().endswith(":3")
        assert pipeline.count("mnist", split, data_dir) == COUNTS[split]


def test_pipeline_gives_the_pixels_in_minus_one_one(raw, tmp_path):
    raw_dir, data = raw
    data_dir = str(tmp_path / "data")
    prepare_data.main(["--dataset=mnist", f"--raw_dir={raw_dir}", f"--data_dir={data_dir}"])
    x, y = pipeline.arrays("mnist", "test", data_dir, image_size=28, channels=1)
    images, labels = data["test"]
    np.testing.assert_allclose(x[..., 0], images / 127.5 - 1.0, atol=1e-4)
    np.testing.assert_array_equal(y, labels)
    x32, _ = pipeline.arrays("mnist", "test", data_dir, image_size=32, channels=3)
    assert x32.shape == (COUNTS["test"], 32, 32, 3) and x32.min() >= -1.0 and x32.max() <= 1.0


def _truncate(path, keep):
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[:keep])


def _rewrite(path, payload):
    with open(path, "wb") as handle:
        handle.write(payload)


CORRUPTIONS = {
    # name: (how to damage the raw dir, the file the message must name, words it must hold)
    "truncated payload": (lambda d: _truncate(os.path.join(d, "t10k-images-idx3-ubyte"), 16 + 784 * 2),
                          "t10k-images-idx3-ubyte", "truncated"),
    "truncated header": (lambda d: _truncate(os.path.join(d, "t10k-labels-idx1-ubyte"), 6),
                         "t10k-labels-idx1-ubyte", "truncated"),
    "truncated gzip": (lambda d: _truncate(os.path.join(d, "train-images-idx3-ubyte.gz"), 100),
                       "train-images-idx3-ubyte.gz", "truncated"),
    "labels file as images": (lambda d: _rewrite(os.path.join(d, "t10k-images-idx3-ubyte"),
                                                 idx_bytes(mnist.LABEL_MAGIC, np.zeros(5))),
                              "t10k-images-idx3-ubyte", "magic"),
    "wrong size": (lambda d: _rewrite(os.path.join(d, "t10k-images-idx3-ubyte"),
                                      idx_bytes(mnist.IMAGE_MAGIC, np.zeros((5, 32, 32)))),
                   "t10k-images-idx3-ubyte", "dimensions"),
    "label out of range": (lambda d: _rewrite(os.path.join(d, "t10k-labels-idx1-ubyte"),
                                              idx_bytes(mnist.LABEL_MAGIC, [1, 2, 10, 3, 4])),
                           "t10k-labels-idx1-ubyte", "label 10"),
    "count mismatch": (lambda d: _rewrite(os.path.join(d, "t10k-labels-idx1-ubyte"),
                                          idx_bytes(mnist.LABEL_MAGIC, [1, 2, 3])),
                       "t10k-labels-idx1-ubyte", "3 labels for 5 images"),
    "missing file": (lambda d: os.remove(os.path.join(d, "t10k-labels-idx1-ubyte")),
                     "t10k-labels-idx1-ubyte", "missing"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_corrupt_input_stops_with_the_file_name_and_leaves_nothing(raw, tmp_path, corruption):
    raw_dir, _ = raw
    damage, culprit, words = CORRUPTIONS[corruption]
    damage(raw_dir)
    data_dir = tmp_path / "data"
    with pytest.raises(tfrecord.DataError) as error:
        prepare_data.main(["--dataset=mnist", f"--raw_dir={raw_dir}", f"--data_dir={data_dir}"])
    assert culprit in str(error.value) and words in str(error.value)
    assert not data_dir.exists()
