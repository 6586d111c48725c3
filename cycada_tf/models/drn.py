"""DRN-C-26 (Yu, Koltun, Funkhouser 2017, "Dilated Residual Networks"), the paper's segmenter (B) of Table 4,
as the DRN segmentation code (DRNSeg) builds it."""

import os
import warnings

import numpy as np

import keras
from keras import layers

from cycada_tf.models.layers import batch_norm
from cycada_tf.models.segmenter import FEATURES, check_input_shape, logits_at_input_size

# DRN-C-26 (Yu et al. 2017, Table 1): basic blocks per level, channels per level, output stride 8.
DRN26_BLOCKS = (1, 1, 2, 2, 2, 2, 1, 1)
DRN26_CHANNELS = (16, 32, 64, 128, 256, 512, 512, 512)


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
    input_shape = check_input_shape(input_shape, name)
    if weights not in (None, "imagenet") and not os.path.isfile(weights):
        raise FileNotFoundError(f"{name}: weights file {weights} does not exist")
    conv_init = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")

    def conv_bn(x, filters, size, prefix, strides=1, dilation=1):
        if strides > 1 and size > 1:
            x = layers.ZeroPadding2D((size - 1) // 2, name=f"{prefix}_pad")(x)
        padding = "valid" if strides > 1 else "same"
        x = layers.Conv2D(filters, size, strides=strides, padding=padding, dilation_rate=dilation,
                          use_bias=False, kernel_initializer=conv_init, name=prefix)(x)
        return batch_norm(f"{prefix}_bn")(x)

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
    logits = logits_at_input_size(x, image)
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
