"""A small fully convolutional segmenter for the embedded road-scene demo on a CPU (not in the paper): DRN-C's
recipe (Yu et al. 2017) shrunk to about 140k parameters."""

import keras
from keras import layers

from cycada_tf.models.layers import batch_norm, computing_in
from cycada_tf.models.segmenter import FEATURES, check_input_shape, logits_at_input_size


def small_fcn(num_classes, input_shape=(None, None, 3), width=32, name="small_fcn", dtype=None):
    """A small fully convolutional segmenter for the embedded road-scene demo on a CPU (not in the paper):
    DRN's recipe shrunk. Conv-BN-ReLU layers: 3x3 stride 2 (width), 3x3 (width), 3x3 stride 2 (2 width),
    3x3 dilated 2 and 4 (2 width; context without more striding), a 3x3 undilated layer against gridding
    (2 width, named "features": the last hidden map, stride 4), a 1x1 classifier, bilinear upsampling of the
    logits to the input size. About 140k parameters at width 32; any input size works. dtype: the dtype policy
    its layers compute in (None: Keras' default, float32); the logits are float32.
    """
    input_shape = check_input_shape(input_shape, name)
    image = keras.Input(input_shape, name="image")
    x = image
    plan = ((width, 2, 1), (width, 1, 1), (2 * width, 2, 1), (2 * width, 1, 2), (2 * width, 1, 4),
            (2 * width, 1, 1))  # (filters, stride, dilation)
    for index, (filters, stride, dilation) in enumerate(plan, start=1):
        x = layers.Conv2D(filters, 3, strides=stride, dilation_rate=dilation, padding="same", use_bias=False,
                          name=f"conv{index}", dtype=dtype)(x)
        x = batch_norm(f"conv{index}_bn", dtype)(x)
        x = layers.ReLU(name=FEATURES if index == len(plan) else f"conv{index}_relu", dtype=dtype)(x)
    x = layers.Conv2D(num_classes, 1, name="classifier", dtype=dtype)(x)
    logits = logits_at_input_size(x, image)
    return computing_in(keras.Model(image, logits, name=name), dtype)
