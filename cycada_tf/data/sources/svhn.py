"""SVHN (cropped digits) from the official `*_32x32.mat` files -> validated uint8 arrays and records.

Each file is MATLAB v5 with X of shape (32, 32, 3, N) uint8, image index last, and y of shape (N, 1) with
labels 1..10 where 10 means the digit 0. Labels and headers of every file are checked before any record is
written; the images of one split are loaded only while that split is written (`extra` alone is 1.3 GB).
"""

import os
import struct
import zlib

import numpy as np

from cycada_tf.data import limits, schema
from cycada_tf.data.tfrecord import DataError

VERSION = "1"  # bump when the conversion changes: prepared copies are then rebuilt
IMAGE_SHAPE = (32, 32, 3)
FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
OPTIONAL_FILES = {"extra": "extra_32x32.mat"}
ZERO_LABEL = 10  # SVHN's label for the digit 0
# MATLAB v5: a 128-byte header, then elements, each a tag (type, byte count) and its data; a variable is an
# miMATRIX element (its parts: flags, dimensions, name, values), stored as is or inside an miCOMPRESSED one.
MAT_HEADER, MI_MATRIX, MI_COMPRESSED = 128, 14, 15
TAGS_BYTES = 4096  # enough of a variable for the tags of its parts (its values' tag among them)


def input_files(raw_dir):
    """{file name: path}: train and test (required) and extra (when present)."""
    found = [name for name in (*FILES.values(), *OPTIONAL_FILES.values())
             if os.path.isfile(os.path.join(raw_dir, name))]
    missing = [name for name in FILES.values() if name not in found]
    if missing:
        raise DataError(f"{os.path.join(raw_dir, missing[0])}: missing. SVHN needs "
                        f"{' and '.join(FILES.values())} (and optionally {OPTIONAL_FILES['extra']}) "
                        f"in {raw_dir}")
    return {name: os.path.join(raw_dir, name) for name in found}


def _loadmat(path, names):
    import scipy.io
    try:
        return scipy.io.loadmat(path, variable_names=names)
    except NotImplementedError:  # scipy's answer to MATLAB v7.3 (HDF5) files
        raise DataError(f"{path}: a MATLAB v7.3 file; the official SVHN files are MATLAB v5") from None
    except Exception as error:  # scipy raises ValueError, TypeError, OSError... on damaged files
        raise DataError(f"{path}: unreadable .mat file ({type(error).__name__}: {error}); "
                        "download it again") from None


def check_sizes(path):
    """DataError naming `path` unless every element of a MATLAB v5 file, and every part of each variable,
    says a size its file can hold: scipy allocates what a tag says before it reads (a 220-byte file could ask
    for gigabytes). A compressed variable is checked against what its deflate stream can inflate to."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        header = handle.read(MAT_HEADER)
        if len(header) < MAT_HEADER:
            return  # not a MATLAB v5 file: scipy names it
        endian = "<" if header[-2:] == b"IM" else ">"
        position = MAT_HEADER
        while position + 8 <= size:
            handle.seek(position)
            kind, count = struct.unpack(endian + "II", handle.read(8))
            if kind >> 16:  # a small element: its data is in its tag
                position += 8
                continue
            if position + 8 + count > size:
                raise DataError(f"{path}: unreadable .mat file, truncated (its element at byte {position} says "
                                f"{count} bytes, past the end of the {size}-byte file); download it again")
            if kind == MI_COMPRESSED:
                inner = zlib.decompressobj().decompress(handle.read(min(count, 1 << 16)), TAGS_BYTES)
                _check_matrix(inner, limits.inflated_at_most(count), endian, path, position)
                position += 8 + count
            else:
                handle.seek(position)
                _check_matrix(handle.read(TAGS_BYTES), 8 + count, endian, path, position)
                position += 8 + count + (-count % 8)


def _check_matrix(data, room, endian, path, position):
    """The tags at the start of a variable (`data`: its miMATRIX tag, then its parts: flags, dimensions, name,
    values) each within the variable, and the variable within `room` bytes."""
    if len(data) < 8:
        return
    kind, count = struct.unpack(endian + "II", data[:8])
    if kind != MI_MATRIX:
        return
    if 8 + count > room:
        raise DataError(f"{path}: the variable at byte {position} says {count} bytes, more than its file can "
                        f"hold; download it again")
    part = 8
    while part + 8 <= min(len(data), 8 + count):
        kind, size = struct.unpack(endian + "II", data[part:part + 8])
        if kind >> 16:
            part += 8
            continue
        if part + 8 + size > 8 + count:
            raise DataError(f"{path}: a part of the variable at byte {position} says {size} bytes, more than "
                            f"the variable's {count}; download it again")
        part += 8 + size + (-size % 8)


def _header(path):
    """{variable: (shape, class)} from the .mat header, without loading the data."""
    import scipy.io
    check_sizes(path)
    try:
        return {name: (tuple(shape), kind) for name, shape, kind in scipy.io.whosmat(path)}
    except NotImplementedError:
        raise DataError(f"{path}: a MATLAB v7.3 file; the official SVHN files are MATLAB v5") from None
    except Exception as error:
        raise DataError(f"{path}: unreadable .mat file ({type(error).__name__}: {error}); "
                        "download it again") from None


def read_labels(path):
    """Check a file's header and labels; returns labels int64 (N,) with 10 mapped to 0."""
    header = _header(path)
    for name in ("X", "y"):
        if name not in header:
            raise DataError(f"{path}: no variable '{name}' (it has {sorted(header) or 'none'}): not an "
                            "SVHN *_32x32.mat file, or a truncated one; download it again")
    shape, kind = header["X"]
    if len(shape) != 4 or shape[:3] != IMAGE_SHAPE:
        raise DataError(f"{path}: X has shape {shape}, expected (32, 32, 3, N)")
    if kind != "uint8":
        raise DataError(f"{path}: X holds {kind} values, expected uint8 as in the official files")
    if int(np.prod(shape)) > limits.inflated_at_most(os.path.getsize(path)):
        raise DataError(f"{path}: X says {shape[3]} images, more than a {os.path.getsize(path)}-byte file can "
                        "hold; download it again")
    y = _loadmat(path, ["y"]).get("y")
    if y is None or y.shape not in ((shape[3], 1), (shape[3],)):
        raise DataError(f"{path}: y has shape {None if y is None else y.shape}, expected ({shape[3]}, 1) "
                        "to match X")
    y = y.reshape(-1)
    bad = np.flatnonzero((y < 1) | (y > ZERO_LABEL) | (y != np.round(y)))
    if bad.size:
        raise DataError(f"{path}: label {y[bad[0]]} at index {bad[0]} is outside 1..10")
    y = y.astype(np.int64)
    return np.where(y == ZERO_LABEL, 0, y)


def read_images(path, count):
    """X of one file -> uint8 (N, 32, 32, 3), image index first."""
    x = _loadmat(path, ["X"]).get("X")
    if x is None or x.shape != IMAGE_SHAPE + (count,):
        raise DataError(f"{path}: X has shape {None if x is None else x.shape}, "
                        f"expected {IMAGE_SHAPE + (count,)}")
    if x.dtype != np.uint8:
        raise DataError(f"{path}: X holds {x.dtype} values, expected uint8 as in the official files")
    return np.moveaxis(x, 3, 0)  # (H, W, C, N) -> (N, H, W, C); no transpose of H and W


def _records(path, labels):
    name = os.path.basename(path)
    images = read_images(path, len(labels))
    for i, (image, label) in enumerate(zip(images, labels)):
        yield schema.make_example(np.ascontiguousarray(image), label, key=f"{name}:{i}")


def examples(raw_dir):
    """{split: generator of tf.train.Example}, keyed "<file>:<index>"; all labels checked up front."""
    files = {**FILES, **OPTIONAL_FILES}
    paths = input_files(raw_dir)
    labels = {split: read_labels(paths[name]) for split, name in files.items() if name in paths}
    return {split: _records(paths[files[split]], split_labels) for split, split_labels in labels.items()}
