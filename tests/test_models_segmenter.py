"""What every segmenter shares (models/segmenter.py), tested on the small FCN (models/small_fcn.py), which is
built in a blink: float32 logits at the input size (the head DRN-C-26 shares) under mixed precision too, the
named features, weights round trips, the input checks, any_size's padding and cropping."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from cycada_tf.models import segmenter, small_fcn

CLASSES = 5


def _images(batch, height, width, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, height, width, 3)).astype("float32")


def _small(**kwargs):
    return small_fcn.small_fcn(CLASSES, width=8, **kwargs)


@pytest.mark.parametrize("height,width", [(32, 64), (37, 50)])
def test_small_fcn_gives_float32_logits_at_the_input_size(height, width):
    logits = _small()(_images(2, height, width))
    assert logits.shape == (2, height, width, CLASSES) and logits.dtype == "float32"
    assert np.isfinite(logits.numpy()).all() and logits.numpy().std() > 0


def test_small_fcn_is_small():
    assert 100_000 <= small_fcn.small_fcn(19).count_params() <= 300_000


def test_logits_at_the_input_size_are_float32_under_mixed_bfloat16():
    model = _small(dtype="mixed_bfloat16")
    assert model.get_layer("conv3").compute_dtype == "bfloat16"  # the policy given reaches the layers
    logits = model(_images(2, 32, 32))
    assert logits.dtype == "float32" and logits.shape == (2, 32, 32, CLASSES)


def test_weights_round_trip(tmp_path):
    keras.utils.set_random_seed(0)
    model = _small()
    for layer in model.layers:  # moving statistics away from 0/1, so that they must be restored too
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.1, "float32"))
    x = _images(2, 32, 32)
    path = str(tmp_path / "small_fcn.weights.h5")
    model.save_weights(path)
    fresh = _small()
    assert not np.allclose(fresh(x).numpy(), model(x).numpy())
    fresh.load_weights(path)
    np.testing.assert_array_equal(fresh(x).numpy(), model(x).numpy())


def test_feature_model_returns_the_named_features_and_the_same_logits():
    model = _small()
    x = _images(2, 64, 64)
    features, logits = (t.numpy() for t in segmenter.feature_model(model)(x))
    assert features.shape == (2, 64 // 4, 64 // 4, 16)  # stride 4, 2 x width channels
    assert features.min() >= 0.0  # taken after a ReLU
    np.testing.assert_allclose(logits, model(x).numpy(), rtol=1e-5, atol=1e-5)
    scores = model.get_layer("classifier")(features)  # the features are what the classifier reads
    np.testing.assert_allclose(model.get_layer(segmenter.LOGITS)([scores, x]).numpy(), logits, rtol=1e-5, atol=1e-5)
    plain = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 1)], name="plain")
    with pytest.raises(ValueError, match="plain has no layer named 'features'"):
        segmenter.feature_model(plain)


def test_input_shape_errors_name_the_network():
    assert segmenter.check_input_shape([None, 64, 3], "net", multiple=32) == (None, 64, 3)
    with pytest.raises(ValueError, match=r"net: input_shape is \(height, width, channels\)"):
        segmenter.check_input_shape((64, 64), "net")
    with pytest.raises(ValueError, match="net: takes 3-channel images"):
        segmenter.check_input_shape((64, 64, 1), "net", channels=3)
    with pytest.raises(ValueError, match="net: input height and width must be multiples of 32"):
        segmenter.check_input_shape((64, 48, 3), "net", multiple=32)
    with pytest.raises(ValueError, match="small_fcn: input_shape is"):
        small_fcn.small_fcn(CLASSES, input_shape=(32, 32))


def test_any_size_pads_to_what_a_network_needs_and_crops_back():
    image = keras.Input((None, None, 3))
    checked = segmenter.SizeCheck(8, "toy")(image)
    toy = keras.Model(image, keras.layers.Conv2D(2, 3, padding="same")(checked), name="toy")
    assert segmenter.input_multiple(toy) == 8 and segmenter.input_multiple(_small()) == 1
    x = _images(1, 37, 50)
    with pytest.raises(tf.errors.InvalidArgumentError, match="toy: input height and width must be multiples of 8"):
        toy(x)
    y = segmenter.any_size(toy, 8)(x).numpy()
    padded = np.pad(x, ((0, 0), (0, 3), (0, 6), (0, 0)), mode="reflect")  # bottom and right, to 40 x 56
    np.testing.assert_allclose(y, toy(padded).numpy()[:, :37, :50], rtol=1e-6, atol=1e-6)
    net = _small()
    np.testing.assert_array_equal(segmenter.any_size(net, 1)(x).numpy(), net(x).numpy())
