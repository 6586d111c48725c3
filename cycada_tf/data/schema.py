"""The one tf.train.Example schema shared by every dataset (digits and segmentation)."""

import io

import numpy as np
import tensorflow as tf
from PIL import Image

IMAGE = "image/encoded"
HEIGHT = "image/height"
WIDTH = "image/width"
CHANNELS = "image/channels"
LABEL = "label"  # class id for classification; -1 when the record has a label map instead
LABEL_MAP = "label/encoded"  # PNG of per-pixel class ids (segmentation); empty for classification
KEY = "key"  # where the record came from (file name, index): for error messages and de-duplication
IGNORE_LABEL = 255  # label-map value of a pixel that is none of a dataset's evaluated classes: it counts nowhere

FEATURES = {
    IMAGE: tf.io.FixedLenFeature([], tf.string),
    HEIGHT: tf.io.FixedLenFeature([], tf.int64),
    WIDTH: tf.io.FixedLenFeature([], tf.int64),
    CHANNELS: tf.io.FixedLenFeature([], tf.int64),
    LABEL: tf.io.FixedLenFeature([], tf.int64, default_value=-1),
    LABEL_MAP: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    KEY: tf.io.FixedLenFeature([], tf.string, default_value=b""),
}


def encode_png(array):
    """uint8 array (H, W), (H, W, 1) or (H, W, 3) -> PNG bytes (lossless)."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(f"images are stored as uint8, got {array.dtype}")
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(value)]))


def make_example(image, label=-1, label_map=None, key=""):
    """One record: a uint8 image, and either a class id or a uint8/uint16 label map."""
    image = np.asarray(image)
    channels = 1 if image.ndim == 2 else image.shape[-1]
    feature = {
        IMAGE: _bytes(encode_png(image)),
        HEIGHT: _int(image.shape[0]),
        WIDTH: _int(image.shape[1]),
        CHANNELS: _int(channels),
        LABEL: _int(label),
        KEY: _bytes(key.encode() if isinstance(key, str) else key),
    }
    if label_map is not None:
        feature[LABEL_MAP] = _bytes(encode_png(label_map))
    return tf.train.Example(features=tf.train.Features(feature=feature))


def parse(serialized):
    """Serialized example -> dict of tensors (image still encoded)."""
    return tf.io.parse_single_example(serialized, FEATURES)
