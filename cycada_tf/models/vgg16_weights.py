"""Keras' VGG16 weights files read for FCN8s: the 13 convolutions as they are, and the fully connected fc1 and
fc2 as the convolutions fc6 (7x7) and fc7 (1x1), as FCN does (Long et al. 2015, section 3.1)."""

import h5py
import numpy as np

from cycada_tf.models.pretrained import WeightsFileError, check_file

VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (filters, convs) of block1..block5
CONVS = tuple(f"block{block}_conv{conv}" for block, (_, convs) in enumerate(VGG16_BLOCKS, start=1)
              for conv in range(1, convs + 1))
POOL5 = (7, 7, 512)  # pool5 of VGG16's 224x224 input: the map fc1 reads, flattened
FC_WIDTH = 4096      # fc1/fc2 of VGG16
FC_AS_CONV = {"fc6": ("fc1", POOL5), "fc7": ("fc2", (1, 1, FC_WIDTH))}  # FCN's layer: (VGG16's, what it reads)


def vgg16_shapes():
    """{layer: [kernel shape, bias shape]} of keras.applications.VGG16 with its top, less its 1000 classes."""
    shapes, channels = {}, 3
    for block, (filters, convs) in enumerate(VGG16_BLOCKS, start=1):
        for conv in range(1, convs + 1):
            shapes[f"block{block}_conv{conv}"] = [(3, 3, channels, filters), (filters,)]
            channels = filters
    shapes["fc1"] = [(int(np.prod(POOL5)), FC_WIDTH), (FC_WIDTH,)]
    shapes["fc2"] = [(FC_WIDTH, FC_WIDTH), (FC_WIDTH,)]
    return shapes


def fc_as_conv(kernel, bias, reads):
    """A Dense layer's [kernel (inputs, units), bias] on a flattened (h, w, c) map -> the [kernel (h, w, c,
    units), bias] of the "valid" convolution that computes it at each position. keras' Flatten of a channels-last
    map puts input (i, j, k) at row (i * w + j) * c + k, which is numpy's C order: a reshape."""
    return [np.reshape(kernel, tuple(reads) + (kernel.shape[-1],)), bias]


def _layers_in(handle):
    """{layer name: h5py group of its weights, in order} of a Keras weights file: the Keras 2 HDF5 layout of the
    official downloads (attribute layer_names, a group per layer with attribute weight_names) or a Keras 3
    .weights.h5 (layers/<key>/vars/<i>, the layer's name in the vars group's attribute "name")."""
    def text(value):
        return value.decode() if isinstance(value, bytes) else str(value)

    if "model_weights" in handle:  # a whole model saved by Keras 2's model.save
        handle = handle["model_weights"]
    if "layer_names" in handle.attrs:
        found = {}
        for layer in map(text, handle.attrs["layer_names"]):
            group = handle[layer]
            found[layer] = [group[text(weight)] for weight in group.attrs.get("weight_names", [])]
        return found
    found = {}
    for group in handle.get("layers", {}).values():
        variables = group.get("vars")
        if variables is not None and "name" in variables.attrs:
            found[text(variables.attrs["name"])] = [variables[str(i)] for i in range(len(variables))]
    return found


def read(path, name="fcn8s"):
    """{layer: [kernel, bias]} of FCN8s read from a keras.applications.VGG16 weights file (either layout, with
    or without its top): the 13 convolutions, and fc6/fc7 made of fc1/fc2 when the file has them (a file of
    VGG16(include_top=False) has not). Layers are matched by name; a file that is not such a VGG16's raises
    WeightsFileError naming it."""
    check_file(path, "VGG16 weights file", name)
    expected = vgg16_shapes()
    try:
        with h5py.File(path, "r") as handle:
            stored = _layers_in(handle)
            missing = [layer for layer in CONVS if layer not in stored]
            if missing:
                raise WeightsFileError(f"{name}: {path} is not a keras.applications.VGG16 weights file (it has no "
                                       f"layer {missing[0]})")
            weights = {layer: [np.asarray(w[()]) for w in stored[layer]] for layer in expected if layer in stored}
    except OSError as error:
        raise WeightsFileError(f"{name}: {path} is not a Keras weights file (HDF5): {error}") from None
    for layer, values in weights.items():
        if [tuple(np.shape(v)) for v in values] != expected[layer]:
            raise WeightsFileError(f"{name}: {path} is not a keras.applications.VGG16 weights file: its {layer} "
                                   f"holds {[tuple(np.shape(v)) for v in values]}, VGG16's {expected[layer]}")
    backbone = {layer: weights[layer] for layer in CONVS}
    for fcn_layer, (vgg_layer, reads) in FC_AS_CONV.items():
        if vgg_layer in weights:
            backbone[fcn_layer] = fc_as_conv(*weights[vgg_layer], reads)
    return backbone
