"""The digit translators and image discriminators of Figure 7 (models/digit_gan.py): shapes, the [-1, 1] range,
the style code and its modulation, the minibatch standard deviation."""

import numpy as np
import pytest

import keras

from cycada_tf.models import digit_gan

SHAPES = [(28, 1), (32, 3)]  # MNIST/USPS-like grey and SVHN/uci_m-like colour
N = 4


def _images(size, channels, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (N, size, size, channels)).astype("float32")


@pytest.mark.parametrize("size,channels", SHAPES)
def test_generator_keeps_the_shape_and_stays_in_minus_one_one(size, channels):
    g = digit_gan.generator(size, channels, channels, width=4)
    y = g(_images(size, channels) * 50.0).numpy()  # large inputs push tanh to its limits
    assert y.shape == (N, size, size, channels)
    assert y.min() >= -1.0 and y.max() <= 1.0


def test_generator_can_change_the_number_of_channels():
    g = digit_gan.generator(32, 1, 3, width=4)
    assert g(_images(32, 1)).shape == (N, 32, 32, 3)


def test_deterministic_generator_repeats_itself_and_the_noisy_one_does_not():
    x = _images(32, 3)
    plain = digit_gan.generator(32, 3, 3, width=4)
    np.testing.assert_array_equal(plain(x).numpy(), plain(x).numpy())
    noisy = digit_gan.generator(32, 3, 3, width=4, noise_channels=2)
    # The style modulation starts at zero, so a new translator behaves as the deterministic one ...
    np.testing.assert_array_equal(noisy(x).numpy(), noisy(x).numpy())
    # ... and once it has learned to use z, two calls draw two renderings of the same images.
    modulations = [layer for layer in noisy.layers if isinstance(layer, digit_gan.StyleModulation)]
    assert len(modulations) == 2
    rng = np.random.RandomState(0)
    for layer in modulations:
        for dense in (layer.gamma, layer.beta):
            dense.kernel.assign(rng.normal(0, 0.5, dense.kernel.shape).astype("float32"))
    first, second = noisy(x).numpy(), noisy(x).numpy()
    assert first.shape == second.shape == x.shape
    assert np.abs(first - second).max() > 1e-3


def test_style_code_is_one_vector_per_image_and_modulates_per_image_and_channel():
    x = _images(8, 3)
    z = digit_gan.StyleCode(2)(x).numpy()
    assert z.shape == (N, 2)
    assert len({tuple(c) for c in z}) == N  # each image draws its own code
    modulation = digit_gan.StyleModulation()
    features = _images(8, 3)
    modulation.build([features.shape, z.shape])
    modulation.gamma.kernel.assign(np.ones((2, 3), "float32"))
    modulation.beta.kernel.assign(np.full((2, 3), 2.0, "float32"))
    out = modulation([features, z]).numpy()
    gamma = z.sum(-1)[:, None, None, None]
    np.testing.assert_allclose(out, features * (1.0 + gamma) + 2.0 * gamma, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size,channels", SHAPES)
@pytest.mark.parametrize("minibatch_std", [False, True])
def test_image_discriminator_gives_one_logit_per_position_of_a_quarter_size_map(size, channels,
                                                                                 minibatch_std):
    d = digit_gan.image_discriminator(size, channels, width=4, minibatch_std=minibatch_std)
    convs = [layer for layer in d.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 6  # appendix 6.1.1: six convolutional layers
    out = d(_images(size, channels)).numpy()
    # two stride-2 convolutions: 28 -> 7, 32 -> 8; one channel, the logit of each position
    assert out.shape == (N, size // 4, size // 4, 1)
    assert np.isfinite(out).all()


def test_minibatch_std_appends_the_mean_across_batch_standard_deviation():
    x = _images(4, 3)
    y = digit_gan.MinibatchStd()(x).numpy()
    assert y.shape == (N, 4, 4, 4)
    np.testing.assert_array_equal(y[..., :3], x)
    expected = np.sqrt(x.var(axis=0) + 1e-8).mean()
    np.testing.assert_allclose(y[..., 3], np.full((N, 4, 4), expected), rtol=1e-5)
    # a batch of identical images (a collapsed mapping) has (almost) zero spread
    same = np.repeat(x[:1], N, axis=0)
    assert digit_gan.MinibatchStd()(same).numpy()[..., 3].max() < 1e-3


def test_noise_codes_follow_the_run_seed():
    # DESIGN: seeds everywhere through keras.utils.set_random_seed. The style code must be reproducible for
    # one seed and differ between seeds, or the N seeds of a table share one noise stream.
    def codes(seed):
        keras.utils.set_random_seed(seed)
        return digit_gan.StyleCode(2)(np.zeros((N, 2, 2, 1), "float32")).numpy()

    np.testing.assert_array_equal(codes(0), codes(0))
    assert not np.array_equal(codes(0), codes(1))
