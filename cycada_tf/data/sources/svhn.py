"""SVHN (cropped digits) from the official `*_32x32.mat` files -> validated uint8 arrays and records.

Each file is MATLAB v5 with X of shape (32, 32, 3, N) uint8, image index last, and y of shape (N, 1) with
labels 1..10 where 10 means the digit 0. Labels and headers of every file are checked before any record is
written; the images of one split are loaded only while that split is written (`extra` alone is 1.3 GB).
"""

import os

import numpy as np

from cycada_tf.data import schema
from cycada_tf.data.tfrecord import DataError

VERSION = "1"  # bump when the conversion changes: prepared copies are then rebuilt
IMAGE_SHAPE = (32, 32, 3)
FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
OPTIONAL_FILES = {"extra": "extra_32x32.mat"}
ZERO_LABEL = 10  # SVHN's label for the digit 0


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


def _header(path):
    """{variable: (shape, class)} from the .mat header, without loading the data."""
    import scipy.io
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
