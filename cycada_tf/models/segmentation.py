"""The segmentation networks of the paper's section 5.2: the task nets f (VGG16-FCN8s, DRN-C-26, and a small
FCN for the embedded CPU demo), CycleGAN's ResNet generator G and its PatchGAN image discriminator D.

Every segmenter maps images in [-1, 1] (B, H, W, 3) to class logits at the input resolution (B, H, W,
num_classes), float32 under a mixed precision policy, and names one layer "features": the map that feature-level
adaptation (Eq. 5) shows its discriminator; `feature_model` exposes it beside the logits.
"""

import os
import warnings

import numpy as np
import tensorflow as tf

import keras
from keras import layers, ops

from cycada_tf.models.layers import ReflectionPad2D, ResidualBlock, instance_norm

FEATURES = "features"  # the layer every segmenter names for feature-level adaptation
LOGITS = "logits"      # its float32 output layer

# Keras' VGG16 ImageNet weights (keras.applications.vgg16): caffe-converted, they expect BGR pixels in
# [0, 255] less the ImageNet mean of each channel.
VGG16_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG16_NOTOP_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + VGG16_NOTOP_FILE)
VGG16_NOTOP_MD5 = "6d6bbae143d832006294945121d1f1fc"
VGG16_BGR_MEAN = (103.939, 116.779, 123.68)
VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (filters, convs) of block1..block5
FCN_STRIDE = 32     # pool5's stride: FCN8s input sides must be multiples of it
FC_WIDTH = 4096     # fc6/fc7 of VGG16, as convolutions
DROPOUT = 0.5       # after fc6 and fc7, as in VGG16 and FCN

# DRN-C-26 (Yu et al. 2017, Table 1): basic blocks per level, channels per level, output stride 8.
DRN26_BLOCKS = (1, 1, 2, 2, 2, 2, 1, 1)
DRN26_CHANNELS = (16, 32, 64, 128, 256, 512, 512, 512)
BN_MOMENTUM, BN_EPSILON = 0.9, 1e-5  # PyTorch's BatchNorm2d defaults (momentum 0.1 there is 1 - 0.9 here)


# --- layers -----------------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable("cycada_tf")
class CaffePreprocess(layers.Layer):
    """RGB in [-1, 1] -> BGR in [0, 255] less the ImageNet channel means: the input Keras' (caffe-converted)
    VGG16 ImageNet weights were trained on. Part of every FCN8s, with or without those weights, so that a
    network's weights mean the same thing whichever way it was initialised."""

    def call(self, x):
        x = (x + 1.0) * 127.5
        return x[..., ::-1] - ops.cast(ops.convert_to_tensor(VGG16_BGR_MEAN), x.dtype)


@keras.saving.register_keras_serializable("cycada_tf")
class ResizeLike(layers.Layer):
    """[x, reference] -> x resized bilinearly to the height and width of `reference` (known at run time only
    when the model's input size is not fixed). tf.image.resize, as keras.ops.image.resize takes no tensor size
    inside a graph."""

    def call(self, inputs):
        x, reference = inputs
        size = tf.shape(reference)[1:3]
        return ops.cast(tf.image.resize(x, size, method="bilinear"), self.compute_dtype)

    def compute_output_shape(self, shapes):
        x, reference = shapes
        return (x[0], reference[1], reference[2], x[3])


def any_size(network, multiple):
    """`network` (sides must be multiples of `multiple`) applied to images of any size: reflection-padded at the
    bottom and right up to the next multiple, the output cropped back (GTA5 at width 1024 is 563 high). With
    `multiple` 1 there is nothing to pad: `network` itself is applied."""
    if multiple == 1:
        return lambda x, training=False: network(x, training=training)

    def apply(x, training=False):
        height, width = tf.shape(x)[1], tf.shape(x)[2]
        pad_h, pad_w = (-height) % multiple, (-width) % multiple
        padded = tf.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="REFLECT")
        return network(padded, training=training)[:, :height, :width, :]
    return apply


def input_multiple(model):
    """What the sides of `model`'s input must be multiples of (its SizeCheck layers; 1 if none)."""
    multiple = 1
    for layer in model.layers:
        if isinstance(layer, SizeCheck):
            multiple = int(np.lcm(multiple, layer.multiple))
    return multiple


@keras.saving.register_keras_serializable("cycada_tf")
class SizeCheck(layers.Layer):
    """Passes its input through, failing with a clear message when its height or width is not a multiple of
    `multiple` (for inputs whose size is only known at run time; static sizes are checked when building)."""

    def __init__(self, multiple, model_name, **kwargs):
        super().__init__(**kwargs)
        self.multiple, self.model_name = int(multiple), model_name

    def call(self, x):
        remainder = tf.math.floormod(tf.shape(x)[1:3], self.multiple)
        check = tf.debugging.assert_equal(
            remainder, tf.zeros_like(remainder),
            message=f"{self.model_name}: input height and width must be multiples of {self.multiple}")
        with tf.control_dependencies([check]):
            return tf.identity(x)

    def get_config(self):
        return {**super().get_config(), "multiple": self.multiple, "model_name": self.model_name}


@keras.saving.register_keras_serializable("cycada_tf")
class BilinearUpsampling(keras.initializers.Initializer):
    """Conv2DTranspose kernel (k, k, channels, channels) that upsamples each channel by bilinear interpolation
    (FCN's `upsample_filt`, Long et al. 2015 section 3.3); with stride k/2 and "same" padding it reproduces
    PyTorch's ConvTranspose2d(k, stride=k/2, padding=k/4) used by FCN and DRN."""

    def __call__(self, shape, dtype=None):
        size, width, channels_out, channels_in = shape
        if size != width or channels_out != channels_in:
            raise ValueError(f"bilinear upsampling needs a square kernel and as many outputs as inputs, got {shape}")
        factor = (size + 1) // 2
        center = factor - 1 if size % 2 == 1 else factor - 0.5
        profile = 1.0 - np.abs(np.arange(size) - center) / factor
        kernel = np.zeros(shape, "float32")
        for channel in range(channels_in):
            kernel[:, :, channel, channel] = np.outer(profile, profile)
        return ops.convert_to_tensor(kernel, dtype=dtype or "float32")


def feature_model(model):
    """A keras.Model from `model`'s input to (features, logits): the layer named "features" and the float32
    logits, sharing `model`'s weights. Which map that is: fc7 for fcn8s, level 8 for drn26, the last hidden
    map for small_fcn (each builder's docstring)."""
    try:
        features = model.get_layer(FEATURES).output
    except ValueError:
        raise ValueError(f"{model.name} has no layer named {FEATURES!r}: build it with this module") from None
    return keras.Model(model.input, [features, model.output], name=f"{model.name}_features")


def _check_input_shape(input_shape, name, multiple=1, channels=None):
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"{name}: input_shape is (height, width, channels), got {input_shape}")
    if channels is not None and input_shape[2] != channels:
        raise ValueError(f"{name}: takes {channels}-channel images, got input_shape {input_shape}")
    for side in input_shape[:2]:
        if side is not None and side % multiple:
            raise ValueError(f"{name}: input height and width must be multiples of {multiple}, "
                             f"got input_shape {input_shape}")
    return input_shape


# --- VGG16-FCN8s ------------------------------------------------------------------------------------------

def fcn8s(num_classes, input_shape=(None, None, 3), weights=None, name="fcn8s"):
    """VGG16-FCN8s (Long, Shelhamer, Darrell 2015), the paper's segmenter (A) of Table 4 and of Table 3.

    VGG16's five conv blocks (layer names as keras.applications.VGG16: block1_conv1 ... block5_conv3), fc6 and
    fc7 as convolutions (7x7 and 1x1, 4096 channels, ReLU, dropout 0.5), 1x1 class scores on fc7, pool4 and
    pool3 (zero-initialised, as FCN), and three transposed convolutions initialised to bilinear upsampling:
    x2 and x2 (learned) fuse the pool4 and pool3 scores, the last x8 stays fixed (FCN section 3.3). With
    "same" padding instead of FCN's pad-100-and-crop, input height and width must be multiples of 32 (any
    such size; a static input_shape that is not raises ValueError here, a run-time one fails at the first
    call with the same words). The "features" layer is fc7 after its ReLU, before its dropout (stride 32,
    4096 channels).

    The model takes RGB in [-1, 1] and converts it, always, to the caffe-style input of Keras' VGG16 ImageNet
    weights (BGR, [0, 255], less the ImageNet mean; CaffePreprocess). `weights`: None (random backbone);
    "imagenet" (downloads Keras' VGG16 no-top file, keras.utils.get_file, cached in ~/.keras/models; when
    that fails, warns naming the error and keeps the random backbone); or the path of a file in the layout of
    keras.applications.VGG16(include_top=False) (the official vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5,
    or that model's save_weights). Only the 13 conv layers are loaded; fc6, fc7 and the score layers start at
    random (fc6/fc7) and zero. To restore a whole trained FCN8s, call load_weights on the built model.
    """
    input_shape = _check_input_shape(input_shape, name, FCN_STRIDE, channels=3)
    backbone = None  # read before building the 134M-parameter network, so a bad file fails at once
    if weights == "imagenet":
        try:
            path = keras.utils.get_file(VGG16_NOTOP_FILE, VGG16_NOTOP_URL, cache_subdir="models",
                                        file_hash=VGG16_NOTOP_MD5)
        except Exception as error:
            warnings.warn(f"{name}: could not fetch the VGG16 ImageNet weights ({VGG16_NOTOP_URL}: "
                          f"{type(error).__name__}: {error}); the backbone keeps its random initialisation. "
                          f"Offline, pass weights= the path of {VGG16_NOTOP_FILE}.", stacklevel=2)
        else:
            backbone = _read_vgg16_backbone(path, name)
    elif weights is not None:
        backbone = _read_vgg16_backbone(weights, name)

    image = keras.Input(input_shape, name="image")
    x = CaffePreprocess(name="caffe_preprocess")(image)
    if input_shape[0] is None or input_shape[1] is None:
        x = SizeCheck(FCN_STRIDE, name, name="size_check")(x)
    pools = []
    for block, (filters, convs) in enumerate(VGG16_BLOCKS, start=1):
        for conv in range(1, convs + 1):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv{conv}")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
        pools.append(x)
    pool3, pool4, pool5 = pools[2:]
    x = layers.Conv2D(FC_WIDTH, 7, padding="same", activation="relu", name="fc6")(pool5)
    x = layers.Dropout(DROPOUT, name="drop6")(x)
    x = layers.Conv2D(FC_WIDTH, 1, name="fc7")(x)
    x = layers.ReLU(name=FEATURES)(x)
    x = layers.Dropout(DROPOUT, name="drop7")(x)

    def score(name):
        return layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name=name)

    def upsample(factor, name, trainable=True):
        return layers.Conv2DTranspose(num_classes, 2 * factor, strides=factor, padding="same", use_bias=False,
                                      kernel_initializer=BilinearUpsampling(), trainable=trainable, name=name)

    x = upsample(2, "upscore2")(score("score_fr")(x))                       # stride 16
    x = layers.Add(name="fuse_pool4")([x, score("score_pool4")(pool4)])
    x = upsample(2, "upscore_pool4")(x)                                     # stride 8
    x = layers.Add(name="fuse_pool3")([x, score("score_pool3")(pool3)])
    x = upsample(8, "upscore8", trainable=False)(x)                         # stride 1
    logits = layers.Activation("linear", dtype="float32", name=LOGITS)(x)
    model = keras.Model(image, logits, name=name)
    for layer, values in (backbone or {}).items():
        model.get_layer(layer).set_weights(values)
    return model


def _read_vgg16_backbone(path, name):
    """{block1_conv1: [kernel, bias], ...} of a keras.applications.VGG16(include_top=False) weights file: the
    official HDF5 (matched by layer order, as Keras loads it) or a Keras 3 .weights.h5 of that model."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name}: VGG16 weights file {path} does not exist")
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
    try:
        vgg.load_weights(path)
    except Exception as error:
        raise ValueError(f"{name}: {path} is not a keras.applications.VGG16(include_top=False) weights file "
                         f"({type(error).__name__}: {error})") from error
    return {f"block{block}_conv{conv}": vgg.get_layer(f"block{block}_conv{conv}").get_weights()
            for block, (_, convs) in enumerate(VGG16_BLOCKS, start=1) for conv in range(1, convs + 1)}


# --- DRN-C-26 ---------------------------------------------------------------------------------------------

def drn26(num_classes, input_shape=(None, None, 3), weights=None, name="drn26"):
    """DRN-C-26 (Yu, Koltun, Funkhouser 2017, "Dilated Residual Networks"), the paper's segmenter (B) of
    Table 4, as the DRN segmentation code (DRNSeg) builds it: the network without its pooling and fc layers,
    a 1x1 classifier, bilinear upsampling of the logits to the input size.

    Levels 1-8 (DRN26_BLOCKS basic blocks of DRN26_CHANNELS channels): a 7x7 stem conv at stride 1, levels 2-4
    halve the resolution (output stride 8), levels 5 and 6 dilate by 2 and 4 instead of striding, levels 7
    and 8 (dilation 2, then 1, no residual connection) remove the gridding of the dilated levels. Every conv
    is followed by batch norm, convs have no bias, initialised as DRN (He normal, fan out). Stride-2 convs pad
    1 on every side as PyTorch does, so any input size works (multiples of 8 keep the stride-8 grid aligned
    with the pixels). The "features" layer is level 8's output (stride 8, 512 channels), the map the 1x1
    classifier reads.

    No Keras port of DRN's ImageNet weights exists: weights="imagenet" warns and keeps the random
    initialisation. weights= a path loads a .weights.h5 (or .h5) saved from this model (same num_classes);
    a missing file or one that holds another network raises an error naming the file. The input is [-1, 1]
    as elsewhere (no ImageNet mean/std normalisation, since no ImageNet weights are loaded).
    """
    input_shape = _check_input_shape(input_shape, name)
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise FileNotFoundError(f"{name}: weights file {weights} does not exist")
    conv_init = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")

    def conv_bn(x, filters, size, prefix, strides=1, dilation=1):
        if strides > 1 and size > 1:
            x = layers.ZeroPadding2D((size - 1) // 2, name=f"{prefix}_pad")(x)
        padding = "valid" if strides > 1 else "same"
        x = layers.Conv2D(filters, size, strides=strides, padding=padding, dilation_rate=dilation,
                          use_bias=False, kernel_initializer=conv_init, name=prefix)(x)
        return layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"{prefix}_bn")(x)

    def basic_block(x, filters, prefix, strides=1, dilation=(1, 1), residual=True, last_name=None):
        shortcut = x
        y = layers.ReLU(name=f"{prefix}_relu1")(conv_bn(x, filters, 3, f"{prefix}_conv1", strides, dilation[0]))
        y = conv_bn(y, filters, 3, f"{prefix}_conv2", 1, dilation[1])
        if residual:
            if strides != 1 or x.shape[-1] != filters:
                shortcut = conv_bn(x, filters, 1, f"{prefix}_downsample", strides)
            y = layers.Add(name=f"{prefix}_add")([y, shortcut])
        return layers.ReLU(name=last_name or f"{prefix}_relu2")(y)

    image = keras.Input(input_shape, name="image")
    x = layers.ReLU(name="stem_relu")(conv_bn(image, DRN26_CHANNELS[0], 7, "stem"))
    # (stride, dilation of the first block, dilation of the others, residual) of levels 1-8, as DRN's
    # _make_layer with new_level=False for levels 5-8.
    levels = ((1, 1, 1, True), (2, 1, 1, True), (2, 1, 1, True), (2, 1, 1, True),
              (1, 2, 2, True), (1, 4, 4, True), (1, 2, 2, False), (1, 1, 1, False))
    for level, (blocks, filters, (stride, first, rest, residual)) in enumerate(
            zip(DRN26_BLOCKS, DRN26_CHANNELS, levels), start=1):
        for block in range(blocks):
            last = level == len(levels) and block == blocks - 1
            x = basic_block(x, filters, f"level{level}_block{block + 1}", stride if block == 0 else 1,
                            (first, first) if block == 0 else (rest, rest), residual,
                            last_name=FEATURES if last else None)
    x = layers.Conv2D(num_classes, 1, name="classifier",
                      kernel_initializer=keras.initializers.RandomNormal(stddev=float(np.sqrt(2.0 / num_classes))))(x)
    logits = ResizeLike(dtype="float32", name=LOGITS)([x, image])
    model = keras.Model(image, logits, name=name)

    if weights == "imagenet":
        warnings.warn(f"{name}: no ImageNet weights of DRN-C-26 exist for Keras; keeping the random "
                      "initialisation (pass weights= the path of a .weights.h5 saved from this model)",
                      stacklevel=2)
    elif weights is not None:
        try:
            model.load_weights(weights)
        except Exception as error:  # Keras says ValueError for a mismatch, OSError for a file that is no HDF5
            raise ValueError(f"{name}: {weights} does not hold the weights of this network "
                             f"({type(error).__name__}: {error})") from error
    return model


# --- the small FCN of the embedded demo -------------------------------------------------------------------

def small_fcn(num_classes, input_shape=(None, None, 3), width=32, name="small_fcn"):
    """A small fully convolutional segmenter for the embedded road-scene demo on a CPU (not in the paper):
    DRN's recipe shrunk. Conv-BN-ReLU layers: 3x3 stride 2 (width), 3x3 (width), 3x3 stride 2 (2 width),
    3x3 dilated 2 and 4 (2 width; context without more striding), a 3x3 undilated layer against gridding
    (2 width, named "features": the last hidden map, stride 4), a 1x1 classifier, bilinear upsampling of the
    logits to the input size. About 140k parameters at width 32; any input size works.
    """
    input_shape = _check_input_shape(input_shape, name)
    image = keras.Input(input_shape, name="image")
    x = image
    plan = ((width, 2, 1), (width, 1, 1), (2 * width, 2, 1), (2 * width, 1, 2), (2 * width, 1, 4),
            (2 * width, 1, 1))  # (filters, stride, dilation)
    for index, (filters, stride, dilation) in enumerate(plan, start=1):
        x = layers.Conv2D(filters, 3, strides=stride, dilation_rate=dilation, padding="same", use_bias=False,
                          name=f"conv{index}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"conv{index}_bn")(x)
        x = layers.ReLU(name=FEATURES if index == len(plan) else f"conv{index}_relu")(x)
    x = layers.Conv2D(num_classes, 1, name="classifier")(x)
    logits = ResizeLike(dtype="float32", name=LOGITS)([x, image])
    return keras.Model(image, logits, name=name)


# --- CycleGAN's generator and discriminator ---------------------------------------------------------------

def resnet_generator(channels_in=3, channels_out=3, width=64, blocks=9, downsamplings=2, name="generator"):
    """CycleGAN's ResNet generator (Zhu et al. 2017; Johnson et al. 2016), the G of the paper's segmentation
    experiments (appendix 6.1.2: "we followed the network architecture and hyperparameters of CycleGAN").

    Reflection pad 3 + 7x7 conv (width), instance norm, ReLU; `downsamplings` 3x3 stride-2 convs doubling the
    channels; `blocks` residual blocks (reflection padding, instance norm); as many 3x3 stride-2 transposed
    convs back; reflection pad 3 + 7x7 conv to channels_out; tanh (float32), so outputs are in [-1, 1].
    Input (B, H, W, channels_in) with H and W multiples of 2**downsamplings; output (B, H, W, channels_out).
    """
    image = keras.Input((None, None, channels_in), name="image")
    x = ReflectionPad2D(3)(image)
    x = layers.ReLU()(instance_norm()(layers.Conv2D(width, 7)(x)))
    for level in range(1, downsamplings + 1):
        x = layers.Conv2D(width * 2 ** level, 3, strides=2, padding="same")(x)
        x = layers.ReLU()(instance_norm()(x))
    for _ in range(blocks):
        x = ResidualBlock(width * 2 ** downsamplings)(x)
    for level in reversed(range(downsamplings)):
        x = layers.Conv2DTranspose(width * 2 ** level, 3, strides=2, padding="same")(x)
        x = layers.ReLU()(instance_norm()(x))
    x = ReflectionPad2D(3)(x)
    x = layers.Conv2D(channels_out, 7)(x)  # in the policy's precision; tanh and the output in float32
    x = ops.tanh(ops.cast(x, "float32"))
    return keras.Model(image, x, name=name)


def patchgan_discriminator(channels=3, width=64, layers=3, norm="instance", name="discriminator"):
    """CycleGAN/pix2pix PatchGAN (Isola et al. 2017), with layers=3 the 70x70 one: the D of the paper's
    segmentation experiments. 4x4 convs padded by 1: `layers` of stride 2 (width, 2 width, ... capped at
    8 width; normalised except the first), one of stride 1, LeakyReLU 0.2 after each, then a 1-channel 4x4
    conv: one float32 logit per overlapping patch. A 64x64 input gives a 6x6 map with layers=3 (256 -> 30).
    norm: "instance" (CycleGAN), "batch" (pix2pix) or "none".
    """
    kl = keras.layers  # `layers` is the depth here
    norms = {"instance": instance_norm, "none": None,
             "batch": lambda: kl.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON)}
    if norm not in norms:
        raise ValueError(f"{name}: norm must be one of {', '.join(norms)}, got {norm!r}")
    image = keras.Input((None, None, channels), name="image")
    x = image
    for index in range(layers + 1):
        filters, stride = width * min(2 ** index, 8), 2 if index < layers else 1
        x = kl.ZeroPadding2D(1)(x)
        x = kl.Conv2D(filters, 4, strides=stride, use_bias=index == 0 or norm == "none")(x)
        if index > 0 and norms[norm] is not None:
            x = norms[norm]()(x)
        x = kl.LeakyReLU(0.2)(x)
    x = kl.ZeroPadding2D(1)(x)
    x = kl.Conv2D(1, 4, dtype="float32", name=LOGITS)(x)
    return keras.Model(image, x, name=name)
