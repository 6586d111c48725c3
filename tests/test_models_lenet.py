"""The digit task net and feature discriminator of Figure 7 (models/lenet.py): logits per class, the 500-d
features D_feat reads, one domain logit per example."""

import numpy as np
import pytest

import keras

from cycada_tf.models import lenet

SHAPES = [(28, 1), (32, 3)]  # MNIST/USPS-like grey and SVHN/uci_m-like colour
N = 4


def _images(size, channels, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (N, size, size, channels)).astype("float32")


@pytest.mark.parametrize("size,channels", SHAPES)
def test_lenet_gives_logits_per_class_and_500_features(size, channels):
    net = lenet.LeNet(num_classes=10)
    net.build((None, size, size, channels))
    x = _images(size, channels)
    logits, features = net(x).numpy(), net.features(x).numpy()
    assert logits.shape == (N, 10)
    assert features.shape == (N, lenet.FEATURE_DIM) == (N, 500)
    assert features.min() >= 0.0  # the features are taken after fc1's ReLU
    # call() is the classifier head applied to features() (at inference, where dropout is off)
    np.testing.assert_allclose(net.classifier(features).numpy(), logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("feature_dim", [lenet.FEATURE_DIM, 10])
def test_feature_discriminator_gives_one_logit_per_example(feature_dim):
    d = lenet.feature_discriminator(feature_dim, hidden=16)
    dense = [layer for layer in d.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == 3  # appendix 6.1.1: three fully connected layers
    out = d(np.random.default_rng(0).normal(size=(N, feature_dim)).astype("float32"))
    assert out.shape == (N, 1)
