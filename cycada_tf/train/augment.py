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


# Segmentation self-training (stages/class_mix.py): ClassMix and DACS' photometric augmentation.
JITTER_CONTRAST = (0.8, 1.2)
JITTER_BRIGHTNESS = 0.1


def class_mix_mask(labels, classes, ignore_label, seed):
    """ClassMix (Olsson et al. 2021): per label map (batch, height, width), half of the classes present in it
    (rounded up), drawn at random; 1.0 on their pixels, 0.0 elsewhere (ignored pixels never chosen)."""
    labels = tf.cast(labels, tf.int32)
    batch = tf.shape(labels)[0]
    valid = labels != ignore_label
    safe = tf.where(valid, labels, classes)  # the extra index `classes` is never chosen
    present = tf.reduce_max(tf.one_hot(safe, classes + 1, dtype=tf.float32), axis=[1, 2])[:, :classes] > 0
    scores = tf.where(present, _uniform((batch, classes), 0.0, 1.0, seed), 2.0)
    rank = tf.argsort(tf.argsort(scores, axis=-1), axis=-1)  # 0 for the smallest score
    count = tf.reduce_sum(tf.cast(present, tf.int32), axis=-1, keepdims=True)
    chosen = present & (rank < (count + 1) // 2)
    chosen = tf.concat([chosen, tf.zeros((batch, 1), tf.bool)], axis=-1)
    return tf.cast(tf.gather(chosen, safe, batch_dims=1), tf.float32)


def mix(pasted, background, mask):
    """`pasted` where mask (batch, height, width) is 1, `background` elsewhere."""
    mask = tf.cast(mask, pasted.dtype)[..., None]
    return mask * pasted + (1.0 - mask) * tf.cast(background, pasted.dtype)


def colour_jitter(images, seed):
    """Per image: contrast around its mean and brightness per channel, mildly (no inversion, no channel
    shuffle: a road scene's colours carry its classes)."""
    dtype = images.dtype
    batch, channels = tf.shape(images)[0], images.shape[-1]
    mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
    scale = tf.cast(_uniform((batch, 1, 1, 1), *JITTER_CONTRAST, seed), dtype)
    shift = tf.cast(_uniform((batch, 1, 1, channels), -JITTER_BRIGHTNESS, JITTER_BRIGHTNESS, seed), dtype)
    return tf.clip_by_value((images - mean) * scale + mean + shift, -1.0, 1.0)
