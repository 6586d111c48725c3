"""The digit networks of the paper's Figure 7 (appendix 6.1.1): task net, generator, image and feature
discriminators. Pixels are in [-1, 1]."""

import keras
from keras import layers, ops

from cycada_tf.models.layers import ReflectionPad2D, ResidualBlock, instance_norm

FEATURE_DIM = 500  # width of the task net's penultimate layer: the features D_feat sees


@keras.saving.register_keras_serializable("cycada_tf")
class LeNet(keras.Model):
    """The LeNet variant of Figure 7: conv(20,5)-pool-relu, conv(50,5)-dropout-pool-relu, fc 500-relu-dropout,
    fc num_classes. `features(x)` is the 500-d representation, `call(x)` the class logits."""

    def __init__(self, num_classes=10, dropout=0.5, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.dropout = num_classes, dropout
        self.encoder = keras.Sequential([
            layers.Conv2D(20, 5, name="conv1"),
            layers.MaxPooling2D(2), layers.ReLU(),
            layers.Conv2D(50, 5, name="conv2"),
            layers.SpatialDropout2D(dropout),
            layers.MaxPooling2D(2), layers.ReLU(),
            layers.Flatten(),
            layers.Dense(FEATURE_DIM, activation="relu", name="fc1"),
            layers.Dropout(dropout),
        ], name="encoder")
        self.classifier = layers.Dense(num_classes, name="logits")

    def build(self, input_shape):
        self.encoder.build(input_shape)
        self.classifier.build((input_shape[0], FEATURE_DIM))
        self.built = True

    def features(self, x, training=False):
        return self.encoder(x, training=training)

    def call(self, x, training=False):
        return self.classifier(self.encoder(x, training=training))

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "dropout": self.dropout}


def generator(image_size, in_channels, out_channels, width=32, noise_channels=0, name="generator"):
    """Convolutions, two residual blocks, deconvolutions (Figure 7 right); tanh output in [-1, 1].

    noise_channels > 0 appends that many channels of N(0, 1) noise to the input, so that one source digit
    can map to many target renderings (an option; the paper's generator is deterministic).
    """
    x_in = keras.Input((image_size, image_size, in_channels))
    x = x_in
    if noise_channels:
        x = NoiseChannels(noise_channels)(x)
    x = ReflectionPad2D(3)(x)
    x = layers.Conv2D(width, 7)(x)
    x = layers.ReLU()(instance_norm()(x))
    for mult in (2, 4):
        x = layers.Conv2D(width * mult, 3, strides=2, padding="same")(x)
        x = layers.ReLU()(instance_norm()(x))
    for _ in range(2):
        x = ResidualBlock(width * 4)(x)
    for mult in (2, 1):
        x = layers.Conv2DTranspose(width * mult, 3, strides=2, padding="same")(x)
        x = layers.ReLU()(instance_norm()(x))
    x = ReflectionPad2D(3)(x)
    x = layers.Conv2D(out_channels, 7, activation="tanh", dtype="float32")(x)
    return keras.Model(x_in, x, name=name)


@keras.saving.register_keras_serializable("cycada_tf")
class NoiseChannels(layers.Layer):
    """Appends channels of standard normal noise (fresh at every call)."""

    def __init__(self, channels, **kwargs):
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.seed = keras.random.SeedGenerator(0)

    def call(self, x):
        shape = ops.concatenate([ops.shape(x)[:-1], [self.channels]])
        noise = keras.random.normal(shape, seed=self.seed, dtype=x.dtype)
        return ops.concatenate([x, noise], axis=-1)

    def compute_output_shape(self, shape):
        return shape[:-1] + (shape[-1] + self.channels,)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels}


def image_discriminator(image_size, channels, width=64, name="image_discriminator"):
    """Six convolutions ending in one logit per position of the output map (Figure 7 mid right)."""
    x_in = keras.Input((image_size, image_size, channels))
    x = x_in
    for filters, stride, norm in ((width, 1, False), (width, 2, True), (width * 2, 1, True),
                                  (width * 2, 2, True), (width * 4, 1, True)):
        x = layers.Conv2D(filters, 3, strides=stride, padding="same")(x)
        if norm:
            x = instance_norm()(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Conv2D(1, 3, padding="same", dtype="float32")(x)
    return keras.Model(x_in, x, name=name)


def feature_discriminator(feature_dim=FEATURE_DIM, hidden=500, name="feature_discriminator"):
    """Three fully connected layers, one domain logit (Figure 7 mid left)."""
    return keras.Sequential([
        keras.Input((feature_dim,)),
        layers.Dense(hidden, activation="relu"),
        layers.Dense(hidden, activation="relu"),
        layers.Dense(1, dtype="float32"),
    ], name=name)
