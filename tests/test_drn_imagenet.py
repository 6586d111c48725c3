"""DRN-C-26's ImageNet checkpoint (models/drn_imagenet.py, tools/convert_drn.py) on a stand-in written here in
the official layout (tests/torch_files.py): fyu/drn's names and PyTorch's shapes, random weights and batch norm
statistics. After loading, every kernel is the checkpoint's tensor transposed (OIHW -> HWIO) and every batch
norm holds its weight, bias, running mean and variance; --backbone_weights=imagenet finds the converted file (or
the checkpoint) in Keras' cache, and names what it looked for when neither is there.

The stand-in is DRN-C-26 at full size (21M values, 84 MB a file): written twice, as PyTorch 2 writes it (zip,
_rebuild_tensor_v2, num_batches_tracked) and as the PyTorch 0.2 of the official release did (the older layout,
_rebuild_tensor, no num_batches_tracked)."""

import collections
import os

import numpy as np
import pytest

import keras
import torch_files
from cycada_tf.models import drn, drn_imagenet
from cycada_tf.models.pretrained import WeightsFileError
from tools import convert_drn

CLASSES = 5


def _official_state(rng, counters=True):
    """DRN(BasicBlock, [1, 1, 2, 2, 2, 2, 1, 1], arch='C').state_dict() of fyu/drn, by hand: a 1x1 projection
    (downsample.0/.1) where a level's first block changes the stride or the width; the ImageNet fc."""
    state = collections.OrderedDict()

    def conv(name, out, inp, size):
        state[f"{name}.weight"] = rng.normal(0, 0.1, (out, inp, size, size)).astype("float32")

    def bn(name, width):
        state[f"{name}.weight"] = rng.uniform(0.5, 1.5, width).astype("float32")
        state[f"{name}.bias"] = rng.normal(0, 0.1, width).astype("float32")
        state[f"{name}.running_mean"] = rng.normal(0, 0.5, width).astype("float32")
        state[f"{name}.running_var"] = rng.uniform(0.5, 2.0, width).astype("float32")
        if counters:
            state[f"{name}.num_batches_tracked"] = np.array(5005, "int64")

    conv("conv1", 16, 3, 7)
    bn("bn1", 16)
    width = 16
    for level, (blocks, channels) in enumerate(zip(drn.DRN26_BLOCKS, drn.DRN26_CHANNELS), start=1):
        for block in range(blocks):
            prefix = f"layer{level}.{block}"
            conv(f"{prefix}.conv1", channels, width, 3)
            bn(f"{prefix}.bn1", channels)
            conv(f"{prefix}.conv2", channels, channels, 3)
            bn(f"{prefix}.bn2", channels)
            if block == 0 and (level in (2, 3, 4) or width != channels):
                conv(f"{prefix}.downsample.0", channels, width, 1)
                bn(f"{prefix}.downsample.1", channels)
            width = channels
    state["fc.weight"] = rng.normal(0, 0.01, (1000, 512, 1, 1)).astype("float32")
    state["fc.bias"] = np.zeros(1000, "float32")
    return state


def _ours(prefix):
    """Our layer of an official name (less .weight/.bias/...)."""
    if prefix in ("conv1", "bn1"):
        return {"conv1": "stem", "bn1": "stem_bn"}[prefix]
    _, level, block, *rest = prefix.replace("layer", "layer.").split(".")
    ours = f"level{level}_block{int(block) + 1}_"
    if rest[0] == "downsample":
        return ours + ("downsample" if rest[1] == "0" else "downsample_bn")
    return ours + {"conv1": "conv1", "bn1": "conv1_bn", "conv2": "conv2", "bn2": "conv2_bn"}[rest[0]]


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """(state, {"zip": path, "legacy": path}): the same values in the two layouts."""
    directory = tmp_path_factory.mktemp("drn")
    state = _official_state(np.random.default_rng(0))
    old = collections.OrderedDict((name, torch_files.Tensor(value, i, rebuild="_rebuild_tensor"))
                                  for i, (name, value) in enumerate(state.items())
                                  if not name.endswith("num_batches_tracked"))
    return state, {"zip": torch_files.save(state, str(directory / "drn_c_26.pth")),
                   "legacy": torch_files.save(old, str(directory / "drn_c_26_torch0.2.pth"), "legacy")}


def _assert_backbone_is(model, state):
    """Every conv and batch norm of `model` holds the checkpoint's tensors, and every checkpoint tensor but the
    ImageNet fc and the counters is in one of them."""
    filled = set()
    for name, value in state.items():
        if name.startswith("fc.") or name.endswith("num_batches_tracked"):
            continue
        prefix, parameter = name.rsplit(".", 1)
        layer = model.get_layer(_ours(prefix))
        if isinstance(layer, keras.layers.Conv2D):
            np.testing.assert_array_equal(layer.kernel.numpy(), value.transpose(2, 3, 1, 0), err_msg=name)
        else:
            keras_name = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
                          "running_var": "moving_variance"}[parameter]
            np.testing.assert_array_equal(getattr(layer, keras_name).numpy(), value, err_msg=name)
        filled.add(layer.name)
    layers = [layer.name for layer in model.layers
              if isinstance(layer, (keras.layers.Conv2D, keras.layers.BatchNormalization))]
    assert sorted(filled) == sorted(name for name in layers if name != "classifier")


@pytest.fixture(scope="module")
def from_checkpoint(official):
    state, paths = official
    return drn.drn26(CLASSES, weights=paths["zip"])


def test_the_stand_in_has_drn_c_26s_published_size(official):
    state, _ = official
    learned = sum(v.size for name, v in state.items() if not name.endswith(("running_mean", "running_var",
                                                                           "num_batches_tracked")))
    assert round(learned / 1e6, 1) == 21.1  # Yu et al. 2017, Table 1 (DRN-C-26, with its ImageNet fc)


def test_the_official_checkpoint_loads_into_drn26_transposed(official, from_checkpoint):
    state, _ = official
    _assert_backbone_is(from_checkpoint, state)


def test_convert_drn_writes_what_imagenet_finds_in_the_cache(official, from_checkpoint, tmp_path, monkeypatch,
                                                            capsys):
    state, paths = official
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    cache = tmp_path / "keras" / "models"
    os.makedirs(cache)
    # The official checkpoint itself in the cache (the PyTorch 0.2 layout) is read as it is ...
    os.symlink(paths["legacy"], cache / drn_imagenet.CHECKPOINT_FILE)
    _assert_backbone_is(drn.drn26(CLASSES, weights="imagenet"), state)
    # ... and once converted, the Keras file is.
    assert convert_drn.main([paths["legacy"]]) == 0
    out = capsys.readouterr().out
    assert f"wrote {cache / drn_imagenet.CONVERTED_FILE}" in out and "fc.weight, fc.bias" in out
    os.remove(cache / drn_imagenet.CHECKPOINT_FILE)
    _assert_backbone_is(drn.drn26(CLASSES, weights="imagenet"), state)


def test_imagenet_without_the_files_names_them_and_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    expected = os.path.join(str(tmp_path), "models", drn_imagenet.CONVERTED_FILE)
    with pytest.raises(WeightsFileError) as raised:
        drn.drn26(CLASSES, weights="imagenet")
    message = str(raised.value)
    assert message.startswith(f"drn26: DRN-C-26's ImageNet weights {expected} are not there") and "\n" not in message
    assert drn_imagenet.CHECKPOINT_URL in message and "python tools/convert_drn.py drn_c_26-ddedf421.pth" in message


def test_checkpoints_of_other_networks_are_refused_naming_the_file(official, tmp_path):
    state, _ = official
    backbone = drn.drn26_backbone()
    drn_d = collections.OrderedDict((name.replace("conv1.", "layer0.0.", 1) if name.startswith("conv1.") else name,
                                     value) for name, value in state.items())
    with pytest.raises(WeightsFileError, match=r"d.pth is not a DRN-C-26 checkpoint: it has no conv1.weight "
                                               r"\(its layer0.\* is DRN-D's stem"):
        drn_imagenet.assign(backbone, drn_d, "d.pth")
    wrong = collections.OrderedDict(state, **{"layer3.0.conv1.weight": np.zeros((64, 32, 5, 5), "float32")})
    with pytest.raises(WeightsFileError, match=r"its layer3.0.conv1.weight is \(64, 32, 5, 5\), DRN-C-26's "
                                               r"\(64, 32, 3, 3\)"):
        drn_imagenet.assign(backbone, wrong, "wrong.pth")
    extra = collections.OrderedDict(state, **{"layer9.0.conv1.weight": np.zeros(1, "float32")})
    with pytest.raises(WeightsFileError, match="has 1 parameters DRN-C-26 has not .the first: layer9.0.conv1"):
        drn_imagenet.assign(backbone, extra, "extra.pth")


def test_convert_drn_ends_a_bad_checkpoint_with_one_line(official, tmp_path, capsys):
    _, paths = official
    garbage = tmp_path / "drn_c_26.pth"
    garbage.write_bytes(b"<html>404 Not Found</html>")
    assert convert_drn.main([str(garbage), f"--output={tmp_path / 'out.weights.h5'}"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"error: {garbage}: not a PyTorch checkpoint (neither torch.save's zip nor its older layout)"]
    # torch.hub names a checkpoint by its sha256's first hex digits: another file under that name is refused.
    misnamed = tmp_path / "drn_c_26-ddedf421.pth"
    os.symlink(paths["zip"], misnamed)
    assert convert_drn.main([str(misnamed), f"--output={tmp_path / 'out.weights.h5'}"]) == 2
    assert "its name says ddedf421: download it again" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "out.weights.h5")
