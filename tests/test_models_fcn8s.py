"""VGG16-FCN8s (models/fcn8s.py): parameter counts against the published ones, logits at any multiple of 32, the
VGG16 backbone read from either file layout or the Keras download (and the offline fallback), caffe-style input,
float32 logits under mixed precision, fc7 as the features.

FCN8s holds 134M parameters, most in fc6: each build takes about a second, so the module builds four (one at
a run-time size shared by the shape tests, one from the mocked download, one offline, one under bfloat16)
and reads the VGG16 files without building FCN8s around them."""

import h5py
import numpy as np
import pytest
import tensorflow as tf

import keras

from cycada_tf import precision
from cycada_tf.models import fcn8s, segmenter

CLASSES = 5

# Published counts. Keras' VGG16 (keras.io/api/applications): 138,357,544 parameters with its top, of which the
# 13 convolutions hold 14,714,688 and the ImageNet classifier 4096 * 1000 + 1000.
VGG16_TOTAL, VGG16_CONVS, VGG16_PREDICTIONS = 138_357_544, 14_714_688, 4096 * 1000 + 1000


def _images(batch, height, width, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, height, width, 3)).astype("float32")


def _trainable(model_or_layers):
    weights = model_or_layers.trainable_weights if hasattr(model_or_layers, "trainable_weights") else \
        [w for layer in model_or_layers for w in layer.trainable_weights]
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.fixture(scope="module")
def fcn():
    return fcn8s.fcn8s(CLASSES)  # random, at a run-time input size


@pytest.fixture(scope="module")
def vgg16_files(tmp_path_factory):
    """A random keras.applications.VGG16(include_top=False) saved in both layouts fcn8s reads: the Keras 2 HDF5
    of the official download (layer_names, weight_names, <layer>_W_1:0 datasets) and a Keras 3 .weights.h5."""
    directory = tmp_path_factory.mktemp("vgg16")
    keras.utils.set_random_seed(1)
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
    for layer in vgg.layers:  # biases start at zero: give them values a copy must carry over
        if layer.weights:
            layer.bias.assign(np.random.default_rng(len(layer.name)).normal(size=layer.bias.shape))
    keras3 = str(directory / "vgg16_notop.weights.h5")
    vgg.save_weights(keras3)
    official = str(directory / fcn8s.VGG16_NOTOP_FILE)
    with h5py.File(official, "w") as f:
        f.attrs["layer_names"] = [layer.name.encode() for layer in vgg.layers]
        f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.2.4"
        for layer in vgg.layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}_{w}_1:0".encode() for w in ("W", "b")][:len(layer.weights)]
            group.attrs["weight_names"] = names
            for n, value in zip(names, layer.get_weights()):
                group.create_dataset(n.decode(), data=value)
    return vgg, {"official .h5": official, "keras 3 .weights.h5": keras3}


@pytest.fixture(scope="module")
def downloaded(vgg16_files):
    """FCN8s with weights="imagenet", at a static input size, where Keras' download hands over the official
    file; and what fcn8s asked the download for."""
    _, paths = vgg16_files
    asked = []

    def get_file(fname, origin, **kwargs):
        asked.append((fname, origin, kwargs.get("file_hash")))
        return paths["official .h5"]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras.utils, "get_file", get_file)
        return fcn8s.fcn8s(CLASSES, input_shape=(32, 64, 3), weights="imagenet"), asked


def _assert_backbone_is(weights_of, vgg):
    for block, (_, convs) in enumerate(fcn8s.VGG16_BLOCKS, start=1):
        for conv in range(1, convs + 1):
            name = f"block{block}_conv{conv}"
            for ours, theirs in zip(weights_of(name), vgg.get_layer(name).get_weights()):
                np.testing.assert_array_equal(ours, theirs, err_msg=name)


def test_fcn8s_parameters_are_vgg16_without_its_classifier_plus_the_fcn_heads(fcn):
    convs = [layer for layer in fcn.layers if layer.name.startswith("block") and "conv" in layer.name]
    assert len(convs) == 13
    assert _trainable(convs) == VGG16_CONVS
    # fc6/fc7 as convolutions hold exactly VGG16's fc1/fc2 (fc6: 7 x 7 x 512 -> 4096 is fc1 on the flattened
    # 7 x 7 x 512 pool5).
    assert _trainable([fcn.get_layer("fc6"), fcn.get_layer("fc7")]) == VGG16_TOTAL - VGG16_CONVS - VGG16_PREDICTIONS
    scores = (4096 + 512 + 256) * CLASSES + 3 * CLASSES
    learned_upsampling = 2 * 4 * 4 * CLASSES * CLASSES
    fixed_upsampling = 16 * 16 * CLASSES * CLASSES
    assert _trainable(fcn) == VGG16_TOTAL - VGG16_PREDICTIONS + scores + learned_upsampling
    assert fcn.count_params() == _trainable(fcn) + fixed_upsampling
    assert not fcn.get_layer("upscore8").trainable and fcn.get_layer("upscore2").trainable


def test_fcn8s_gives_float32_logits_at_any_multiple_of_32_and_refuses_other_sizes(fcn, downloaded):
    for height, width in ((64, 96), (32, 32)):
        logits = fcn(_images(2, height, width))
        assert logits.shape == (2, height, width, CLASSES) and logits.dtype == "float32"
    with pytest.raises(ValueError, match="multiples of 32"):
        fcn8s.fcn8s(CLASSES, input_shape=(48, 64, 3))  # refused before anything is built
    with pytest.raises(tf.errors.InvalidArgumentError, match="fcn8s: input height and width must be multiples of 32"):
        fcn(_images(1, 48, 64))
    assert segmenter.input_multiple(fcn) == fcn8s.FCN_STRIDE  # what the export pads images to
    static, _ = downloaded  # built at input_shape (32, 64, 3)
    assert static(_images(1, 32, 64)).shape == (1, 32, 64, CLASSES)


def test_fcn8s_upsampling_starts_bilinear():
    # A constant score map upsampled x8 stays that constant (away from the zero-padded border), and a ramp stays
    # a ramp: the fixed kernel interpolates, and "same" padding puts it on the pixel grid.
    layer = keras.layers.Conv2DTranspose(2, 16, strides=8, padding="same", use_bias=False,
                                         kernel_initializer=fcn8s.BilinearUpsampling())
    constant = layer(np.full((1, 4, 4, 2), 3.0, "float32")).numpy()
    assert constant.shape == (1, 32, 32, 2)
    np.testing.assert_allclose(constant[:, 4:-4, 4:-4], 3.0, rtol=1e-6)
    ramp = np.broadcast_to(np.arange(4, dtype="float32")[None, None, :, None], (1, 4, 4, 2))
    up = layer(ramp).numpy()[0, 16, 4:-4, 0]  # columns 4..27 lie between the centres of cells 0 and 3
    np.testing.assert_allclose(np.diff(up), 1.0 / 8, rtol=1e-5)
    with pytest.raises(ValueError, match="square kernel"):
        fcn8s.BilinearUpsampling()((4, 4, 2, 3))


@pytest.mark.parametrize("layout", ["official .h5", "keras 3 .weights.h5"])
def test_the_vgg16_backbone_is_read_from_either_file_layout(vgg16_files, layout):
    vgg, paths = vgg16_files
    backbone = fcn8s.read_vgg16_backbone(paths[layout])
    assert len(backbone) == 13
    _assert_backbone_is(lambda name: backbone[name], vgg)


def test_fcn8s_imagenet_weights_come_from_the_keras_download(vgg16_files, downloaded):
    vgg, _ = vgg16_files
    model, asked = downloaded
    assert asked == [(fcn8s.VGG16_NOTOP_FILE, fcn8s.VGG16_NOTOP_URL, fcn8s.VGG16_NOTOP_MD5)]
    _assert_backbone_is(lambda name: model.get_layer(name).get_weights(), vgg)


def test_fcn8s_feeds_its_backbone_caffe_style_input(vgg16_files, downloaded):
    # The model's own [-1, 1] -> caffe conversion gives VGG16 the input Keras' preprocess_input prepares.
    vgg, _ = vgg16_files
    model, _ = downloaded
    x = _images(2, 32, 64)
    ours = keras.Model(model.input, model.get_layer("block5_pool").output)(x).numpy()
    theirs = vgg(keras.applications.vgg16.preprocess_input((x + 1.0) * 127.5)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-3 * float(np.abs(theirs).max()))


def test_fcn8s_imagenet_offline_warns_and_keeps_a_random_backbone(vgg16_files, monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.warns(UserWarning, match="VGG16 ImageNet weights.*network is unreachable"):
        model = fcn8s.fcn8s(CLASSES, input_shape=(32, 32, 3), weights="imagenet")
    vgg, _ = vgg16_files
    assert not np.array_equal(model.get_layer("block1_conv1").kernel.numpy(),
                              vgg.get_layer("block1_conv1").kernel.numpy())
    assert model(_images(1, 32, 32)).shape == (1, 32, 32, CLASSES)


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras, while it finds the mismatch
def test_bad_weight_files_raise_errors_naming_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        fcn8s.fcn8s(CLASSES, weights=str(tmp_path / "nowhere.h5"))
    other = str(tmp_path / "other.weights.h5")
    keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3)]).save_weights(other)
    with pytest.raises(ValueError, match="other.weights.h5 is not a keras.applications.VGG16"):
        fcn8s.fcn8s(CLASSES, weights=other)


def test_fcn8s_logits_are_float32_under_mixed_bfloat16():
    with precision.policy("mixed_bfloat16"):
        model = fcn8s.fcn8s(CLASSES, input_shape=(32, 32, 3))
    assert model.get_layer("fc6").compute_dtype == "bfloat16"  # the policy is in force
    logits = model(_images(2, 32, 32))
    assert logits.dtype == "float32" and logits.shape == (2, 32, 32, CLASSES)


def test_fcn8s_features_are_fc7_after_its_relu(fcn):
    x = _images(2, 64, 64)
    features, logits = (t.numpy() for t in segmenter.feature_model(fcn)(x))
    assert features.shape == (2, 64 // fcn8s.FCN_STRIDE, 64 // fcn8s.FCN_STRIDE, fcn8s.FC_WIDTH)
    assert features.min() >= 0.0  # taken after a ReLU
    np.testing.assert_allclose(logits, fcn(x).numpy(), rtol=1e-5, atol=1e-5)
