"""DRN-C-26 (Yu, Koltun, Funkhouser 2017, "Dilated Residual Networks"), the paper's segmenter (B) of Table 4,
as the DRN segmentation code (DRNSeg) builds it, started from DRN-C-26's ImageNet weights (drn_imagenet)."""

import numpy as np

import keras
from keras import layers, ops

from cycada_tf.models import drn_imagenet
from cycada_tf.models.layers import batch_norm, computing_in
from cycada_tf.models.segmenter import FEATURES, check_input_shape, logits_at_input_size

# DRN-C-26 (Yu et al. 2017, Table 1; fyu/drn drn_c_26): basic blocks per level, channels per level, and each
# level's (stride, dilation of its first block, of the others, residual), as DRN's _make_layer builds them
# (new_level=False for levels 5-8); output stride 8.
DRN26_BLOCKS = (1, 1, 2, 2, 2, 2, 1, 1)
DRN26_CHANNELS = (16, 32, 64, 128, 256, 512, 512, 512)
DRN26_LEVELS = ((1, 1, 1, True), (2, 1, 1, True), (2, 1, 1, True), (2, 1, 1, True),
                (1, 2, 2, True), (1, 4, 4, True), (1, 2, 2, False), (1, 1, 1, False))
# torchvision's ImageNet statistics (RGB in [0, 1]): DRN's ImageNet training normalised with them (fyu/drn
# classify.py), and so does the authors' CyCADA DRN (cycada/models/drn.py, DRN.transform).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable("cycada_tf")
class ImageNetNormalize(layers.Layer):
    """RGB in [-1, 1] -> RGB in [0, 1] less IMAGENET_MEAN, over IMAGENET_STD: the input DRN's ImageNet weights
    were trained on. Part of every DRN-C-26, with or without those weights, so that a network's weights mean
    the same thing whichever way it was initialised."""

    def call(self, x):
        mean, std = (ops.cast(ops.convert_to_tensor(v), x.dtype) for v in (IMAGENET_MEAN, IMAGENET_STD))
        return ((x + 1.0) * 0.5 - mean) / std


def drn26_backbone(input_shape=(None, None, 3), name="drn26", dtype=None):
    """DRN-C-26 without its pooling and ImageNet classifier: images in [-1, 1] -> the "features" layer, level
    8's output (stride 8, 512 channels). A 7x7 stem conv at stride 1, then levels 1-8 (DRN26_BLOCKS basic
    blocks of DRN26_CHANNELS channels, DRN26_LEVELS): levels 2-4 halve the resolution, levels 5 and 6 dilate by
    2 and 4 instead of striding, levels 7 and 8 (dilation 2, then 1, no residual connection) remove the
    gridding of the dilated levels. Every conv is followed by batch norm, convs have no bias, initialised as
    DRN (He normal, fan out). Stride-2 convs pad 1 on every side as PyTorch does, so any input size works.
    dtype: the dtype policy its layers compute in (None: Keras' default, float32)."""
    conv_init = keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")

    def conv_bn(x, filters, size, prefix, strides=1, dilation=1):
        if strides > 1 and size > 1:
            x = layers.ZeroPadding2D((size - 1) // 2, name=f"{prefix}_pad", dtype=dtype)(x)
        padding = "valid" if strides > 1 else "same"
        x = layers.Conv2D(filters, size, strides=strides, padding=padding, dilation_rate=dilation,
                          use_bias=False, kernel_initializer=conv_init, name=prefix, dtype=dtype)(x)
        return batch_norm(f"{prefix}_bn", dtype)(x)

    def basic_block(x, filters, prefix, strides=1, dilation=(1, 1), residual=True, last_name=None):
        shortcut = x
        y = conv_bn(x, filters, 3, f"{prefix}_conv1", strides, dilation[0])
        y = layers.ReLU(name=f"{prefix}_relu1", dtype=dtype)(y)
        y = conv_bn(y, filters, 3, f"{prefix}_conv2", 1, dilation[1])
        if residual:
            if strides != 1 or x.shape[-1] != filters:
                shortcut = conv_bn(x, filters, 1, f"{prefix}_downsample", strides)
            y = layers.Add(name=f"{prefix}_add", dtype=dtype)([y, shortcut])
        return layers.ReLU(name=last_name or f"{prefix}_relu2", dtype=dtype)(y)

    image = keras.Input(input_shape, name="image")
    x = ImageNetNormalize(name="imagenet_normalize", dtype=dtype)(image)
    x = layers.ReLU(name="stem_relu", dtype=dtype)(conv_bn(x, DRN26_CHANNELS[0], 7, "stem"))
    for level, (blocks, filters, (stride, first, rest, residual)) in enumerate(
            zip(DRN26_BLOCKS, DRN26_CHANNELS, DRN26_LEVELS), start=1):
        for block in range(blocks):
            last = level == len(DRN26_LEVELS) and block == blocks - 1
            x = basic_block(x, filters, f"level{level}_block{block + 1}", stride if block == 0 else 1,
                            (first, first) if block == 0 else (rest, rest), residual,
                            last_name=FEATURES if last else None)
    return computing_in(keras.Model(image, x, name=f"{name}_backbone"), dtype)


def drn26(num_classes, input_shape=(None, None, 3), weights=None, name="drn26", dtype=None):
    """DRN-C-26 (Yu, Koltun, Funkhouser 2017, "Dilated Residual Networks"), the paper's segmenter (B) of
    Table 4, as the DRN segmentation code (DRNSeg) builds it: drn26_backbone (ImageNetNormalize, then the
    network without its pooling and fc layers), a 1x1 classifier, bilinear upsampling of the logits to the
    input size. Multiples of 8 keep the stride-8 grid aligned with the pixels. The "features" layer is level
    8's output, the map the 1x1 classifier reads.

    `weights` start the backbone (the classifier is always new): None (random); "imagenet", DRN-C-26's
    ImageNet weights from Keras' cache (drn_imagenet.CONVERTED_FILE, written by tools/convert_drn.py, else
    the official drn_imagenet.CHECKPOINT_FILE there, read as it is); the path of that official PyTorch
    checkpoint (.pth); or the path of a Keras weights file of drn26_backbone (what tools/convert_drn.py
    writes) or of a whole drn26 (its backbone is read). A missing file, or one that holds another network,
    raises pretrained.WeightsFileError (a ValueError) naming the file. dtype: the dtype policy its layers
    compute in (None: Keras' default); the logits are float32.
    """
    input_shape = check_input_shape(input_shape, name)
    source = drn_imagenet.weights_file(weights, name)  # found before building, so a missing file fails at once
    backbone = drn26_backbone(input_shape, name, dtype)
    x = layers.Conv2D(num_classes, 1, name="classifier", dtype=dtype,
                      kernel_initializer=keras.initializers.RandomNormal(stddev=float(np.sqrt(2.0 / num_classes))))(
        backbone.output)
    model = computing_in(keras.Model(backbone.input, logits_at_input_size(x, backbone.input), name=name), dtype)
    if source is not None:
        drn_imagenet.load(backbone, source, name)
    return model
