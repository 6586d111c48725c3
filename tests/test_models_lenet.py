"""The digit task nets and feature discriminator: Figure 7's LeNet (models/lenet.py) and the release's DTN
(models/dtn.py, --task_model=dtn) give logits per class and the features D_feat reads; the DTN learns, keeps
its batch statistics when frozen and round-trips through a .keras file and a weights file."""

import numpy as np
import pytest

import keras

from cycada_tf.models import dtn, lenet
from cycada_tf.models import layers as model_layers

SHAPES = [(28, 1), (32, 3)]  # MNIST/USPS-like grey and SVHN/uci_m-like colour
N = 4
NETS = {"lenet": (lenet.LeNet, lenet.FEATURE_DIM, 500), "dtn": (dtn.DTN, dtn.FEATURE_DIM, 512)}


def _images(size, channels, seed=0, n=N):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)).astype("float32")


def _dtn(size=32, channels=3, seed=0):
    keras.utils.set_random_seed(seed)
    net = dtn.DTN(num_classes=10)
    net.build((None, size, size, channels))
    return net


@pytest.mark.parametrize("name", sorted(NETS))
@pytest.mark.parametrize("size,channels", SHAPES)
def test_task_net_gives_logits_per_class_and_its_features(name, size, channels):
    network, feature_dim, width = NETS[name]
    net = network(num_classes=10)
    net.build((None, size, size, channels))
    x = _images(size, channels)
    logits, features = net(x).numpy(), net.features(x).numpy()
    assert logits.shape == (N, 10)
    assert features.shape == (N, feature_dim) == (N, width)
    assert features.min() >= 0.0  # the features are taken after the last ReLU
    # call() is the classifier head applied to features() (at inference, where dropout is off)
    np.testing.assert_allclose(net.classifier(features).numpy(), logits, rtol=1e-5, atol=1e-5)


def test_dtn_has_the_release_layout():
    net = _dtn()
    convs = [layer for layer in net.encoder.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.filters, c.kernel_size, c.strides) for c in convs] == [(64, (5, 5), (2, 2)), (128, (5, 5), (2, 2)),
                                                                       (256, (5, 5), (2, 2))]
    norms = [layer for layer in net.encoder.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(norms) == 4 and all(n.momentum == model_layers.BN_MOMENTUM for n in norms)  # 3 convolutions and fc1
    assert net.encoder.get_layer("fc1").units == 512


def test_dtn_learns_and_round_trips(tmp_path):
    """A fit on 64 random images with random labels lowers the loss (it can memorise them); the trained net,
    batch statistics included, predicts the same after a .keras file and after a weights file."""
    net = _dtn(28, 1)
    x = _images(28, 1, seed=1, n=64)
    y = np.random.default_rng(2).integers(0, 10, 64)
    net.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = net.fit(x, y, batch_size=16, epochs=8, verbose=0).history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    moving = [v for v in net.non_trainable_variables if "moving_mean" in v.path]
    assert len(moving) == 4 and all(np.abs(v.numpy()).max() > 0 for v in moving)  # training moved them
    expected = net.predict(x, verbose=0)

    net.save(tmp_path / "dtn.keras")
    loaded = keras.saving.load_model(tmp_path / "dtn.keras")
    assert type(loaded) is dtn.DTN and loaded.get_config()["conv_dropout"] == list(dtn.CONV_DROPOUT)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    net.save_weights(tmp_path / "f.weights.h5")  # what the stages write and trial.network reads
    fresh = _dtn(28, 1, seed=5)
    fresh.load_weights(tmp_path / "f.weights.h5")
    np.testing.assert_array_equal(fresh.predict(x, verbose=0), expected)


def test_a_frozen_dtn_keeps_its_batch_statistics():
    """f_S in the pixel stage and f_ref in the feature stage are frozen (trainable=False): Keras then runs
    batch norm in inference mode, even when called with training=True; unfrozen, the same call moves them."""
    x = _images(32, 3, n=8)
    for frozen in (True, False):
        net = _dtn()
        net.trainable = not frozen
        statistics = [v for v in net.non_trainable_variables if "moving" in v.path]
        assert len(statistics) == 8  # mean and variance of 4 batch norms
        before = [v.numpy().copy() for v in statistics]
        net(x, training=True)
        moved = [not np.array_equal(v.numpy(), b) for v, b in zip(statistics, before)]
        assert (not any(moved)) if frozen else all(moved), (frozen, moved)


@pytest.mark.parametrize("feature_dim", [lenet.FEATURE_DIM, dtn.FEATURE_DIM, 10])
def test_feature_discriminator_gives_one_logit_per_example(feature_dim):
    d = lenet.feature_discriminator(feature_dim, hidden=16)
    dense = [layer for layer in d.layers if isinstance(layer, keras.layers.Dense)]
    assert len(dense) == 3  # appendix 6.1.1: three fully connected layers
    out = d(np.random.default_rng(0).normal(size=(N, feature_dim)).astype("float32"))
    assert out.shape == (N, 1)
