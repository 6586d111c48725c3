"""DRN-C-26's ImageNet weights (Yu et al. 2017), as fyu/drn publishes them (a PyTorch state dict), mapped onto
models/drn.py: which parameter each layer takes, and where the checkpoint and its Keras conversion are found.

The checkpoint's names are those of fyu/drn's DRN(BasicBlock, [1, 1, 2, 2, 2, 2, 1, 1], arch='C'): conv1/bn1
(the stem), layer<L>.<i>.conv1/bn1/conv2/bn2 and layer<L>.<i>.downsample.0/.1 (the 1x1 projection and its
batch norm) for block i of level L, fc (the ImageNet classifier, which DRNSeg drops; so is it here). A conv's
weight is (out, in, h, w), a Keras kernel (h, w, in, out); a batch norm's weight, bias, running_mean and
running_var are Keras' gamma, beta, moving_mean and moving_variance (num_batches_tracked has no Keras
counterpart: Keras' moving averages use a fixed momentum, as PyTorch's do unless momentum=None)."""

import os
import re

import keras
import numpy as np

from cycada_tf.models import pretrained, torch_checkpoint

CHECKPOINT_FILE = "drn_c_26-ddedf421.pth"
CHECKPOINT_URL = "http://dl.yf.io/drn/" + CHECKPOINT_FILE  # fyu/drn, drn.py model_urls["drn-c-26"]
CONVERTED_FILE = "drn_c_26_imagenet.weights.h5"            # tools/convert_drn.py's output, in Keras' cache
CLASSIFIER = ("fc.weight", "fc.bias")                      # ImageNet's 1000 classes: not part of the backbone
BN_PARAMETERS = ("weight", "bias", "running_mean", "running_var")  # in the order of Keras' BN weights
_LEVEL_LAYER = re.compile(r"level(\d+)_block(\d+)_(conv1|conv2|downsample)(_bn)?")


def torch_prefix(layer):
    """The checkpoint's name (without .weight) of one Conv2D or BatchNormalization of drn.drn26_backbone."""
    if layer in ("stem", "stem_bn"):
        return "bn1" if layer == "stem_bn" else "conv1"
    match = _LEVEL_LAYER.fullmatch(layer)
    if match is None:
        raise ValueError(f"{layer} is no layer of DRN-C-26's backbone")
    level, block, conv, bn = match.groups()
    prefix = f"layer{level}.{int(block) - 1}."
    if conv == "downsample":
        return prefix + ("downsample.1" if bn else "downsample.0")
    return prefix + (conv.replace("conv", "bn") if bn else conv)


def assign(backbone, state, path, name="drn26"):
    """Set every conv and batch norm of `backbone` (drn.drn26_backbone) from `state` ({name: array} of the
    checkpoint at `path`, PyTorch's names and layouts). Returns the checkpoint's names left unused (the ImageNet
    classifier, num_batches_tracked). WeightsFileError naming `path` if a parameter is missing, has another
    shape, or the checkpoint has parameters DRN-C-26 has not."""
    def take(key, shape):
        if key not in state:
            hint = " (its layer0.* is DRN-D's stem: DRN-C-26 is needed)" if "layer0.0.weight" in state else ""
            raise pretrained.WeightsFileError(f"{name}: {path} is not a DRN-C-26 checkpoint: it has no {key}{hint}")
        value = np.asarray(state[key], "float32")
        if value.shape != tuple(shape):
            raise pretrained.WeightsFileError(f"{name}: {path} is not a DRN-C-26 checkpoint: its {key} is "
                                              f"{value.shape}, DRN-C-26's {tuple(shape)}")
        used.add(key)
        return value

    used = set()
    for layer in backbone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kernel = layer.kernel.shape  # (h, w, in, out) <- (out, in, h, w)
            weight = take(f"{torch_prefix(layer.name)}.weight", (kernel[3], kernel[2], kernel[0], kernel[1]))
            layer.set_weights([weight.transpose(2, 3, 1, 0)])
        elif isinstance(layer, keras.layers.BatchNormalization):
            prefix = torch_prefix(layer.name)
            layer.set_weights([take(f"{prefix}.{p}", layer.gamma.shape) for p in BN_PARAMETERS])
    unused = [key for key in state if key not in used]
    foreign = [key for key in unused if key not in CLASSIFIER and not key.endswith(".num_batches_tracked")]
    if foreign:
        raise pretrained.WeightsFileError(f"{name}: {path} is not a DRN-C-26 checkpoint: it has {len(foreign)} "
                                          f"parameters DRN-C-26 has not (the first: {foreign[0]})")
    return unused


def weights_file(weights, name="drn26"):
    """The file drn.drn26's `weights` stand for (None for None): for "imagenet" the converted file in Keras'
    cache, else the official checkpoint there; a path as it is. WeightsFileError naming the file(s) looked
    for, and how to get them, when there is none."""
    if weights is None:
        return None
    if weights != "imagenet":
        return pretrained.check_file(weights, "weights file", name)
    cache = pretrained.keras_cache_dir()
    for candidate in (CONVERTED_FILE, CHECKPOINT_FILE):
        if os.path.isfile(os.path.join(cache, candidate)):
            return os.path.join(cache, candidate)
    raise pretrained.WeightsFileError(
        f"{name}: DRN-C-26's ImageNet weights {os.path.join(cache, CONVERTED_FILE)} are not there (nor "
        f"{CHECKPOINT_FILE} beside them); download {CHECKPOINT_URL} and convert it once: "
        f"python tools/convert_drn.py {CHECKPOINT_FILE}")


def load(backbone, path, name="drn26"):
    """Load `path` into `backbone` (drn.drn26_backbone): an official PyTorch checkpoint (.pth, by assign), else
    a Keras weights file of the backbone or of a whole drn26. WeightsFileError naming `path` otherwise."""
    if path.endswith((".pth", ".pt")):
        try:
            state = torch_checkpoint.load_state_dict(path)
        except torch_checkpoint.CheckpointError as error:
            raise pretrained.WeightsFileError(f"{name}: {error}") from None
        assign(backbone, state, path, name)
        return
    try:
        backbone.load_weights(path)
    except Exception as error:  # Keras says ValueError for a mismatch, OSError for a file that is no HDF5
        raise pretrained.WeightsFileError(f"{name}: {path} does not hold the weights of DRN-C-26's backbone "
                                          f"({type(error).__name__}: {(str(error).splitlines() or [''])[0]})") from None
