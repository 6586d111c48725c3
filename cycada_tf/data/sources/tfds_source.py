"""`tfds:<name>` datasets: image classification data a user already prepared with tensorflow-datasets.

`tfds:mnist`, `tfds:svhn_cropped` (any name, config or version tfds.load accepts) read the prepared copy
in `<data_dir>/tfds` when that directory exists, else in tensorflow-datasets' own default
($TFDS_DATA_DIR or ~/tensorflow_datasets). Nothing is downloaded.
"""

import os

import numpy as np
import tensorflow as tf

from cycada_tf.data import schema
from cycada_tf.data.tfrecord import DataError

PREFIX = "tfds:"
SUBDIR = "tfds"  # <data_dir>/tfds, where `tfds build --data_dir=<data_dir>/tfds` puts them
DEFAULT_SPLITS = ("train", "test")


def is_tfds(name):
    return name.startswith(PREFIX)


def tfds_name(name):
    return name[len(PREFIX):]


def tfds_data_dir(data_dir):
    """<data_dir>/tfds if it exists, else None (tensorflow-datasets' default)."""
    candidate = os.path.join(data_dir, SUBDIR) if data_dir else None
    return candidate if candidate and os.path.isdir(candidate) else None


def prepare_hint(name, data_dir="<data_dir>"):
    return (f"Prepare it with tensorflow-datasets: tfds build {tfds_name(name)} "
            f"--data_dir={os.path.join(data_dir, SUBDIR)} (or into ~/tensorflow_datasets)")


def _keys(info):
    """(image feature, label feature) of a classification dataset."""
    image, label = info.supervised_keys or ("image", "label")
    if not isinstance(image, str) or image not in info.features or label not in info.features:
        raise ValueError(f"tfds dataset '{info.name}' has no (image, label) features; "
                         "only image classification datasets can be used")
    return image, label


def _unknown(name):
    return ValueError(f"unknown dataset '{name}': tensorflow-datasets has no '{tfds_name(name)}'")


def spec_fields(name):
    """Registry facts from the dataset's tfds definition: classes, image size, channels, splits."""
    import tensorflow_datasets as tfds
    try:
        info = tfds.builder(tfds_name(name)).info
    except tfds.core.registered.DatasetNotFoundError:
        raise _unknown(name) from None
    image, label = _keys(info)
    height, _, channels = info.features[image].shape
    label_feature = info.features[label]
    classes = tuple(label_feature.names) if hasattr(label_feature, "names") else ()
    splits = tuple(info.splits) or DEFAULT_SPLITS
    return {"classes": classes, "image_size": height, "channels": channels, "splits": splits}


def _load(name, split, data_dir):
    import tensorflow_datasets as tfds
    directory = tfds_data_dir(data_dir)
    try:
        ds, info = tfds.load(tfds_name(name), split=split, data_dir=directory, download=False,
                             shuffle_files=False, with_info=True)
    except tfds.core.registered.DatasetNotFoundError:
        raise _unknown(name) from None
    except AssertionError:  # tfds's way of saying the data is not there
        where = directory or "tensorflow-datasets' default data dir"
        raise DataError(f"dataset '{name}' is not prepared in {where}. "
                        f"{prepare_hint(name, data_dir)}") from None
    except ValueError as error:  # unknown split or config
        raise DataError(f"dataset '{name}', split '{split}': {error}") from None
    return ds, _keys(info)


def check(name, data_dir):
    """Raise DataError with the preparation command unless the dataset is prepared."""
    _load(name, spec_fields(name)["splits"][0], data_dir)


def load(name, split, data_dir):
    """Elements {schema.IMAGE: PNG bytes, schema.LABEL: int64}, what schema.parse gives for a TFRecord.

    tfds decodes its images; they are encoded again so that the pipeline's one decoding path
    (pipeline.decode_image) serves both kinds of source.
    """
    ds, (image, label) = _load(name, split, data_dir)
    return ds.map(lambda e: {schema.IMAGE: tf.io.encode_png(e[image]), schema.LABEL: e[label]},
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def count(name, split, data_dir):
    ds, _ = _load(name, split, data_dir)
    cardinality = int(ds.cardinality())
    return cardinality if cardinality >= 0 else int(ds.reduce(0, lambda n, _: n + 1))


def examples(name, split, data_dir):
    """A generator of tf.train.Example of one split, keyed "tfds:<name>/<split>:<index>"."""
    import tensorflow_datasets as tfds
    ds, (image, label) = _load(name, split, data_dir)
    for i, element in enumerate(tfds.as_numpy(ds)):
        yield schema.make_example(np.asarray(element[image]), element[label], key=f"{name}/{split}:{i}")


def records(name, split, data_dir):
    """Serialized tf.train.Example strings of the shared schema, like a TFRecord split."""
    return tf.data.Dataset.from_generator(
        lambda: (example.SerializeToString(deterministic=True) for example in examples(name, split, data_dir)),
        output_signature=tf.TensorSpec([], tf.string))
