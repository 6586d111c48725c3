"""The layers the networks share (models/layers.py): reflection padding and its hand-written gradient, instance
norm, the residual block."""

import keras
import numpy as np
import pytest

import tensorflow as tf

from cycada_tf.models.layers import ReflectionPad2D, ResidualBlock, instance_norm


def _images(size, channels, n=4, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, channels)).astype("float32")


@pytest.mark.parametrize("padding", [1, 3])
def test_reflection_pad_mirrors_like_numpy_reflect(padding):
    x = np.arange(2 * 5 * 6 * 3, dtype="float32").reshape(2, 5, 6, 3)
    layer = ReflectionPad2D(padding)
    y = layer(x).numpy()
    expected = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(y, expected)
    assert layer.compute_output_shape((None, 5, 6, 3)) == (None, 5 + 2 * padding, 6 + 2 * padding, 3)


@pytest.mark.parametrize("padding,height,width", [(1, 8, 8), (3, 32, 32), (3, 4, 9), (2, 5, 3), (3, 8, 7)])
@pytest.mark.parametrize("static", [True, False])
def test_reflection_pad_gradient_is_mirror_pads_gradient(padding, height, width, static):
    # the hand-written gradient against TensorFlow's MirrorPadGrad, where the mirrored bands are apart (8x8,
    # 32x32) and where they overlap or touch (4x9, 5x3, 8x7 at padding 3), with known and unknown sides
    rng = np.random.default_rng(padding * 100 + height)
    x = tf.constant(rng.normal(size=(2, height, width, 3)).astype("float32"))
    weight = tf.constant(rng.normal(size=(2, height + 2 * padding, width + 2 * padding, 3)).astype("float32"))
    layer = ReflectionPad2D(padding)

    def gradient(pad):
        def of(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(pad(x) * weight)
            return tape.gradient(loss, x)
        shape = (2, height, width, 3) if static else (2, None, None, 3)
        return tf.function(of, input_signature=[tf.TensorSpec(shape, tf.float32)])(x).numpy()

    expected = gradient(lambda x: tf.pad(x, [[0, 0], [padding] * 2, [padding] * 2, [0, 0]], mode="REFLECT"))
    np.testing.assert_allclose(gradient(layer), expected, rtol=1e-6, atol=1e-5)


def test_reflection_pad_refuses_sides_it_cannot_mirror():
    with pytest.raises(ValueError, match="sides over 3 pixels"):
        ReflectionPad2D(3)(np.zeros((1, 3, 8, 1), "float32"))


def test_instance_norm_gives_each_channel_of_each_image_mean_zero_variance_one():
    rng = np.random.default_rng(0)
    scale = np.array([0.5, 3.0, 10.0], "float32")
    offset = np.array([-4.0, 0.0, 7.0], "float32")
    # images that differ in level and spread, so batch or layer statistics would not do
    x = (rng.normal(size=(3, 8, 8, 3)) * scale + offset) * np.array([1, 2, 5], "float32")[:, None, None, None]
    y = instance_norm()(x.astype("float32")).numpy()
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.var(axis=(1, 2)), 1.0, atol=1e-3)


def test_residual_block_keeps_the_shape_and_adds_its_input():
    x = _images(8, 6)
    block = ResidualBlock(6)
    assert block(x).shape == x.shape
    # with the last instance norm scaled to zero the residual branch is zero: the block is the identity
    block.norm2.gamma.assign(np.zeros(6, "float32"))
    block.norm2.beta.assign(np.zeros(6, "float32"))
    np.testing.assert_allclose(block(x).numpy(), x, atol=1e-6)


def test_cyclegan_initialisation_and_instance_norm_without_affine_parameters():
    from cycada_tf.models import cyclegan
    from cycada_tf.models.layers import initialize
    keras.utils.set_random_seed(0)
    g = initialize(cyclegan.resnet_generator(3, 3, 16, 2, 2, affine=False), "normal")
    kernels = [layer.kernel.numpy().ravel() for layer in g.layers
               if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]
    np.testing.assert_allclose(np.std(np.concatenate(kernels)), 0.02, rtol=0.05)  # N(0, 0.02)
    assert all(not np.any(layer.bias.numpy()) for layer in g.layers if isinstance(layer, keras.layers.Conv2D))
    norms = [layer for layer in g._flatten_layers(include_self=False, recursive=True)
             if isinstance(layer, keras.layers.GroupNormalization)]
    assert norms and all(not layer.weights for layer in norms)  # no learned scale or offset
    with_affine = cyclegan.resnet_generator(3, 3, 16, 2, 2)
    assert len(with_affine.weights) == len(g.weights) + 2 * len(norms)
    with pytest.raises(ValueError, match="--pixel_init"):
        initialize(g, "xavier")
