"""TFRecords -> tf.data pipelines: decode, resize, scale to [-1, 1], shuffle, batch, prefetch.

Training pipelines for a target domain are built with `labels=False`: they yield images only, so no
training code can read a target label by accident (tests/test_no_target_labels.py checks it).
"""

import tensorflow as tf

from cycada_tf.data import registry, schema, tfrecord
from cycada_tf.data.sources import tfds_source

AUTOTUNE = tf.data.AUTOTUNE


def untuned(ds):
    """`ds` without tf.data's autotuning thread. AUTOTUNE then means the fixed defaults (a parallel map: as
    many calls as cores, at most 16; a prefetch: a buffer that grows while its reader waits), and the
    elements are the same. An iterator's teardown waits for that thread's optimisation pass to end, which
    on a busy CPU can hold model.fit seconds after its last step."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options)


def decode_image(encoded, image_size, channels):
    """PNG bytes -> float32 (image_size, image_size, channels) in [-1, 1]."""
    return from_uint8(tf.io.decode_png(encoded, channels=0), image_size, channels)


def from_uint8(image, image_size, channels):
    """uint8 image(s) (..., height, width, 1 or 3) -> float32 (..., image_size, image_size, channels) in
    [-1, 1]: grey <-> RGB, bilinear resize, scaling. One image or a batch; exported models use it too."""
    convert = {1: lambda: tf.image.grayscale_to_rgb(image) if channels == 3 else image,
               3: lambda: image if channels == 3 else tf.image.rgb_to_grayscale(image)}
    # Channels known when traced: convert now. tf.cond would trace both branches, and grayscale_to_rgb of one
    # RGB image (height, width, 3) fails to trace (its tile's shape comes out (height, width, 9)).
    known = image.shape[-1]
    image = convert[known]() if known in convert else tf.cond(tf.shape(image)[-1] == 1, convert[1], convert[3])
    image = tf.ensure_shape(image, [None] * (image.shape.rank - 1) + [channels])
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


def splits(name, data_dir):
    """The splits of `name` prepared in `data_dir` (a tfds dataset: those tensorflow-datasets has)."""
    if tfds_source.is_tfds(name):
        return tuple(registry.get(name).splits)
    return tuple(tfrecord.read_manifest(registry.ensure(name, data_dir))["splits"])


def count(name, split, data_dir):
    if tfds_source.is_tfds(name):
        return tfds_source.count(name, split, data_dir)
    manifest = tfrecord.read_manifest(registry.ensure(name, data_dir))
    return manifest["splits"][split]["count"]


def load(name, split, data_dir, image_size=32, channels=3, labels=True, batch_size=None,
         shuffle=False, seed=0, repeat=False, drop_remainder=False, cache=True):
    """A dataset of images in [-1, 1] (and int32 labels when labels=True); a repeated one decoded once
    (`cache`)."""
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
    # The digit datasets fit in memory many times over: decode once, for a dataset read again and again. One
    # read once gains nothing, and one read in part (a figure's first test images) would warn that its cache
    # was left unfinished.
    if cache and repeat:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(count(name, split, data_dir), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if batch_size:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return untuned(ds.prefetch(AUTOTUNE))


def arrays(name, split, data_dir, image_size=32, channels=3):
    """The whole split as numpy arrays (images in [-1, 1], labels); for evaluation and small data."""
    import numpy as np
    images, labels = [], []
    for x, y in load(name, split, data_dir, image_size, channels, batch_size=1024, cache=False):
        images.append(x.numpy())
        labels.append(y.numpy())
    return np.concatenate(images), np.concatenate(labels)


def decode_label_map(encoded):
    """PNG bytes of train ids -> int32 (height, width)."""
    return tf.cast(tf.io.decode_png(encoded, channels=1)[..., 0], tf.int32)


def crop_and_flip(image, label, crop_size, flip, seed, ignore_label, fit=None):
    """One random crop (the same window for image and label) and a coin-flip mirror, from a stateless seed.

    fit=None: an image smaller than the crop is padded first: image with 0 (mid grey in [-1, 1]), label with
    the ignore label, so padding never counts in a loss or metric (but a network sees it).
    fit=m: a crop side longer than the image's takes the image's side instead, rounded down to a multiple of
    m: no padding at all, so that two domains of different image sizes show a discriminator no padding to
    tell them apart by (the crop's shape then varies: batch with `batch`).
    """
    height, width = crop_size
    channels = image.shape[-1]
    shape = tf.shape(image)
    if fit is not None:
        height = tf.minimum(height, tf.maximum(shape[0] // fit * fit, 1))
        width = tf.minimum(width, tf.maximum(shape[1] // fit * fit, 1))
    pad_h, pad_w = tf.maximum(height - shape[0], 0), tf.maximum(width - shape[1], 0)
    paddings = [[0, pad_h], [0, pad_w]]
    image = tf.pad(image, paddings + [[0, 0]])
    if label is not None:
        label = tf.pad(label, paddings, constant_values=ignore_label)
        stacked = tf.concat([image, tf.cast(label, tf.float32)[..., None]], axis=-1)
    else:
        stacked = image
    seeds = tf.random.experimental.stateless_split(seed, 2)
    stacked = tf.image.stateless_random_crop(stacked, [height, width, stacked.shape[-1]], seed=seeds[0])
    if flip:
        stacked = tf.image.stateless_random_flip_left_right(stacked, seed=seeds[1])
    if label is None:
        return stacked, None
    return stacked[..., :channels], tf.cast(tf.round(stacked[..., channels]), tf.int32)


def resized_sides(shape, short_side=None, width=None):
    """(height, width) of an image of `shape` (height, width, ...) rescaled, aspect kept: its short side to
    `short_side` (torchvision's Scale(n): the long side floored), else its width to `width` (tools/prepare_data.py
    --width: the height rounded); neither: unchanged."""
    height, wide = shape[0], shape[1]
    if short_side:
        if height <= wide:
            return short_side, wide * short_side // height
        return height * short_side // wide, short_side
    if width:
        return tf.maximum(1, tf.cast(tf.round(height * width / wide), tf.int32)), width
    return height, wide


def rescale(image, label=None, short_side=None, width=None, resize_label=True):
    """`image` (bilinear, antialiased) and `label` (nearest: train ids are never blended) rescaled as
    resized_sides says; resize_label=False keeps the label map as it is (scored at its native size)."""
    if not short_side and not width:
        return image, label
    sides = tf.stack(resized_sides(tf.shape(image), short_side, width))
    image = tf.image.resize(image, sides, method="bilinear", antialias=True)
    if label is not None and resize_label:
        label = tf.image.resize(label[..., None], sides, method="nearest")[..., 0]
    return image, label


def batch(ds, batch_size, drop_remainder=True):
    """`ds` in batches; elements whose images differ in shape (crops fitted to images of several sizes) go
    into batches of one shape each, in their order of arrival, instead of failing to stack."""
    image_spec = tf.nest.flatten(ds.element_spec)[0]
    if batch_size == 1 or image_spec.shape[:2].is_fully_defined():
        return ds.batch(batch_size, drop_remainder=drop_remainder)

    def key(*element):
        shape = tf.shape(tf.nest.flatten(element)[0], out_type=tf.int64)
        return shape[0] * 100_000 + shape[1]

    def reduce(_, window):
        return window.batch(batch_size, drop_remainder=drop_remainder)

    return ds.group_by_window(key, reduce, window_size=batch_size)


def load_segmentation(name, split, data_dir, labels=True, crop_size=None, flip=False, batch_size=None,
                      shuffle=False, shuffle_buffer=256, seed=0, repeat=False, drop_remainder=False, fit=None,
                      short_side=None, width=None, resize_label=True):
    """Images in [-1, 1] (float32, (H, W, 3)) and label maps of train ids (int32, (H, W), 255 = ignore).

    Training: crop_size (height, width) or one side takes a random crop at the same place in image and
    label, flip mirrors both half of the time; both are drawn from `seed` (a different draw each epoch,
    the same sequence for the same seed). Evaluation: crop_size None gives full images (batch them only
    when they share one size, as a prepared Cityscapes does). labels=False yields images only, for the
    target domain. Images keep their prepared size unless short_side or width says otherwise (rescale: before
    the crop; resize_label=False leaves label maps as prepared). fit: see crop_and_flip (crops no larger than
    the image).
    """
    spec = registry.get(name)
    if not spec.segmentation:
        raise ValueError(f"dataset '{name}' has no label maps; use pipeline.load for classification data")
    if crop_size is not None and isinstance(crop_size, int):
        crop_size = (crop_size, crop_size)
    if flip and crop_size is None:
        raise ValueError("flip is a training augmentation: give crop_size too (full images are for evaluation)")
    ds = records(name, split, data_dir)
    if shuffle:  # serialized records: a buffer of encoded PNGs, not of decoded images
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    def decode(serialized, element_seed=None):
        example = schema.parse(serialized)
        image = decode_image(example[schema.IMAGE], None, 3)
        label = None
        if labels:
            encoded = tf.debugging.assert_greater(
                tf.strings.length(example[schema.LABEL_MAP]), 0,
                message=f"a record of '{name}' split '{split}' has no label map (an image-only split); "
                        "load it with labels=False")
            with tf.control_dependencies([encoded]):
                label = decode_label_map(example[schema.LABEL_MAP])
        image, label = rescale(image, label, short_side, width, resize_label)
        if crop_size is not None:
            image, label = crop_and_flip(image, label, crop_size, flip, element_seed, spec.ignore_label, fit)
        return (image, label) if labels else image

    if crop_size is not None:
        # One stateless seed pair per element; re-drawn each epoch, reproducible from `seed`.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds).map(decode, num_parallel_calls=AUTOTUNE, deterministic=True)
    else:
        ds = ds.map(decode, num_parallel_calls=AUTOTUNE, deterministic=True)
    if batch_size:
        ds = batch(ds, batch_size, drop_remainder) if crop_size is not None else ds.batch(batch_size, drop_remainder)
    return untuned(ds.prefetch(AUTOTUNE))
