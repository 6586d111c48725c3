"""VGG16-FCN8s (Long, Shelhamer, Darrell 2015, "Fully Convolutional Networks for Semantic Segmentation"), the
paper's segmenter (A) of Tables 3 and 4, started from VGG16's ImageNet weights (Keras' file, or a path): its 13
convolutions and its fully connected fc1/fc2 as the convolutions fc6/fc7."""

import warnings

import numpy as np

import keras
from keras import layers, ops

from cycada_tf.models import pretrained, vgg16_weights
from cycada_tf.models.layers import computing_in
from cycada_tf.models.segmenter import FEATURES, LOGITS, SizeCheck, check_input_shape
from cycada_tf.models.vgg16_weights import FC_WIDTH, VGG16_BLOCKS

# Keras' VGG16 ImageNet weights with the fully connected layers (keras.applications.VGG16(include_top=True)):
# FCN starts fc6/fc7 from them; the file without them (..._notop.h5) would leave 89% of the parameters random.
# Caffe-converted, they expect BGR pixels in [0, 255] less the ImageNet mean of each channel.
VGG16_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
VGG16_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + VGG16_FILE
VGG16_MD5 = "64373286793e3c8b2b4e3219cbf3544b"
VGG16_BGR_MEAN = (103.939, 116.779, 123.68)
FCN_STRIDE = 32     # pool5's stride: FCN8s input sides must be multiples of it
DROPOUT = 0.5       # after fc6 and fc7, as in VGG16 and FCN
# FCN's "at-once" net (fcn.berkeleyvision.org, voc-fcn8s-atonce) and the CyCADA release
# (cycada/models/fcn8s.py:123,128) scale pool4 and pool3 before their score layers: --fcn8s_skip_scaling.
SKIP_SCALES = {"pool4": 1e-2, "pool3": 1e-4}


@keras.saving.register_keras_serializable("cycada_tf")
class CaffePreprocess(layers.Layer):
    """RGB in [-1, 1] -> BGR in [0, 255] less the ImageNet channel means: the input Keras' (caffe-converted)
    VGG16 ImageNet weights were trained on. Part of every FCN8s, with or without those weights, so that a
    network's weights mean the same thing whichever way it was initialised."""

    def call(self, x):
        x = (x + 1.0) * 127.5
        return x[..., ::-1] - ops.cast(ops.convert_to_tensor(VGG16_BGR_MEAN), x.dtype)


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


def fcn8s(num_classes, input_shape=(None, None, 3), weights=None, name="fcn8s", dtype=None, skip_scaling=False):
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
    "imagenet": Keras' VGG16 file with its top (VGG16_FILE) from Keras' cache ($KERAS_HOME/models, else
    ~/.keras/models), downloaded there by keras.utils.get_file if it is not; or the path of a
    keras.applications.VGG16 weights file (either Keras layout, see vgg16_weights.read). The 13 conv layers and,
    from a file with VGG16's top, fc6/fc7 (VGG16's fc1/fc2 reshaped into 7x7 and 1x1 convolutions) are loaded;
    a file without its top (the official ..._notop.h5) leaves fc6/fc7 random, with a warning. The score layers
    start at zero either way. A missing file (not in the cache and not downloadable, or a path that does not
    exist) or another network's file raises pretrained.WeightsFileError (a ValueError) naming it. To restore a
    whole trained FCN8s, call load_weights on the built model. dtype: the dtype policy its layers compute in
    (None: Keras' default, float32); the logits are float32. skip_scaling: pool4 and pool3 multiplied by
    SKIP_SCALES before their score layers (layers "scale_pool4", "scale_pool3"), FCN's at-once model.
    """
    input_shape = check_input_shape(input_shape, name, FCN_STRIDE, channels=3)
    backbone = {}  # read before building the 134M-parameter network, so a bad file fails at once
    if weights == "imagenet":
        weights = pretrained.cached_or_downloaded(VGG16_FILE, VGG16_URL, VGG16_MD5, "VGG16 ImageNet weights", name)
    if weights is not None:
        backbone = vgg16_weights.read(weights, name)
        if "fc6" not in backbone:
            warnings.warn(f"{name}: {weights} holds VGG16 without its top (no fc1/fc2): fc6 and fc7 keep their "
                          f"random initialisation; FCN starts them from VGG16's, in {VGG16_FILE}", stacklevel=2)

    image = keras.Input(input_shape, name="image")
    x = CaffePreprocess(name="caffe_preprocess", dtype=dtype)(image)
    if input_shape[0] is None or input_shape[1] is None:
        x = SizeCheck(FCN_STRIDE, name, name="size_check", dtype=dtype)(x)
    pools = []
    for block, (filters, convs) in enumerate(VGG16_BLOCKS, start=1):
        for conv in range(1, convs + 1):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv{conv}",
                              dtype=dtype)(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool", dtype=dtype)(x)
        pools.append(x)
    pool3, pool4, pool5 = pools[2:]
    x = layers.Conv2D(FC_WIDTH, 7, padding="same", activation="relu", name="fc6", dtype=dtype)(pool5)
    x = layers.Dropout(DROPOUT, name="drop6", dtype=dtype)(x)
    x = layers.Conv2D(FC_WIDTH, 1, name="fc7", dtype=dtype)(x)
    x = layers.ReLU(name=FEATURES, dtype=dtype)(x)
    x = layers.Dropout(DROPOUT, name="drop7", dtype=dtype)(x)

    def score(name):
        return layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name=name, dtype=dtype)

    def skip(pool, name):
        if skip_scaling:
            pool = layers.Rescaling(SKIP_SCALES[name], name=f"scale_{name}", dtype=dtype)(pool)
        return score(f"score_{name}")(pool)

    def upsample(factor, name, trainable=True):
        return layers.Conv2DTranspose(num_classes, 2 * factor, strides=factor, padding="same", use_bias=False,
                                      kernel_initializer=BilinearUpsampling(), trainable=trainable, name=name,
                                      dtype=dtype)

    x = upsample(2, "upscore2")(score("score_fr")(x))                       # stride 16
    x = layers.Add(name="fuse_pool4", dtype=dtype)([x, skip(pool4, "pool4")])
    x = upsample(2, "upscore_pool4")(x)                                     # stride 8
    x = layers.Add(name="fuse_pool3", dtype=dtype)([x, skip(pool3, "pool3")])
    x = upsample(8, "upscore8", trainable=False)(x)                         # stride 1
    logits = layers.Activation("linear", dtype="float32", name=LOGITS)(x)
    model = computing_in(keras.Model(image, logits, name=name), dtype)
    for layer, values in backbone.items():
        model.get_layer(layer).set_weights(values)
    return model

