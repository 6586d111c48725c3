"""CycleGAN's ResNet generator and PatchGAN discriminator (models/cyclegan.py): sizes, the [-1, 1] range,
parameter counts against CycleGAN's, the 70x70 receptive field, float32 outputs under mixed precision."""

import numpy as np
import pytest
import tensorflow as tf

from cycada_tf.models import cyclegan
from cycada_tf.models.layers import ResidualBlock

# CycleGAN's logs print 11.378 M for resnet_9blocks and 2.765 M for the 70x70 PatchGAN (affine-free instance norm
# with conv biases); ours has affine instance norm (gamma, beta per channel) and drops the biases a norm follows
# in the discriminator.
CYCLEGAN_G, PATCHGAN_D = 11_378_179, 2_764_737


def _images(batch, height, width, seed=0, channels=3):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, height, width, channels)).astype("float32")


def test_resnet_generator_keeps_the_size_and_stays_in_minus_one_one():
    g = cyclegan.resnet_generator(width=8, blocks=2)
    y = g(_images(2, 32, 48) * 50.0).numpy()  # large inputs push tanh to its limits
    assert y.shape == (2, 32, 48, 3) and y.min() >= -1.0 and y.max() <= 1.0 and y.std() > 0
    assert cyclegan.resnet_generator(channels_in=1, channels_out=3, width=8, blocks=1)(
        _images(1, 16, 16, channels=1)).shape == (1, 16, 16, 3)


def test_resnet_generator_is_cyclegans_resnet_9blocks():
    g = cyclegan.resnet_generator()
    assert sum(isinstance(layer, ResidualBlock) for layer in g.layers) == 9
    norm_channels = 64 + 128 + 256 + 9 * 2 * 256 + 128 + 64  # our instance norms' gamma and beta
    assert g.count_params() == CYCLEGAN_G + 2 * norm_channels


def test_patchgan_gives_one_logit_per_70x70_patch():
    d = cyclegan.patchgan_discriminator()
    assert d(_images(2, 64, 64)).shape == (2, 6, 6, 1)
    biases_dropped = 128 + 256 + 512
    assert d.count_params() == PATCHGAN_D - biases_dropped + 2 * biases_dropped
    # Each logit sees a 70x70 window (without a norm: instance norm mixes every position of the image).
    small = cyclegan.patchgan_discriminator(width=4, norm="none")
    x = tf.constant(_images(1, 128, 128))
    with tf.GradientTape() as tape:
        tape.watch(x)
        patch = small(x)[0, 7, 7, 0]
    seen = np.abs(tape.gradient(patch, x).numpy()[0]).sum(axis=-1) > 0
    rows, cols = np.flatnonzero(seen.any(axis=1)), np.flatnonzero(seen.any(axis=0))
    assert rows.max() - rows.min() + 1 == 70 and cols.max() - cols.min() + 1 == 70
    with pytest.raises(ValueError, match="norm must be one of"):
        cyclegan.patchgan_discriminator(norm="layer")


@pytest.mark.parametrize("build,channels_out", [
    (lambda dtype: cyclegan.resnet_generator(width=8, blocks=2, dtype=dtype), 3),
    (lambda dtype: cyclegan.patchgan_discriminator(width=8, dtype=dtype), 1),
], ids=["generator", "discriminator"])
def test_outputs_are_float32_under_mixed_bfloat16(build, channels_out):
    model = build(dtype="mixed_bfloat16")
    assert model.get_layer(index=len(model.layers) // 2).compute_dtype == "bfloat16"  # the policy given is in force
    out = model(_images(2, 32, 32))
    assert out.dtype == "float32" and out.shape[-1] == channels_out
