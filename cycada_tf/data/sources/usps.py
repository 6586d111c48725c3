"""USPS from `zip.train.gz`/`zip.test.gz` (ESL text format) or `usps.h5` -> validated uint8 arrays, records.

Both layouts hold the same 7,291 training and 2,007 test digits, 16x16 grey. Stored white digit on black,
0..255, like MNIST: the text files give -1 for background and 1 for ink, the h5 file 0 and 1.
"""

import gzip
import io
import os
import zlib

import numpy as np

from cycada_tf.data import schema
from cycada_tf.data.tfrecord import DataError

VERSION = "1"  # bump when the conversion changes: prepared copies are then rebuilt
SIDE = 16
NUM_CLASSES = 10
SPLITS = ("train", "test")
TEXT_FILES = {split: f"zip.{split}" for split in SPLITS}  # each with or without ".gz"
H5_FILE = "usps.h5"


def _find_text(raw_dir, stem):
    for name in (stem + ".gz", stem):
        if os.path.isfile(os.path.join(raw_dir, name)):
            return os.path.join(raw_dir, name)
    return None


def input_files(raw_dir):
    """{file name: path} of the layout used: both text files if present, else usps.h5."""
    text = {split: _find_text(raw_dir, stem) for split, stem in TEXT_FILES.items()}
    if all(text.values()):
        return {os.path.basename(path): path for path in text.values()}
    h5 = os.path.join(raw_dir, H5_FILE)
    if os.path.isfile(h5):
        return {H5_FILE: h5}
    found = [os.path.basename(p) for p in text.values() if p]
    raise DataError(f"{raw_dir}: no USPS files. It needs zip.train.gz and zip.test.gz, or {H5_FILE}"
                    + (f" (found only {', '.join(found)})" if found else ""))


def _check_labels(path, labels, places):
    """Float labels -> int64, each an integer 0-9; `places` names each row for the error message."""
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES) | (labels != np.round(labels)))
    if bad.size:
        raise DataError(f"{path}: label {labels[bad[0]]:g} at {places[bad[0]]} is not a digit 0-9")
    return labels.astype(np.int64)


def _to_uint8(values, low, path, places):
    """Grey values in [low, 1] (background low) -> uint8 with background 0 and ink 255."""
    bad = np.flatnonzero(~np.all((values >= low - 1e-6) & (values <= 1 + 1e-6), axis=1))
    if bad.size:
        raise DataError(f"{path}: pixel values outside [{low:g}, 1] at {places[bad[0]]}")
    scaled = (values - low) / (1.0 - low) * 255.0
    return np.clip(np.round(scaled), 0, 255).astype(np.uint8).reshape(-1, SIDE, SIDE)


def read_text(path):
    """One ESL file: a line per digit, label as a float then 256 values in [-1, 1], row-major 16x16.

    Returns (images uint8 (N, 16, 16), labels int64 (N,), line numbers as keys).
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        text = data.decode("ascii")
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as error:
        raise DataError(f"{path}: unreadable or truncated ({error}); download it again") from None
    rows, line_numbers = [], []
    for number, line in enumerate(io.StringIO(text), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 1 + SIDE * SIDE:
            raise DataError(f"{path}: line {number} has {len(fields)} values, expected {1 + SIDE * SIDE} "
                            "(a label and 16x16 grey values)")
        try:
            rows.append(np.array(fields, np.float64))
        except ValueError:
            raise DataError(f"{path}: line {number} holds something that is not a number") from None
        line_numbers.append(number)
    if not rows:
        raise DataError(f"{path}: no digits in the file")
    rows = np.stack(rows)
    places = [f"line {n}" for n in line_numbers]
    labels = _check_labels(path, rows[:, 0], places)
    return _to_uint8(rows[:, 1:], -1.0, path, places), labels, [str(n) for n in line_numbers]


def read_h5(path):
    """usps.h5: groups train/test, each with data (N, 256) in [0, 1] and target (N,)."""
    import h5py
    out = {}
    try:
        with h5py.File(path, "r") as handle:
            for split in SPLITS:
                if split not in handle or "data" not in handle[split] or "target" not in handle[split]:
                    raise DataError(f"{path}: no '{split}/data' and '{split}/target' datasets")
                data = np.asarray(handle[split]["data"][()], np.float64)
                target = np.asarray(handle[split]["target"][()]).reshape(-1)
                if data.ndim != 2 or data.shape[1] != SIDE * SIDE:
                    raise DataError(f"{path}: '{split}/data' has shape {data.shape}, expected (N, 256)")
                if len(target) != len(data):
                    raise DataError(f"{path}: '{split}/target' has {len(target)} labels "
                                    f"for {len(data)} images")
                places = [f"{split}[{i}]" for i in range(len(data))]
                labels = _check_labels(path, target.astype(np.float64), places)
                out[split] = (_to_uint8(data, 0.0, path, places), labels, places)
    except (OSError, KeyError, TypeError, ValueError) as error:
        raise DataError(f"{path}: not a readable HDF5 file ({error})") from None
    return out


def read(raw_dir):
    """{split: (images uint8 (N, 16, 16), labels int64 (N,), keys)}, every file read and checked first."""
    files = input_files(raw_dir)
    if H5_FILE in files:
        return {split: (images, labels, [f"{H5_FILE}:{k}" for k in keys])
                for split, (images, labels, keys) in read_h5(files[H5_FILE]).items()}
    out = {}
    for split, stem in TEXT_FILES.items():
        path = _find_text(raw_dir, stem)
        images, labels, keys = read_text(path)
        out[split] = (images, labels, [f"{os.path.basename(path)}:{k}" for k in keys])
    return out


def _records(images, labels, keys):
    for image, label, key in zip(images, labels, keys):
        yield schema.make_example(image, label, key=key)


def examples(raw_dir):
    """{split: generator of tf.train.Example}."""
    return {split: _records(*arrays) for split, arrays in read(raw_dir).items()}
