"""`tfds:` datasets read through tensorflow-datasets (mocked, offline) give the same elements as TFRecords."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from cycada_tf.data import pipeline, registry, schema, tfrecord

COUNT = 6


def fake_digits(shape):
    """Deterministic images with a bright top-left pixel (catches transposes) and labels 0..COUNT-1."""
    rng = np.random.RandomState(0)
    images = rng.randint(0, 200, size=(COUNT,) + shape).astype(np.uint8)
    images[:, 0, 0, :] = 255
    return images, np.arange(COUNT, dtype=np.int64) % 10


def mocked(shape):
    images, labels = fake_digits(shape)

    def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False, **kwargs):
        return tf.data.Dataset.from_tensor_slices({"image": images, "label": labels})

    return tfds.testing.mock_data(num_examples=COUNT, as_dataset_fn=as_dataset), images, labels


@pytest.mark.parametrize("name,shape", [("tfds:mnist", (28, 28, 1)), ("tfds:svhn_cropped", (32, 32, 3))])
def test_tfds_elements_match_what_tfds_holds(tmp_path, name, shape):
    data_dir = str(tmp_path)
    mock, images, labels = mocked(shape)
    with mock:
        spec = registry.get(name)
        assert (spec.image_size, spec.channels, spec.num_classes) == (shape[0], shape[-1], 10)
        assert registry.ensure(name, data_dir)  # prepared (mocked): no error
        assert pipeline.count(name, "train", data_dir) == COUNT
        x, y = pipeline.arrays(name, "train", data_dir, image_size=shape[0], channels=shape[-1])
        np.testing.assert_allclose(x, images / 127.5 - 1.0, atol=1e-4)
        np.testing.assert_array_equal(y, labels)
        batches = list(pipeline.load(name, "test", data_dir, image_size=32, channels=3, labels=False,
                                     batch_size=4, shuffle=True, drop_remainder=True))
        assert [b.shape for b in batches] == [(4, 32, 32, 3)]
        parsed = [schema.parse(r) for r in pipeline.records(name, "train", data_dir)]
        np.testing.assert_array_equal([tf.io.decode_png(p[schema.IMAGE]).numpy() for p in parsed], images)
        np.testing.assert_array_equal([int(p[schema.LABEL]) for p in parsed], labels)
        assert parsed[1][schema.KEY].numpy().decode() == f"{name}/train:1"


def test_unprepared_tfds_dataset_names_the_command(tmp_path):
    os.makedirs(tmp_path / "tfds")  # an empty tfds data dir: nothing prepared, whatever ~ holds
    with pytest.raises(tfrecord.DataError, match="tfds build mnist"):
        pipeline.count("tfds:mnist", "train", str(tmp_path))
    with pytest.raises(tfrecord.DataError, match=str(tmp_path / "tfds")):
        registry.ensure("tfds:mnist", str(tmp_path))


def test_unknown_tfds_dataset_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="tensorflow-datasets has no 'no_such_digits'"):
        registry.get("tfds:no_such_digits")
