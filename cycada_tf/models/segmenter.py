"""What every segmenter of the paper's section 4.2 shares (FCN8s, DRN-C-26, the small FCN): the contract, the
output head at the input size, the checks of the input size and the padding to it, the view of its features.

Every segmenter maps images in [-1, 1] (B, H, W, 3) to class logits at the input resolution (B, H, W,
num_classes), float32 under a mixed precision policy, and names one layer "features": the map that feature-level
adaptation (Eq. 5) shows its discriminator; `feature_model` exposes it beside the logits.
"""

import numpy as np
import tensorflow as tf

import keras
from keras import layers, ops

from cycada_tf.models.layers import computing_in

FEATURES = "features"  # the layer every segmenter names for feature-level adaptation
LOGITS = "logits"      # its float32 output layer


@keras.saving.register_keras_serializable("cycada_tf")
class ResizeLike(layers.Layer):
    """[x, reference] -> x resized bilinearly to the height and width of `reference` (known at run time only
    when the model's input size is not fixed). tf.image.resize, as keras.ops.image.resize takes no tensor size
    inside a graph."""

    def call(self, inputs):
        x, reference = inputs
        size = tf.shape(reference)[1:3]
        return ops.cast(tf.image.resize(x, size, method="bilinear"), self.compute_dtype)

    def compute_output_shape(self, shapes):
        x, reference = shapes
        return (x[0], reference[1], reference[2], x[3])


def logits_at_input_size(scores, image):
    """The float32 LOGITS layer: class scores upsampled bilinearly to the size of the input image (DRN's
    segmentation head; the small FCN's)."""
    return ResizeLike(dtype="float32", name=LOGITS)([scores, image])


def any_size(network, multiple):
    """`network` (sides must be multiples of `multiple`) applied to images of any size: reflection-padded at the
    bottom and right up to the next multiple, the output cropped back (GTA5 at width 1024 is 563 high). With
    `multiple` 1 there is nothing to pad: `network` itself is applied."""
    if multiple == 1:
        return lambda x, training=False: network(x, training=training)

    def apply(x, training=False):
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        padded = tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="REFLECT")
        return network(padded, training=training)[:, :height, :width, :]
    return apply


def input_multiple(model):
    """What the sides of `model`'s input must be multiples of (its SizeCheck layers; 1 if none)."""
    multiple = 1
    for layer in model.layers:
        if isinstance(layer, SizeCheck):
            multiple = int(np.lcm(multiple, layer.multiple))
    return multiple


@keras.saving.register_keras_serializable("cycada_tf")
class SizeCheck(layers.Layer):
    """Passes its input through, failing with a clear message when its height or width is not a multiple of
    `multiple` (for inputs whose size is only known at run time; static sizes are checked when building)."""

    def __init__(self, multiple, model_name, **kwargs):
        super().__init__(**kwargs)
        self.multiple, self.model_name = int(multiple), model_name

    def call(self, x):
        remainder = tf.math.floormod(tf.shape(x)[1:3], self.multiple)
        check = tf.debugging.assert_equal(
            remainder, tf.zeros_like(remainder),
            message=f"{self.model_name}: input height and width must be multiples of {self.multiple}")
        with tf.control_dependencies([check]):
            return tf.identity(x)

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple, "model_name": self.model_name}


def feature_model(model):
    """A keras.Model from `model`'s input to (features, logits): the layer named "features" and the float32
    logits, sharing `model`'s weights. Which map that is: fc7 for fcn8s, level 8 for drn26, the last hidden
    map for small_fcn (each builder's docstring)."""
    try:
        features = model.get_layer(FEATURES).output
    except ValueError:
        raise ValueError(f"{model.name} has no layer named {FEATURES!r}: build it with cycada_tf.models' fcn8s, "
                         "drn26 or small_fcn") from None
    return computing_in(keras.Model(model.input, [features, model.output], name=f"{model.name}_features"),
                        model.dtype_policy)


def check_input_shape(input_shape, name, multiple=1, channels=None):
    """`input_shape` as a tuple (height, width, channels), or ValueError naming the network `name` when it has
    another length, other than `channels` channels, or a known side that is not a multiple of `multiple`."""
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"{name}: input_shape is (height, width, channels), got {input_shape}")
    if channels is not None and input_shape[2] != channels:
        raise ValueError(f"{name}: takes {channels}-channel images, got input_shape {input_shape}")
    for side in input_shape[:2]:
        if side is not None and side % multiple:
            raise ValueError(f"{name}: input height and width must be multiples of {multiple}, "
                             f"got input_shape {input_shape}")
    return input_shape
