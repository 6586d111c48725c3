"""The digit translators G_S->T, G_T->S and the image discriminators D_S, D_T of the paper's Figure 7 (appendix
6.1.1), with two options the paper does not use: a style code for a stochastic translator, the minibatch
standard deviation for the discriminator. Pixels are in [-1, 1]."""

import keras
from keras import layers, ops

from cycada_tf.models.layers import ReflectionPad2D, ResidualBlock, computing_in, instance_norm


def generator(image_size, in_channels, out_channels, width=32, noise_channels=0, affine=True, name="generator",
              dtype=None):
    """Convolutions, two residual blocks, deconvolutions (Figure 7 right); tanh output in [-1, 1].

    noise_channels > 0 draws a style code z ~ N(0, I) of that many dimensions per image and lets it set the
    scale and shift of each channel after the instance norms of the deconvolution layers (adaptive instance
    norm, Huang & Belongie 2017), so one source digit can map to many target renderings (an option; the
    paper's generator is deterministic). z is not appended as constant input channels: the instance norm
    after the first convolution subtracts every per-image constant, so such a code is erased at once.
    affine=False: instance norms without a learned scale and offset (CycleGAN's).
    dtype: the dtype policy its layers compute in (None: Keras' default, float32).
    """
    x_in = keras.Input((image_size, image_size, in_channels))
    z = StyleCode(noise_channels, dtype=dtype)(x_in) if noise_channels else None
    x = ReflectionPad2D(3, dtype=dtype)(x_in)
    x = layers.Conv2D(width, 7, dtype=dtype)(x)
    x = layers.ReLU(dtype=dtype)(instance_norm(affine, dtype=dtype)(x))
    for mult in (2, 4):
        x = layers.Conv2D(width * mult, 3, strides=2, padding="same", dtype=dtype)(x)
        x = layers.ReLU(dtype=dtype)(instance_norm(affine, dtype=dtype)(x))
    for _ in range(2):
        x = ResidualBlock(width * 4, affine, dtype=dtype)(x)
    for mult in (2, 1):
        x = layers.Conv2DTranspose(width * mult, 3, strides=2, padding="same", dtype=dtype)(x)
        x = (instance_norm(affine, dtype=dtype)(x) if z is None
             else StyleModulation(dtype=dtype)([instance_norm(affine=False, dtype=dtype)(x), z]))
        x = layers.ReLU(dtype=dtype)(x)
    x = ReflectionPad2D(3, dtype=dtype)(x)
    # The last convolution, the costliest layer (7x7 over the full image), computes in the policy's precision;
    # tanh and the output are float32 (an op, not a layer: the weights files keep their layout).
    x = layers.Conv2D(out_channels, 7, dtype=dtype)(x)
    x = ops.tanh(ops.cast(x, "float32"))
    return computing_in(keras.Model(x_in, x, name=name), dtype)


@keras.saving.register_keras_serializable("cycada_tf")
class StyleCode(layers.Layer):
    """Draws z ~ N(0, I) of `channels` dimensions for each image of the batch (fresh at every call; the
    stream follows keras.utils.set_random_seed)."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.seed = keras.random.SeedGenerator()

    def call(self, x):
        return keras.random.normal((ops.shape(x)[0], self.channels), seed=self.seed)

    def compute_output_shape(self, shape):
        return (shape[0], self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


@keras.saving.register_keras_serializable("cycada_tf")
class StyleModulation(layers.Layer):
    """[normalised features, z] -> features * (1 + gamma(z)) + beta(z), per image and channel."""

    def build(self, shapes):
        channels = shapes[0][-1]
        self.gamma = layers.Dense(channels, kernel_initializer="zeros", dtype=self.dtype_policy)
        self.beta = layers.Dense(channels, kernel_initializer="zeros", dtype=self.dtype_policy)
        self.gamma.build(shapes[1])
        self.beta.build(shapes[1])
        self.built = True

    def call(self, inputs):
        x, z = inputs
        gamma = ops.cast(self.gamma(z), x.dtype)[:, None, None, :]
        beta = ops.cast(self.beta(z), x.dtype)[:, None, None, :]
        return x * (1.0 + gamma) + beta

    def compute_output_shape(self, shapes):
        return shapes[0]


def image_discriminator(image_size, channels, width=64, minibatch_std=False, norm="none", affine=True,
                        name="image_discriminator", dtype=None):
    """Six convolutions ending in one logit per position of the output map (Figure 7 mid right).

    norm="instance" normalises each hidden layer per image, as CycleGAN's PatchGAN does; it is off by default
    because it removes each image's colour statistics, which is exactly what tells a coloured digit domain
    (MNIST-M, SVHN) from a grey one, leaving the discriminator blind to a translator's palette.

    minibatch_std appends, before the last convolution, the batch's standard deviation of the features as one
    more channel (Karras et al. 2018): a batch of translations that all share one palette is then told from
    real target images, which vary, so a mapping that collapses to one look is penalised (an option).
    dtype: the dtype policy its hidden layers compute in (None: Keras' default); the logits are float32.
    """
    x_in = keras.Input((image_size, image_size, channels))
    x = x_in
    if norm not in ("none", "instance"):
        raise ValueError(f"discriminator norm must be 'none' or 'instance', got {norm!r}")
    for filters, stride, norm_layer in ((width, 1, False), (width, 2, True), (width * 2, 1, True),
                                  (width * 2, 2, True), (width * 4, 1, True)):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same", dtype=dtype)(x)
        if norm_layer and norm == "instance":
            x = instance_norm(affine, dtype=dtype)(x)
        x = layers.LeakyReLU(0.2, dtype=dtype)(x)
    if minibatch_std:
        x = MinibatchStd(dtype=dtype)(x)
    x = layers.Conv2D(1, 3, padding="same", dtype="float32")(x)
    return computing_in(keras.Model(x_in, x, name=name), dtype)


@keras.saving.register_keras_serializable("cycada_tf")
class MinibatchStd(layers.Layer):
    """Appends the mean over features of the across-batch standard deviation, as a constant channel."""

    def call(self, x):
        std = ops.sqrt(ops.var(ops.cast(x, "float32"), axis=0) + 1e-8)
        value = ops.cast(ops.mean(std), x.dtype)
        shape = ops.shape(x)
        return ops.concatenate([x, ops.broadcast_to(value, (shape[0], shape[1], shape[2], 1))], axis=-1)

    def compute_output_shape(self, shape):
        return shape[:-1] + (shape[-1] + 1,)
