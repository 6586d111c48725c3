"""Image augmentations of self-training (stages/self_train.py), per image, on batches in [-1, 1] inside the
train step, random streams from a keras.random.SeedGenerator (part of the stage's checkpoint).

weak:   a random translation of up to WEAK_SHIFT pixels (reflected borders), as FixMatch's weak view (its
        horizontal flip is left out: digits are not mirror-symmetric).
strong: colour (each channel inverted with probability 1/2, contrast and brightness jitter, channels
        shuffled), a translation of up to STRONG_SHIFT pixels and a Cutout square (DeVries & Taylor 2017): a
        fixed-strength stand-in for the RandAugment / CTAugment policies of FixMatch and AdaMatch, which
        include Invert, Contrast, Brightness, Translate and Cutout.
"""

import keras
import tensorflow as tf

WEAK_SHIFT = 2
STRONG_SHIFT = 3
CUTOUT_FRACTION = 0.375  # side of the Cutout square relative to the image side (12 of 32 pixels)
CONTRAST = (0.5, 1.5)
BRIGHTNESS = 0.3


def _uniform(shape, low, high, seed):
    return keras.random.uniform(shape, low, high, seed=seed)


def translate(images, shift, seed):
    """Each image moved by its own random (dy, dx) in [-shift, shift]^2, borders reflected."""
    size = tf.shape(images)
    batch, height, width = size[0], size[1], size[2]
    padded = tf.pad(images, [[0, 0], [shift, shift], [shift, shift], [0, 0]], mode="REFLECT")
    offsets = tf.cast(tf.floor(_uniform((batch, 2), 0.0, 2.0 * shift + 1.0, seed)), tf.int32)
    offsets = tf.minimum(offsets, 2 * shift)
    rows = offsets[:, :1] + tf.range(height)[None]
    columns = offsets[:, 1:] + tf.range(width)[None]
    images = tf.gather(padded, rows, axis=1, batch_dims=1)
    return tf.gather(images, columns, axis=2, batch_dims=1)


def colour(images, seed):
    """Per image: each channel inverted with probability 1/2, contrast scaled around the image mean,
    brightness shifted per channel, channels shuffled."""
    dtype = images.dtype
    batch, channels = tf.shape(images)[0], images.shape[-1]
    invert = tf.cast(_uniform((batch, 1, 1, channels), 0.0, 1.0, seed) < 0.5, dtype)
    images = images * (1.0 - 2.0 * invert)
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    scale = tf.cast(_uniform((batch, 1, 1, 1), *CONTRAST, seed), dtype)
    shift = tf.cast(_uniform((batch, 1, 1, channels), -BRIGHTNESS, BRIGHTNESS, seed), dtype)
    images = tf.clip_by_value((images - mean) * scale + mean + shift, -1.0, 1.0)
    if channels > 1:
        order = tf.argsort(_uniform((batch, channels), 0.0, 1.0, seed), axis=-1)
        images = tf.gather(images, order, axis=3, batch_dims=1)
    return images


def cutout(images, seed):
    """Per image, a square of side CUTOUT_FRACTION x the image side set to 0 (mid grey), centred anywhere."""
    size = tf.shape(images)
    batch = size[0]
    height, width = tf.cast(size[1], tf.float32), tf.cast(size[2], tf.float32)
    centre = _uniform((batch, 2), 0.0, 1.0, seed) * tf.stack([height, width])
    half = CUTOUT_FRACTION * tf.minimum(height, width) / 2.0
    rows = tf.range(height)[None, :, None] - centre[:, None, None, 0]
    columns = tf.range(width)[None, None, :] - centre[:, None, None, 1]
    inside = (tf.abs(rows) < half) & (tf.abs(columns) < half)
    return images * tf.cast(~inside, images.dtype)[..., None]


def weak(images, seed, geometric=True):
    """geometric=False (segmentation, whose label maps would have to move too): the images as they are; their
    pipeline already crops and flips them."""
    return translate(images, WEAK_SHIFT, seed) if geometric else images


def strong(images, seed, geometric=True):
    """geometric=False (segmentation): colour and Cutout only, so that each pixel of the strong view is the
    pixel of the weak view whose prediction is its pseudo-label."""
    images = colour(images, seed)
    if geometric:
        images = translate(images, STRONG_SHIFT, seed)
    return cutout(images, seed)
