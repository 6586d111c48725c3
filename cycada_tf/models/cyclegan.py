"""CycleGAN's ResNet generator and PatchGAN discriminator (Zhu et al. 2017, "Unpaired Image-to-Image Translation
using Cycle-Consistent Adversarial Networks"): the G and D of the paper's segmentation experiments."""

import keras
from keras import layers, ops

from cycada_tf.models.layers import ReflectionPad2D, ResidualBlock, batch_norm, computing_in, instance_norm
from cycada_tf.models.segmenter import LOGITS


def resnet_generator(channels_in=3, channels_out=3, width=64, blocks=9, downsamplings=2, affine=True,
                     name="generator", dtype=None):
    """CycleGAN's ResNet generator (Zhu et al. 2017; Johnson et al. 2016), the G of the paper's segmentation
    experiments (appendix 6.1.2: "we followed the network architecture and hyperparameters of CycleGAN").

    Reflection pad 3 + 7x7 conv (width), instance norm, ReLU; `downsamplings` 3x3 stride-2 convs doubling the
    channels; `blocks` residual blocks (reflection padding, instance norm); as many 3x3 stride-2 transposed
    convs back; reflection pad 3 + 7x7 conv to channels_out; tanh (float32), so outputs are in [-1, 1].
    Input (B, H, W, channels_in) with H and W multiples of 2**downsamplings; output (B, H, W, channels_out).
    affine=False: instance norms without a learned scale and offset, as CycleGAN's InstanceNorm2d.
    dtype: the dtype policy its layers compute in (None: Keras' default, float32).
    """
    image = keras.Input((None, None, channels_in), name="image")
    x = ReflectionPad2D(3, dtype=dtype)(image)
    x = layers.ReLU(dtype=dtype)(instance_norm(affine, dtype=dtype)(layers.Conv2D(width, 7, dtype=dtype)(x)))
    for level in range(1, downsamplings + 1):
        x = layers.Conv2D(width * 2 ** level, 3, strides=2, padding="same", dtype=dtype)(x)
        x = layers.ReLU(dtype=dtype)(instance_norm(affine, dtype=dtype)(x))
    for _ in range(blocks):
        x = ResidualBlock(width * 2 ** downsamplings, affine, dtype=dtype)(x)
    for level in reversed(range(downsamplings)):
        x = layers.Conv2DTranspose(width * 2 ** level, 3, strides=2, padding="same", dtype=dtype)(x)
        x = layers.ReLU(dtype=dtype)(instance_norm(affine, dtype=dtype)(x))
    x = ReflectionPad2D(3, dtype=dtype)(x)
    x = layers.Conv2D(channels_out, 7, dtype=dtype)(x)  # in the policy's precision; tanh and the output in float32
    x = ops.tanh(ops.cast(x, "float32"))
    return computing_in(keras.Model(image, x, name=name), dtype)


def patchgan_discriminator(channels=3, width=64, layers=3, norm="instance", affine=True, name="discriminator",
                           dtype=None):
    """CycleGAN/pix2pix PatchGAN (Isola et al. 2017), with layers=3 the 70x70 one: the D of the paper's
    segmentation experiments. 4x4 convs padded by 1: `layers` of stride 2 (width, 2 width, ... capped at
    8 width; normalised except the first), one of stride 1, LeakyReLU 0.2 after each, then a 1-channel 4x4
    conv: one float32 logit per overlapping patch. A 64x64 input gives a 6x6 map with layers=3 (256 -> 30).
    norm: "instance" (CycleGAN), "batch" (pix2pix) or "none"; affine=False: instance norm without a learned
    scale and offset (CycleGAN's). dtype: the dtype policy its hidden layers compute in (None: Keras' default).
    """
    kl = keras.layers  # `layers` is the depth here
    norms = {"instance": lambda: instance_norm(affine, dtype=dtype), "none": None,
             "batch": lambda: batch_norm(dtype=dtype)}
    if norm not in norms:
        raise ValueError(f"{name}: norm must be one of {', '.join(norms)}, got {norm!r}")
    image = keras.Input((None, None, channels), name="image")
    x = image
    for index in range(layers + 1):
        filters, stride = width * min(2 ** index, 8), 2 if index < layers else 1
        x = kl.ZeroPadding2D(1, dtype=dtype)(x)
        x = kl.Conv2D(filters, 4, strides=stride, use_bias=index == 0 or norm == "none", dtype=dtype)(x)
        if index > 0 and norms[norm] is not None:
            x = norms[norm]()(x)
        x = kl.LeakyReLU(0.2, dtype=dtype)(x)
    x = kl.ZeroPadding2D(1, dtype=dtype)(x)
    x = kl.Conv2D(1, 4, dtype="float32", name=LOGITS)(x)
    return computing_in(keras.Model(image, x, name=name), dtype)
