"""VGG16-FCN8s (models/fcn8s.py, models/vgg16_weights.py): parameter counts against the published ones, logits
at any multiple of 32, VGG16's ImageNet weights (all 15 layers: fc1/fc2 as the convolutions fc6/fc7, with the
activations of the dense layers) read from Keras' cache or either file layout, the file named when it is
missing, caffe-style input, float32 logits under mixed precision, fc7 as the features.

FCN8s holds 134M parameters, most in fc6: each build takes a few seconds, so the module builds three (one from
"imagenet" at a run-time size, shared by the shape tests; one from a file without VGG16's top at a static size;
one under bfloat16), and one random keras.applications.VGG16 with its top (138M), whose weights file stands in
for Keras' in a temporary KERAS_HOME (553 MB, written in the official file's layout)."""

import h5py
import numpy as np
import pytest
import tensorflow as tf

import keras
from keras import ops

from cycada_tf.models import fcn8s, segmenter, vgg16_weights
from cycada_tf.models.pretrained import WeightsFileError

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


def _write_keras2(path, model, layers):
    """`layers` of `model` in the Keras 2 HDF5 layout of the official downloads: attribute layer_names, a group
    per layer whose attribute weight_names lists its datasets, <layer>_W_1:0 and <layer>_b_1:0."""
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = [name.encode() for name in layers]
        f.attrs["backend"], f.attrs["keras_version"] = b"tensorflow", b"2.2.4"
        for name in layers:
            layer, group = model.get_layer(name), f.create_group(name)
            names = [f"{name}_{w}_1:0".encode() for w in ("W", "b")][:len(layer.weights)]
            group.attrs["weight_names"] = names
            for n, value in zip(names, layer.weights):
                group.create_dataset(n.decode(), data=value.numpy())
    return path


@pytest.fixture(scope="module")
def vgg16():
    """A random keras.applications.VGG16 with its top; its biases (zero at first) given values to carry over."""
    keras.utils.set_random_seed(1)
    vgg = keras.applications.VGG16(weights=None, include_top=True)
    for layer in vgg.layers:
        if layer.weights:
            layer.bias.assign(np.random.default_rng(len(layer.name)).normal(size=layer.bias.shape))
    return vgg


@pytest.fixture(scope="module")
def keras_home(vgg16, tmp_path_factory):
    """A KERAS_HOME whose models/ holds `vgg16` as Keras' include_top file (every layer, as the official one)."""
    home = tmp_path_factory.mktemp("keras_home")
    (home / "models").mkdir()
    _write_keras2(str(home / "models" / fcn8s.VGG16_FILE), vgg16, [layer.name for layer in vgg16.layers])
    return str(home)


def _no_download(*args, **kwargs):
    raise OSError("network is unreachable")


@pytest.fixture(scope="module")
def imagenet(keras_home):
    """FCN8s with weights="imagenet" at a run-time input size, the file in the cache (no download allowed)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERAS_HOME", keras_home)
        patch.setattr(keras.utils, "get_file", _no_download)
        return fcn8s.fcn8s(CLASSES, weights="imagenet")


@pytest.fixture(scope="module")
def fcn(imagenet):
    return imagenet  # the shape tests need any FCN8s: one build fewer


@pytest.fixture(scope="module")
def notop_files(vgg16, tmp_path_factory):
    """VGG16 without its top, in both layouts: the official _notop.h5's (Keras 2) and a Keras 3 .weights.h5."""
    directory = tmp_path_factory.mktemp("vgg16_notop")
    official = _write_keras2(str(directory / "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"), vgg16,
                             vgg16_weights.CONVS)
    notop = keras.applications.VGG16(weights=None, include_top=False, input_shape=(None, None, 3))
    for name in vgg16_weights.CONVS:
        notop.get_layer(name).set_weights(vgg16.get_layer(name).get_weights())
    keras3 = str(directory / "vgg16_notop.weights.h5")
    notop.save_weights(keras3)
    return {"official .h5": official, "keras 3 .weights.h5": keras3}


def _assert_convs_are(weights_of, vgg):
    for name in vgg16_weights.CONVS:
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


def test_fcn8s_gives_float32_logits_at_any_multiple_of_32_and_refuses_other_sizes(fcn):
    for height, width in ((64, 96), (32, 32)):
        logits = fcn(_images(2, height, width))
        assert logits.shape == (2, height, width, CLASSES) and logits.dtype == "float32"
    with pytest.raises(ValueError, match="multiples of 32"):
        fcn8s.fcn8s(CLASSES, input_shape=(48, 64, 3))  # refused before anything is built
    with pytest.raises(tf.errors.InvalidArgumentError, match="fcn8s: input height and width must be multiples of 32"):
        fcn(_images(1, 48, 64))
    assert segmenter.input_multiple(fcn) == fcn8s.FCN_STRIDE  # what the export pads images to


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


def test_fc1_and_fc2_as_convolutions_compute_the_dense_layers_on_a_pool5_map(vgg16, imagenet):
    # fcn8s "imagenet" from the include_top file: its fc6 at the centre of a 7x7 pool5 map (where its 7x7 window
    # covers the map) is VGG16's fc1 on the flattened map, and fc7 on that is fc2, both after their ReLU.
    pool5 = np.random.default_rng(2).uniform(0, 2, (2,) + vgg16_weights.POOL5).astype("float32")
    fc1 = vgg16.get_layer("fc1")(vgg16.get_layer("flatten")(pool5))
    fc2 = vgg16.get_layer("fc2")(fc1).numpy()
    fc6 = imagenet.get_layer("fc6")(pool5)
    fc7 = imagenet.get_layer(segmenter.FEATURES)(imagenet.get_layer("fc7")(fc6)).numpy()
    scale = float(np.abs(fc1).max())
    np.testing.assert_allclose(fc6.numpy()[:, 3, 3], fc1.numpy(), rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(fc7[:, 3, 3], fc2, rtol=1e-4, atol=1e-5 * float(np.abs(fc2).max()))
    assert float(np.abs(fc2).max()) > 0 and (fc2 > 0).mean() > 0.1  # not an all-zero ReLU


def test_flatten_order_is_numpys_c_order():
    # On a map small enough to check by hand: Dense after channels-last Flatten == a "valid" conv whose kernel
    # is the Dense kernel reshaped (h, w, c, units), at every weight.
    rng = np.random.default_rng(3)
    kernel, bias = rng.normal(size=(2 * 3 * 4, 5)).astype("float32"), rng.normal(size=5).astype("float32")
    x = rng.normal(size=(1, 2, 3, 4)).astype("float32")
    dense = x.reshape(1, -1) @ kernel + bias
    assert np.array_equal(keras.layers.Flatten()(x).numpy(), x.reshape(1, -1))
    conv = keras.layers.Conv2D(5, (2, 3))
    conv.build((None, 2, 3, 4))
    conv.set_weights(vgg16_weights.fc_as_conv(kernel, bias, (2, 3, 4)))
    np.testing.assert_allclose(conv(x).numpy()[:, 0, 0], dense, rtol=1e-5, atol=1e-5)


def test_imagenet_loads_all_15_layers_from_keras_cache(vgg16, imagenet):
    _assert_convs_are(lambda name: imagenet.get_layer(name).get_weights(), vgg16)
    for fcn_layer, vgg_layer in (("fc6", "fc1"), ("fc7", "fc2")):
        ours, theirs = imagenet.get_layer(fcn_layer), vgg16.get_layer(vgg_layer)
        # Compared where they are: numpy copies (and assert_array_equal) of 102M values take seconds each.
        assert bool(ops.all(ops.equal(ops.reshape(ours.kernel, theirs.kernel.shape), theirs.kernel))), fcn_layer
        np.testing.assert_array_equal(ours.bias.numpy(), theirs.bias.numpy(), err_msg=fcn_layer)
    assert ours.kernel.shape == (1, 1, 4096, 4096) and imagenet.get_layer("fc6").kernel.shape == (7, 7, 512, 4096)
    assert not imagenet.get_layer("score_fr").kernel.numpy().any()  # the new layers start as FCN's


def test_imagenet_not_in_the_cache_is_downloaded_or_named(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    asked = []

    def get_file(fname, origin, cache_dir=None, cache_subdir=None, file_hash=None):
        asked.append((fname, origin, cache_dir, cache_subdir, file_hash))
        raise OSError("network is unreachable")

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    expected = str(tmp_path / "models" / fcn8s.VGG16_FILE)
    with pytest.raises(WeightsFileError) as raised:
        fcn8s.fcn8s(CLASSES, weights="imagenet")
    assert asked == [(fcn8s.VGG16_FILE, fcn8s.VGG16_URL, str(tmp_path), "models", fcn8s.VGG16_MD5)]
    assert str(raised.value) == (f"fcn8s: VGG16 ImageNet weights {expected} is not there and could not be "
                                 f"downloaded (OSError: network is unreachable); download {fcn8s.VGG16_URL} "
                                 f"into {tmp_path / 'models'}")


@pytest.mark.parametrize("layout", ["official .h5", "keras 3 .weights.h5"])
def test_a_file_without_vgg16s_top_gives_the_13_convolutions(vgg16, notop_files, layout):
    backbone = vgg16_weights.read(notop_files[layout])
    assert sorted(backbone) == sorted(vgg16_weights.CONVS)
    _assert_convs_are(lambda name: backbone[name], vgg16)


def test_fcn8s_from_a_file_without_vgg16s_top_warns_that_fc6_fc7_stay_random(vgg16, notop_files):
    with pytest.warns(UserWarning, match="holds VGG16 without its top .no fc1/fc2.: fc6 and fc7 keep their random"):
        model = fcn8s.fcn8s(CLASSES, input_shape=(32, 32, 3), weights=notop_files["official .h5"])
    _assert_convs_are(lambda name: model.get_layer(name).get_weights(), vgg16)
    assert model(_images(1, 32, 32)).shape == (1, 32, 32, CLASSES)  # built at a static input size


def test_fcn8s_feeds_its_backbone_caffe_style_input(vgg16, imagenet):
    # The model's own [-1, 1] -> caffe conversion gives VGG16 the input Keras' preprocess_input prepares.
    x = _images(2, 32, 64)
    ours = keras.Model(imagenet.input, imagenet.get_layer("block5_pool").output)(x).numpy()
    theirs = keras.applications.vgg16.preprocess_input((x + 1.0) * 127.5)
    for layer in vgg16.layers[1:vgg16.layers.index(vgg16.get_layer("block5_pool")) + 1]:
        theirs = layer(theirs)
    theirs = theirs.numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-3 * float(np.abs(theirs).max()))


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras, while it finds the mismatch
def test_bad_weight_files_raise_errors_naming_the_file(tmp_path):
    with pytest.raises(WeightsFileError, match="fcn8s: VGG16 weights file .*nowhere.h5 does not exist"):
        fcn8s.fcn8s(CLASSES, weights=str(tmp_path / "nowhere.h5"))
    other = str(tmp_path / "other.weights.h5")
    keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3)]).save_weights(other)
    with pytest.raises(WeightsFileError, match="other.weights.h5 is not a keras.applications.VGG16 weights file "
                                               ".it has no layer block1_conv1"):
        fcn8s.fcn8s(CLASSES, weights=other)
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"<html>404</html>")
    with pytest.raises(WeightsFileError, match="garbage.h5 is not a Keras weights file .HDF5."):
        fcn8s.fcn8s(CLASSES, weights=str(garbage))
    wrong = str(tmp_path / "fc1_of_a_14x14_map.h5")
    shapes = dict(vgg16_weights.vgg16_shapes(), fc1=[(14 * 14 * 512, 8), (8,)])
    with h5py.File(wrong, "w") as f:  # datasets never written take no space
        f.attrs["layer_names"] = [name.encode() for name in shapes]
        for name, (kernel, bias) in shapes.items():
            group = f.create_group(name)
            group.attrs["weight_names"] = [b"W", b"b"]
            group.create_dataset("W", shape=kernel, dtype="float32")
            group.create_dataset("b", shape=bias, dtype="float32")
    with pytest.raises(WeightsFileError, match=r"14x14_map.h5 is not a keras.applications.VGG16 weights file: its "
                                               r"fc1 holds \[\(100352, 8\), \(8,\)\], VGG16's \[\(25088, 4096\)"):
        fcn8s.fcn8s(CLASSES, weights=wrong)


def test_fcn8s_logits_are_float32_under_mixed_bfloat16():
    model = fcn8s.fcn8s(CLASSES, input_shape=(32, 32, 3), dtype="mixed_bfloat16")
    assert model.get_layer("fc6").compute_dtype == "bfloat16"  # the policy given reaches the layers
    logits = model(_images(2, 32, 32))
    assert logits.dtype == "float32" and logits.shape == (2, 32, 32, CLASSES)


def test_fcn8s_features_are_fc7_after_its_relu(fcn):
    x = _images(2, 64, 64)
    features, logits = (t.numpy() for t in segmenter.feature_model(fcn)(x))
    assert features.shape == (2, 64 // fcn8s.FCN_STRIDE, 64 // fcn8s.FCN_STRIDE, fcn8s.FC_WIDTH)
    assert features.min() >= 0.0  # taken after a ReLU
    np.testing.assert_allclose(logits, fcn(x).numpy(), rtol=1e-5, atol=1e-5)
