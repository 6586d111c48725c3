"""Layers the paper's networks share: instance norm, batch norm as PyTorch's, reflection padding, the residual
block.

tensorflow-addons is end-of-life and does not import on TF 2.21; its InstanceNormalization is
GroupNormalization with one group per channel. Reflection padding is keras.ops.pad(mode="reflect") in
meaning; ReflectionPad2D computes it by slices (see reflection_pad).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

BN_MOMENTUM, BN_EPSILON = 0.9, 1e-5  # PyTorch's BatchNorm2d defaults (momentum 0.1 there is 1 - 0.9 here)


def instance_norm(affine=True, name=None, dtype=None):
    """Instance norm (one group per channel) computing in the dtype policy `dtype` (None: Keras' default)."""
    return layers.GroupNormalization(groups=-1, epsilon=1e-5, center=affine, scale=affine, name=name, dtype=dtype)


def batch_norm(name=None, dtype=None):
    """Batch norm with PyTorch's momentum and epsilon, as the released networks (DRN, pix2pix) use it."""
    return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name, dtype=dtype)


def computing_in(model, dtype):
    """`model`, a container of layers (a functional keras.Model or a Sequential, which take no dtype argument),
    given the dtype policy `dtype` of the layers it holds (None: Keras' default, left as it is)."""
    if dtype is not None:
        model.dtype_policy = dtype
    return model


def sequential(stack, name, dtype=None):
    """keras.Sequential(stack) computing in the dtype policy `dtype`, like the layers it holds."""
    return computing_in(keras.Sequential(stack, name=name), dtype)


def _axis_slice(x, axis, start, stop):
    return x[(slice(None),) * axis + (slice(start, stop),)]


def _reflect_1d(x, p, axis):
    """x mirrored by p on both ends of `axis`, the edge not repeated (numpy's "reflect")."""
    return tf.concat([tf.reverse(_axis_slice(x, axis, 1, p + 1), [axis]), x,
                      tf.reverse(_axis_slice(x, axis, -p - 1, -1), [axis])], axis)


def _reflect_1d_adjoint(g, p, axis):
    """The gradient of _reflect_1d: the middle of g, plus each mirrored border added back, flipped, onto the
    p elements next to the edge it copied."""
    middle = _axis_slice(g, axis, p, -p)
    left = tf.reverse(_axis_slice(g, axis, None, p), [axis])
    right = tf.reverse(_axis_slice(g, axis, -p, None), [axis])
    n = g.shape[axis] - 2 * p if g.shape[axis] is not None else None
    if n is not None and n >= 2 * p + 2:  # the two bands are apart: five slices, two of them summed
        return tf.concat([_axis_slice(middle, axis, None, 1), _axis_slice(middle, axis, 1, p + 1) + left,
                          _axis_slice(middle, axis, p + 1, -p - 1), _axis_slice(middle, axis, -p - 1, -1) + right,
                          _axis_slice(middle, axis, -1, None)], axis)
    n = tf.shape(g)[axis] - 2 * p  # short or unknown length: the bands may overlap; zero-pad each and add
    paddings = lambda before, after: [[before, after] if i == axis else [0, 0] for i in range(len(g.shape))]
    return middle + tf.pad(left, paddings(1, n - 1 - p)) + tf.pad(right, paddings(n - 1 - p, 1))


def reflection_pad(x, p):
    """Height and width of NHWC x mirrored by p, as tf.pad(mode="REFLECT") (numpy's "reflect"), by reversed
    slices with a hand-written gradient, which gives the same values: on CPU, oneDNN builds of TensorFlow run
    MirrorPad and MirrorPadGrad slowly in bfloat16 (docs/speed.md)."""

    @tf.custom_gradient
    def pad(x):
        def grad(g):
            return _reflect_1d_adjoint(_reflect_1d_adjoint(g, p, 1), p, 2)
        return _reflect_1d(_reflect_1d(x, p, 1), p, 2), grad

    for axis in (1, 2):
        if x.shape[axis] is not None and x.shape[axis] <= p:
            raise ValueError(f"reflection padding of {p} needs sides over {p} pixels, got shape {x.shape}")
    return pad(x)


@keras.saving.register_keras_serializable("cycada_tf")
class ReflectionPad2D(layers.Layer):
    """Pads height and width by mirroring (reflection_pad)."""

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        return reflection_pad(x, self.padding)

    def compute_output_shape(self, shape):
        grow = lambda d: None if d is None else d + 2 * self.padding
        return (shape[0], grow(shape[1]), grow(shape[2]), shape[3])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable("cycada_tf")
class ResidualBlock(layers.Layer):
    """x + (reflect-pad, conv3x3, instance norm, ReLU, reflect-pad, conv3x3, instance norm)(x)."""

    def __init__(self, filters, affine=True, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.affine = int(filters), bool(affine)
        dtype = self.dtype_policy  # its layers compute in its own precision
        self.pad1, self.pad2 = ReflectionPad2D(1, dtype=dtype), ReflectionPad2D(1, dtype=dtype)
        self.conv1 = layers.Conv2D(filters, 3, padding="valid", dtype=dtype)
        self.conv2 = layers.Conv2D(filters, 3, padding="valid", dtype=dtype)
        self.norm1, self.norm2 = instance_norm(affine, dtype=dtype), instance_norm(affine, dtype=dtype)

    def build(self, shape):
        self.conv1.build(self.pad1.compute_output_shape(shape))
        self.norm1.build(shape[:-1] + (self.filters,))
        self.conv2.build(self.pad2.compute_output_shape(shape[:-1] + (self.filters,)))
        self.norm2.build(shape[:-1] + (self.filters,))
        self.built = True

    def call(self, x):
        y = ops.relu(self.norm1(self.conv1(self.pad1(x))))
        y = self.norm2(self.conv2(self.pad2(y)))
        return x + y

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "affine": self.affine}


INITS = ("glorot", "normal")


def initialize(model, init):
    """Re-draw the kernels of `model`'s convolutions: init "normal" is CycleGAN's N(0, 0.02) with zero biases
    (its init_weights), drawn from Keras' seeded stream; "glorot" keeps Keras' defaults. Norm layers and the
    style code's zero-initialised dense layers are left as they are."""
    if init not in INITS:
        raise ValueError(f"--pixel_init must be one of {', '.join(INITS)}, got {init!r}")
    if init == "glorot":
        return model
    draw = keras.initializers.RandomNormal(0.0, 0.02)
    for layer in model._flatten_layers(include_self=False, recursive=True):  # nested layers included
        if isinstance(layer, (layers.Conv2D, layers.Conv2DTranspose)):
            layer.kernel.assign(draw(layer.kernel.shape, layer.kernel.dtype))
            if layer.bias is not None:
                layer.bias.assign(ops.zeros_like(layer.bias))
    return model


TASK_INITS = ("glorot_uniform", "glorot_normal")  # --task_init


def task_init(model, init):
    """Re-draw the kernels of `model`'s dense layers and convolutions for --task_init: "glorot_normal" is
    N(0, 2 / (fan_in + fan_out)), untruncated, with zero biases (PyTorch's xavier_normal_, the release's
    init_weights), drawn from Keras' seeded stream; "glorot_uniform" keeps Keras' defaults. Norm layers are left
    as they are."""
    if init not in TASK_INITS:
        raise ValueError(f"--task_init must be one of {', '.join(TASK_INITS)}, got {init!r}")
    if init == "glorot_uniform":
        return model
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, (layers.Dense, layers.Conv2D)):
            shape = tuple(layer.kernel.shape)
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            fan_in, fan_out = receptive * shape[-2], receptive * shape[-1]
            draw = keras.initializers.RandomNormal(0.0, float(np.sqrt(2.0 / (fan_in + fan_out))))
            layer.kernel.assign(draw(shape, layer.kernel.dtype))
            if layer.bias is not None:
                layer.bias.assign(ops.zeros_like(layer.bias))
    return model
