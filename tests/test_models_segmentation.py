"""The segmentation networks: logits at the input size, parameter counts against the published ones, the VGG16
backbone loaded from a file or the Keras download (and the offline fallback), weights round trips, float32
outputs under mixed precision, the named features, CycleGAN's generator and PatchGAN discriminator."""

import h5py
import numpy as np
import pytest
import tensorflow as tf

import keras

from cycada_tf.models import cyclegan, drn, fcn8s, layers, segmenter, small_fcn

CLASSES = 5

# Published counts. Keras' VGG16 (keras.io/api/applications): 138,357,544 parameters with its top, of which the
# 13 convolutions hold 14,714,688 and the ImageNet classifier 4096 * 1000 + 1000.
VGG16_TOTAL, VGG16_CONVS, VGG16_PREDICTIONS = 138_357_544, 14_714_688, 4096 * 1000 + 1000
# DRN-C-26 (Yu et al. 2017, Table 2): 21.1M parameters with its 1000-way ImageNet classifier (512 * 1000 + 1000).
# Counted by hand below from the architecture (trainable: conv kernels, no biases, BN gamma and beta).
# CycleGAN's logs print 11.378 M for resnet_9blocks and 2.765 M for the 70x70 PatchGAN (affine-free instance norm
# with conv biases); ours has affine instance norm (gamma, beta per channel) and drops the biases a norm follows
# in the discriminator.
CYCLEGAN_G, PATCHGAN_D = 11_378_179, 2_764_737


def _images(batch, height, width, seed=0, channels=3):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, height, width, channels)).astype("float32")


def _trainable(model_or_layers):
    weights = model_or_layers.trainable_weights if hasattr(model_or_layers, "trainable_weights") else \
        [w for layer in model_or_layers for w in layer.trainable_weights]
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.fixture(scope="module")
def fcn():
    return fcn8s.fcn8s(CLASSES)  # 134M parameters: built once, at a run-time input size


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


def _assert_backbone_is(model, vgg):
    for block, (_, convs) in enumerate(fcn8s.VGG16_BLOCKS, start=1):
        for conv in range(1, convs + 1):
            name = f"block{block}_conv{conv}"
            for ours, theirs in zip(model.get_layer(name).get_weights(), vgg.get_layer(name).get_weights()):
                np.testing.assert_array_equal(ours, theirs, err_msg=name)


# --- FCN8s ------------------------------------------------------------------------------------------------

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
        fcn8s.fcn8s(CLASSES, input_shape=(48, 64, 3))
    with pytest.raises(tf.errors.InvalidArgumentError, match="fcn8s: input height and width must be multiples of 32"):
        fcn(_images(1, 48, 64))
    assert fcn8s.fcn8s(CLASSES, input_shape=(32, 64, 3))(_images(1, 32, 64)).shape == (1, 32, 64, CLASSES)


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
def test_fcn8s_loads_a_local_vgg16_file_and_feeds_it_caffe_style_input(vgg16_files, layout):
    vgg, paths = vgg16_files
    model = fcn8s.fcn8s(CLASSES, input_shape=(32, 32, 3), weights=paths[layout])
    _assert_backbone_is(model, vgg)
    # The model's own [-1, 1] -> caffe conversion gives VGG16 the input Keras' preprocess_input prepares.
    x = _images(2, 32, 32)
    ours = keras.Model(model.input, model.get_layer("block5_pool").output)(x).numpy()
    theirs = vgg(keras.applications.vgg16.preprocess_input((x + 1.0) * 127.5)).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-3 * float(np.abs(theirs).max()))


def test_fcn8s_imagenet_weights_come_from_the_keras_download(vgg16_files, monkeypatch):
    vgg, paths = vgg16_files
    asked = []

    def get_file(fname, origin, **kwargs):
        asked.append((fname, origin, kwargs.get("file_hash")))
        return paths["official .h5"]

    monkeypatch.setattr(keras.utils, "get_file", get_file)
    model = fcn8s.fcn8s(CLASSES, input_shape=(32, 32, 3), weights="imagenet")
    assert asked == [(fcn8s.VGG16_NOTOP_FILE, fcn8s.VGG16_NOTOP_URL, fcn8s.VGG16_NOTOP_MD5)]
    _assert_backbone_is(model, vgg)


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
    missing = str(tmp_path / "nowhere.h5")
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        fcn8s.fcn8s(CLASSES, weights=missing)
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        drn.drn26(CLASSES, weights=missing)
    other = str(tmp_path / "small.weights.h5")
    small_fcn.small_fcn(CLASSES, width=4).save_weights(other)
    with pytest.raises(ValueError, match="small.weights.h5 is not a keras.applications.VGG16"):
        fcn8s.fcn8s(CLASSES, weights=other)
    with pytest.raises(ValueError, match="small.weights.h5 does not hold the weights"):
        drn.drn26(CLASSES, weights=other)
    garbage = tmp_path / "garbage.weights.h5"
    garbage.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="garbage.weights.h5"):
        drn.drn26(CLASSES, weights=str(garbage))


# --- DRN-C-26 ---------------------------------------------------------------------------------------------

def _drn_c26_trainable_by_hand():
    """Trainable parameters of DRN-C-26 without a classifier, level by level (3x3 convs without bias, BN gamma
    and beta, a 1x1 projection + BN where the stride or channels change)."""
    def block(c_in, c_out, project):
        return 9 * c_in * c_out + 9 * c_out * c_out + 4 * c_out + (c_in * c_out + 2 * c_out if project else 0)

    stem = 7 * 7 * 3 * 16 + 2 * 16
    levels = [block(16, 16, False),                                # level 1
              block(16, 32, True),                                 # level 2, stride 2
              block(32, 64, True) + block(64, 64, False),          # level 3, stride 2
              block(64, 128, True) + block(128, 128, False),       # level 4, stride 2
              block(128, 256, True) + block(256, 256, False),      # level 5, dilation 2
              block(256, 512, True) + block(512, 512, False),      # level 6, dilation 4
              block(512, 512, False), block(512, 512, False)]      # levels 7-8, no residual
    return stem + sum(levels)


def test_drn26_parameters_match_drn_c_26():
    model = drn.drn26(CLASSES)
    backbone = _drn_c26_trainable_by_hand()
    assert backbone == 20_613_584
    assert round((backbone + 512 * 1000 + 1000) / 1e6, 1) == 21.1  # the DRN paper's count, ImageNet head
    assert _trainable(model) == backbone + 512 * CLASSES + CLASSES
    # The only non-trainable weights are the BN moving mean and variance, two per trainable (gamma, beta) pair.
    bn = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert model.count_params() - _trainable(model) == sum(2 * layer.gamma.shape[0] for layer in bn)
    strides = {layer.name: layer.strides[0] for layer in model.layers if isinstance(layer, keras.layers.Conv2D)}
    assert sorted(name for name, s in strides.items() if s == 2) == [
        f"level{level}_block1_{conv}" for level in (2, 3, 4) for conv in ("conv1", "downsample")]
    dilations = {layer.name: layer.dilation_rate[0] for layer in model.layers
                 if isinstance(layer, keras.layers.Conv2D)}
    assert dilations["level5_block2_conv2"] == 2 and dilations["level6_block1_conv1"] == 4
    assert dilations["level7_block1_conv1"] == 2 and dilations["level8_block1_conv2"] == 1
    assert "level7_block1_add" not in [layer.name for layer in model.layers]  # degridding levels: no residual


# --- all segmenters ---------------------------------------------------------------------------------------

SEGMENTERS = {
    "small_fcn": lambda **kw: small_fcn.small_fcn(CLASSES, width=8, **kw),
    "drn26": lambda **kw: drn.drn26(CLASSES, **kw),
}


@pytest.mark.parametrize("name", SEGMENTERS)
@pytest.mark.parametrize("height,width", [(32, 64), (37, 50)])
def test_segmenters_give_float32_logits_at_the_input_size(name, height, width):
    logits = SEGMENTERS[name]()(_images(2, height, width))
    assert logits.shape == (2, height, width, CLASSES) and logits.dtype == "float32"
    assert np.isfinite(logits.numpy()).all() and logits.numpy().std() > 0


def test_small_fcn_is_small():
    assert 100_000 <= small_fcn.small_fcn(19).count_params() <= 300_000


@pytest.fixture
def mixed_bfloat16():
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@pytest.mark.parametrize("build,size,channels_out", [
    (lambda: small_fcn.small_fcn(CLASSES, width=8), 32, CLASSES),
    (lambda: drn.drn26(CLASSES), 32, CLASSES),
    (lambda: fcn8s.fcn8s(CLASSES, input_shape=(32, 32, 3)), 32, CLASSES),
    (lambda: cyclegan.resnet_generator(width=8, blocks=2), 32, 3),
    (lambda: cyclegan.patchgan_discriminator(width=8), 32, 1),
], ids=["small_fcn", "drn26", "fcn8s", "generator", "discriminator"])
def test_outputs_are_float32_under_mixed_bfloat16(mixed_bfloat16, build, size, channels_out):
    model = build()
    assert model.get_layer(index=len(model.layers) // 2).compute_dtype == "bfloat16"  # the policy is in force
    out = model(_images(2, size, size))
    assert out.dtype == "float32" and out.shape[-1] == channels_out


@pytest.mark.parametrize("name", SEGMENTERS)
def test_weights_round_trip(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = SEGMENTERS[name]()
    for layer in model.layers:  # moving statistics away from 0/1, so that they must be restored too
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.1, "float32"))
    x = _images(2, 32, 32)
    path = str(tmp_path / f"{name}.weights.h5")
    model.save_weights(path)
    fresh = SEGMENTERS[name]()
    assert not np.allclose(fresh(x).numpy(), model(x).numpy())
    if name == "drn26":
        fresh = SEGMENTERS[name](weights=path)
    else:
        fresh.load_weights(path)
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


def test_drn26_imagenet_warns_and_keeps_random_weights():
    with pytest.warns(UserWarning, match="no ImageNet weights of DRN-C-26"):
        model = drn.drn26(CLASSES, weights="imagenet")
    assert model(_images(1, 32, 32)).shape == (1, 32, 32, CLASSES)


@pytest.mark.parametrize("name", ["small_fcn", "drn26", "fcn8s"])
def test_feature_model_returns_the_named_features_and_the_same_logits(name, fcn):
    model = fcn if name == "fcn8s" else SEGMENTERS[name]()
    stride, channels = {"small_fcn": (4, 16), "drn26": (8, 512), "fcn8s": (32, 4096)}[name]
    x = _images(2, 64, 64)
    features, logits = (t.numpy() for t in segmenter.feature_model(model)(x))
    assert features.shape == (2, 64 // stride, 64 // stride, channels)
    assert features.min() >= 0.0  # taken after a ReLU
    np.testing.assert_allclose(logits, model(x).numpy(), rtol=1e-5, atol=1e-5)
    if name != "fcn8s":  # the features are what the classifier reads
        scores = model.get_layer("classifier")(features)
        np.testing.assert_allclose(model.get_layer("logits")([scores, x]).numpy(), logits, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="no layer named 'features'"):
        segmenter.feature_model(cyclegan.patchgan_discriminator(width=4))


# --- CycleGAN's generator and PatchGAN --------------------------------------------------------------------

def test_resnet_generator_keeps_the_size_and_stays_in_minus_one_one():
    g = cyclegan.resnet_generator(width=8, blocks=2)
    y = g(_images(2, 32, 48) * 50.0).numpy()  # large inputs push tanh to its limits
    assert y.shape == (2, 32, 48, 3) and y.min() >= -1.0 and y.max() <= 1.0 and y.std() > 0
    assert cyclegan.resnet_generator(channels_in=1, channels_out=3, width=8, blocks=1)(
        _images(1, 16, 16, channels=1)).shape == (1, 16, 16, 3)


def test_resnet_generator_is_cyclegans_resnet_9blocks():
    g = cyclegan.resnet_generator()
    assert sum(isinstance(layer, layers.ResidualBlock) for layer in g.layers) == 9
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
