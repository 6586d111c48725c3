"""TFRecords -> tf.data pipelines: decode, resize, scale to [-1, 1], shuffle, batch, prefetch.

Training pipelines for a target domain are built with `labels=False`: they yield images only, so no
training code can read a target label by accident (tests/test_no_target_labels.py checks it).
"""

import tensorflow as tf

from cycada_tf.data import registry, schema, tfrecord
from cycada_tf.data.sources import tfds_source

AUTOTUNE = tf.data.AUTOTUNE


def decode_image(encoded, image_size, channels):
    """PNG bytes -> float32 (image_size, image_size, channels) in [-1, 1]."""
    image = tf.io.decode_png(encoded, channels=0)
    image = tf.cond(tf.shape(image)[-1] == 1,
                    lambda: tf.image.grayscale_to_rgb(image) if channels == 3 else image,
                    lambda: image if channels == 3 else tf.image.rgb_to_grayscale(image))
    image = tf.ensure_shape(image, [None, None, channels])
    image = tf.cast(image, tf.float32)
    if image_size is not None:
        image = tf.image.resize(image, [image_size, image_size], method="bilinear", antialias=True)
    return image / 127.5 - 1.0


def to_uint8(images):
    """[-1, 1] floats -> uint8, for figures and summaries."""
    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0, 255), tf.uint8)


def records(name, split, data_dir):
    """Serialized tf.train.Example strings of one split (TFRecord shards, or converted from tfds)."""
    spec = registry.get(name)
    if tfds_source.is_tfds(name):
        return tfds_source.records(name, split, data_dir)
    directory = registry.ensure(name, data_dir)
    return tf.data.TFRecordDataset(tfrecord.split_files(directory, split, spec.prepare_hint))


def count(name, split, data_dir):
    if tfds_source.is_tfds(name):
        return tfds_source.count(name, split, data_dir)
    manifest = tfrecord.read_manifest(registry.ensure(name, data_dir))
    return manifest["splits"][split]["count"]


def load(name, split, data_dir, image_size=32, channels=3, labels=True, batch_size=None,
         shuffle=False, seed=0, repeat=False, drop_remainder=False, cache=True):
    """A dataset of images in [-1, 1] (and int32 labels when labels=True)."""
    def decode(example):
        image = decode_image(example[schema.IMAGE], image_size, channels)
        if labels:
            return image, tf.cast(example[schema.LABEL], tf.int32)
        return image

    if tfds_source.is_tfds(name):  # already {IMAGE: PNG bytes, LABEL}, as schema.parse gives
        ds = tfds_source.load(name, split, data_dir).map(decode, num_parallel_calls=AUTOTUNE,
                                                         deterministic=True)
    else:
        ds = records(name, split, data_dir).map(lambda serialized: decode(schema.parse(serialized)),
                                                num_parallel_calls=AUTOTUNE, deterministic=True)
    if cache:  # the digit datasets fit in memory many times over; decode once
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(count(name, split, data_dir), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if batch_size:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(AUTOTUNE)


def arrays(name, split, data_dir, image_size=32, channels=3):
    """The whole split as numpy arrays (images in [-1, 1], labels); for evaluation and small data."""
    import numpy as np
    images, labels = [], []
    for x, y in load(name, split, data_dir, image_size, channels, batch_size=1024, cache=False):
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)
