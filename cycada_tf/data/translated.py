"""The translated records a run writes after pixel adaptation: the source training images as the target model
learns from them (G_S->T(x_s), or G_T->S(G_S->T(x_s)) under t2s), each with its source label, and under t2s the
target training images as the target model reads them (G_T->S(x_t)), without labels.

They are TFRecords of the shared schema in <run_dir>/seed_<k>/translated_<domain>/, written once (the manifest
records the translators' SHA-256, so a retrained pixel stage makes them stale) and read as training reads any
dataset: shuffled, repeated; segmentation records cropped and flipped as the stage's crop says.
"""

import os
import time

import numpy as np
import tensorflow as tf

from cycada_tf.data import pipeline, schema, tfrecord

BATCH = 256  # images translated at a time
PROGRESS_EVERY_S = 10.0  # seconds between two progress lines while records are written


def directory(seed_dir, domain):
    """Where the translated records of `domain` (source or target) of one seed live."""
    return os.path.join(seed_dir, f"translated_{domain}")


def classification_example(image, label, key):
    """One record of translated digits: the image and its source label (-1: none, for the target)."""
    return schema.make_example(image, int(label) if label is not None else -1, key=key)


def segmentation_example(image, label, key):
    """One record of translated road scenes: the image and its source label map (none for the target)."""
    return schema.make_example(image, label_map=None if label is None else label.astype(np.uint8), key=key)


def write(path, batches, mapping, make_example, copies, inputs, info, log=None, images=None):
    """`mapping` applied to the images of `batches` (a dataset of image batches, or of (image, label) batches),
    `copies` times over (a translator with a style code draws another z each time), written as one `train`
    split at `path`. `inputs` and `info` go to the manifest. `log` gets a progress line every PROGRESS_EVERY_S
    seconds, with the time left when `images` (the images of `batches`) is given, and one at the end."""
    labels = isinstance(batches.element_spec, tuple)
    total = images * copies if images else None
    start = time.monotonic()
    progress = {"written": 0, "said": start}

    def say(now):
        written, seconds = progress["written"], now - start
        if total:
            left = seconds / max(written, 1) * (total - written)
            log(f"translated records: {written} of {total} images ({100 * written / total:.0f}%) in "
                f"{seconds:.0f} s, ~{left:.0f} s left: {path}")
        else:
            log(f"translated records: {written} images in {seconds:.0f} s: {path}")
        progress["said"] = now

    def examples():
        for copy in range(copies):
            index = 0
            for batch in batches:
                x, y = batch if labels else (batch, None)
                pictures = pipeline.to_uint8(mapping(x)).numpy()
                for i, image in enumerate(pictures):
                    yield make_example(image, y[i].numpy() if labels else None, f"copy{copy}:{index}")
                    index += 1
                progress["written"] += len(pictures)
                now = time.monotonic()
                if log is not None and now - progress["said"] >= PROGRESS_EVERY_S:
                    say(now)

    tfrecord.write_dataset(path, {"train": examples()}, inputs, info=info)
    if log is not None:
        say(time.monotonic())


def count(path):
    return tfrecord.read_manifest(path)["splits"]["train"]["count"]


def load_classification(path, image_size, channels, labels, seed):
    """(repeated, shuffled dataset of images (and labels), number of records) of translated digits."""
    def parse(serialized):
        example = schema.parse(serialized)
        image = pipeline.decode_image(example[schema.IMAGE], image_size, channels)
        return (image, tf.cast(example[schema.LABEL], tf.int32)) if labels else image

    total = count(path)
    ds = tf.data.TFRecordDataset(tfrecord.split_files(path, "train"))
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE).cache()
    return pipeline.untuned(ds.shuffle(total, seed=seed).repeat()), total


def load_segmentation(path, labels, crop, seed, ignore_label=schema.IGNORE_LABEL, fit=None, short_side=None):
    """(repeated, shuffled dataset of random crops with flips (and label maps), number of records) of
    translated road scenes; each crop's window comes from a stateless seed drawn per element. fit: see
    pipeline.crop_and_flip; short_side: each image (and label map) rescaled to it first (pipeline.rescale)."""
    total = count(path)

    @tf.autograph.experimental.do_not_convert  # plain TF ops; AutoGraph trips over the closure
    def parse(serialized, element_seed):
        example = schema.parse(serialized)
        image = pipeline.decode_image(example[schema.IMAGE], None, 3)
        label = pipeline.decode_label_map(example[schema.LABEL_MAP]) if labels else None
        image, label = pipeline.rescale(image, label, short_side)
        image, label = pipeline.crop_and_flip(image, label, crop, True, element_seed, ignore_label, fit)
        return (image, label) if labels else image

    ds = tf.data.TFRecordDataset(tfrecord.split_files(path, "train")).cache()
    ds = ds.shuffle(min(total, 256), seed=seed).repeat()
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return pipeline.untuned(tf.data.Dataset.zip(ds, seeds).map(parse, num_parallel_calls=tf.data.AUTOTUNE)), total
