"""Layers the paper's networks share: instance norm, reflection padding, the residual block.

tensorflow-addons is end-of-life and does not import on TF 2.21; its InstanceNormalization is
GroupNormalization with one group per channel, and reflection padding is keras.ops.pad(mode="reflect").
"""

import keras
from keras import layers, ops


def instance_norm(affine=True, name=None):
    return layers.GroupNormalization(groups=-1, epsilon=1e-5, center=affine, scale=affine, name=name)


@keras.saving.register_keras_serializable("cycada_tf")
class ReflectionPad2D(layers.Layer):
    """Pads height and width by mirroring; exports as MirrorPad."""

    def __init__(self, padding=1, **kwargs):
        super().__init__(**kwargs)
        self.padding = int(padding)

    def call(self, x):
        p = self.padding
        return ops.pad(x, [[0, 0], [p, p], [p, p], [0, 0]], mode="reflect")

    def compute_output_shape(self, shape):
        grow = lambda d: None if d is None else d + 2 * self.padding
        return (shape[0], grow(shape[1]), grow(shape[2]), shape[3])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable("cycada_tf")
class ResidualBlock(layers.Layer):
    """x + (reflect-pad, conv3x3, instance norm, ReLU, reflect-pad, conv3x3, instance norm)(x)."""

    def __init__(self, filters, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.pad1, self.pad2 = ReflectionPad2D(1), ReflectionPad2D(1)
        self.conv1 = layers.Conv2D(filters, 3, padding="valid")
        self.conv2 = layers.Conv2D(filters, 3, padding="valid")
        self.norm1, self.norm2 = instance_norm(), instance_norm()

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
        return {**super().get_config(), "filters": self.filters}
