"""DRN-C-26 (models/drn.py): the parameter count against the published one, strides and dilations, the ImageNet
input normalisation, logits at any input size, level 8 as the features, a saved backbone read back through
weights=, errors naming a bad file. (Its ImageNet checkpoint: test_drn_imagenet.py.)

The shape tests share one network; the round trip builds its own (its moving statistics are changed)."""

import numpy as np
import pytest

import keras

from cycada_tf.models import drn, segmenter
from cycada_tf.models.pretrained import WeightsFileError

CLASSES = 5


def _images(batch, height, width, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, height, width, 3)).astype("float32")


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.fixture(scope="module")
def drn26():
    return drn.drn26(CLASSES)  # random, at a run-time input size


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


def test_drn26_parameters_match_drn_c_26(drn26):
    backbone = _drn_c26_trainable_by_hand()
    assert backbone == 20_613_584
    assert round((backbone + 512 * 1000 + 1000) / 1e6, 1) == 21.1  # the DRN paper's count, ImageNet head
    assert _trainable(drn26) == backbone + 512 * CLASSES + CLASSES
    # The only non-trainable weights are the BN moving mean and variance, two per trainable (gamma, beta) pair.
    bn = [layer for layer in drn26.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert drn26.count_params() - _trainable(drn26) == sum(2 * layer.gamma.shape[0] for layer in bn)
    strides = {layer.name: layer.strides[0] for layer in drn26.layers if isinstance(layer, keras.layers.Conv2D)}
    assert sorted(name for name, s in strides.items() if s == 2) == [
        f"level{level}_block1_{conv}" for level in (2, 3, 4) for conv in ("conv1", "downsample")]
    dilations = {layer.name: layer.dilation_rate[0] for layer in drn26.layers
                 if isinstance(layer, keras.layers.Conv2D)}
    assert dilations["level5_block2_conv2"] == 2 and dilations["level6_block1_conv1"] == 4
    assert dilations["level7_block1_conv1"] == 2 and dilations["level8_block1_conv2"] == 1
    assert "level7_block1_add" not in [layer.name for layer in drn26.layers]  # degridding levels: no residual


@pytest.mark.parametrize("height,width", [(32, 64), (37, 50)])
def test_drn26_gives_float32_logits_at_the_input_size(drn26, height, width):
    logits = drn26(_images(2, height, width))
    assert logits.shape == (2, height, width, CLASSES) and logits.dtype == "float32"
    assert np.isfinite(logits.numpy()).all() and logits.numpy().std() > 0


def test_drn26_features_are_level_8_and_what_the_classifier_reads(drn26):
    x = _images(2, 64, 64)
    features, logits = (t.numpy() for t in segmenter.feature_model(drn26)(x))
    assert features.shape == (2, 64 // 8, 64 // 8, drn.DRN26_CHANNELS[-1])
    assert features.min() >= 0.0  # taken after a ReLU
    np.testing.assert_allclose(logits, drn26(x).numpy(), rtol=1e-5, atol=1e-5)
    scores = drn26.get_layer("classifier")(features)
    np.testing.assert_allclose(drn26.get_layer(segmenter.LOGITS)([scores, x]).numpy(), logits, rtol=1e-5, atol=1e-5)


def test_drn26_normalises_its_input_as_drn_was_trained_on_imagenet(drn26):
    x = _images(2, 4, 4)
    expected = ((x + 1.0) / 2.0 - np.array(drn.IMAGENET_MEAN)) / np.array(drn.IMAGENET_STD)
    np.testing.assert_allclose(drn26.get_layer("imagenet_normalize")(x).numpy(), expected, rtol=1e-5, atol=1e-5)
    assert drn26.get_layer("stem").input is drn26.get_layer("imagenet_normalize").output


def _backbone_weights(model):
    return [w.numpy() for layer in model.layers if layer.name != "classifier" for w in layer.weights]


def test_weights_of_a_whole_drn26_restore_its_backbone_not_its_classifier(drn26, tmp_path):
    keras.utils.set_random_seed(0)
    model = drn.drn26(CLASSES)
    for layer in model.layers:  # moving statistics away from 0/1, so that they must be restored too
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.moving_mean.assign(np.full(layer.moving_mean.shape, 0.1, "float32"))
    path = str(tmp_path / "drn26.weights.h5")
    model.save_weights(path)
    saved = _backbone_weights(model)
    assert not all(np.array_equal(a, b) for a, b in zip(_backbone_weights(drn26), saved))  # another network
    restored = drn.drn26(CLASSES, weights=path)
    assert len(saved) == 30 * (1 + 4)  # stem, 12 blocks x 2, 5 projections: a kernel and a batch norm (4) each
    for ours, theirs in zip(_backbone_weights(restored), saved):
        np.testing.assert_array_equal(ours, theirs)
    assert not np.array_equal(restored.get_layer("classifier").kernel.numpy(),
                              model.get_layer("classifier").kernel.numpy())  # the classifier starts anew


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras, while it finds the mismatch
def test_bad_weight_files_raise_errors_naming_the_file(tmp_path):
    with pytest.raises(WeightsFileError, match="nowhere.h5 does not exist"):
        drn.drn26(CLASSES, weights=str(tmp_path / "nowhere.h5"))
    other = str(tmp_path / "other.weights.h5")
    keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(2, 3)]).save_weights(other)
    with pytest.raises(WeightsFileError, match="other.weights.h5 does not hold the weights of DRN-C-26's backbone"):
        drn.drn26(CLASSES, weights=other)
    garbage = tmp_path / "garbage.weights.h5"
    garbage.write_bytes(b"not hdf5")
    with pytest.raises(WeightsFileError, match="garbage.weights.h5"):
        drn.drn26(CLASSES, weights=str(garbage))
