"""The digit task net f and the feature discriminator D_feat of the paper's Figure 7 (appendix 6.1.1): a LeNet
variant and three fully connected layers. Pixels are in [-1, 1]."""

import keras
from keras import layers

from cycada_tf.models.layers import sequential

FEATURE_DIM = 500  # width of the task net's penultimate layer: the features D_feat sees


class EncoderClassifier(keras.Model):
    """A digit task net as the stages use it: `encoder` up to the `feature_dim`-d features D_feat sees
    (stages/feature.py adapts it), `classifier` from them to the class logits."""

    feature_dim = FEATURE_DIM

    def build(self, input_shape):
        self.encoder.build(input_shape)
        self.classifier.build((input_shape[0], self.feature_dim))
        self.built = True

    def features(self, x, training=False):
        return self.encoder(x, training=training)

    def call(self, x, training=False):
        return self.classifier(self.encoder(x, training=training))


@keras.saving.register_keras_serializable("cycada_tf")
class LeNet(EncoderClassifier):
    """The LeNet variant of Figure 7: conv(20,5)-pool-relu, conv(50,5)-dropout-pool-relu, fc 500-relu-dropout,
    fc num_classes. `features(x)` is the 500-d representation, `call(x)` the class logits."""

    def __init__(self, num_classes=10, dropout=0.5, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.dropout = num_classes, dropout
        dtype = self.dtype_policy  # its layers compute in its own precision (the `dtype` it is given)
        self.encoder = sequential([
            layers.Conv2D(20, 5, name="conv1", dtype=dtype),
            layers.MaxPooling2D(2, dtype=dtype), layers.ReLU(dtype=dtype),
            layers.Conv2D(50, 5, name="conv2", dtype=dtype),
            layers.SpatialDropout2D(dropout, dtype=dtype),
            layers.MaxPooling2D(2, dtype=dtype), layers.ReLU(dtype=dtype),
            layers.Flatten(dtype=dtype),
            layers.Dense(FEATURE_DIM, activation="relu", name="fc1", dtype=dtype),
            layers.Dropout(dropout, dtype=dtype),
        ], "encoder", dtype)
        self.classifier = layers.Dense(num_classes, name="logits", dtype=dtype)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "dropout": self.dropout}


def feature_discriminator(feature_dim=FEATURE_DIM, hidden=500, name="feature_discriminator", dtype=None):
    """Three fully connected layers, one domain logit (Figure 7 mid left): the hidden ones compute in the dtype
    policy `dtype` (None: Keras' default), the logit in float32."""
    return sequential([
        keras.Input((feature_dim,)),
        layers.Dense(hidden, activation="relu", dtype=dtype),
        layers.Dense(hidden, activation="relu", dtype=dtype),
        layers.Dense(1, dtype="float32"),
    ], name, dtype)
