"""MNIST from its official IDX files (gzipped or not) -> validated uint8 arrays and records."""

import gzip
import os
import struct
import zlib

import numpy as np

from cycada_tf.data import limits, schema
from cycada_tf.data.tfrecord import DataError

VERSION = "1"  # bump when the conversion changes: prepared copies are then rebuilt
IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801
SIDE = 28
NUM_CLASSES = 10
FILES = {  # split -> (images, labels), the names LeCun's site uses, each with or without ".gz"
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find(raw_dir, stem):
    """The official file, gzipped (as downloaded) or not; DataError listing both names when absent."""
    for name in (stem + ".gz", stem):
        path = os.path.join(raw_dir, name)
        if os.path.isfile(path):
            return path
    raise DataError(f"{os.path.join(raw_dir, stem)}(.gz): missing. MNIST needs "
                    + ", ".join(f"{s}(.gz)" for pair in FILES.values() for s in pair) + f" in {raw_dir}")


def input_files(raw_dir):
    """{file name: path} of the official files found in raw_dir, in a fixed order."""
    paths = [_find(raw_dir, stem) for pair in FILES.values() for stem in pair]
    return {os.path.basename(path): path for path in paths}


def read_idx(path, magic, dims):
    """An IDX file (gzipped or not) -> uint8 array of shape (count, *dims), checking magic, dims and payload
    length. The payload is read only once the count the header gives fits in what the file can hold (its size,
    or what its gzip stream can inflate to), and never past that count."""
    ndim = 1 + len(dims)
    header_size = 4 + 4 * ndim
    try:
        with open(path, "rb") as raw:
            zipped = raw.read(2) == b"\x1f\x8b"  # gzip magic, whatever the file is called
            raw.seek(0)
            size = os.fstat(raw.fileno()).st_size
            handle = gzip.GzipFile(fileobj=raw) if zipped else raw
            header = handle.read(header_size)
            if len(header) >= 4 and struct.unpack(">I", header[:4])[0] != magic:
                raise DataError(f"{path}: IDX magic number 0x{struct.unpack('>I', header[:4])[0]:08x}, expected "
                                f"0x{magic:08x} ({'images' if magic == IMAGE_MAGIC else 'labels'}); "
                                "is it the right file?")
            if len(header) < header_size:
                raise DataError(f"{path}: truncated IDX header ({len(header)} bytes); download it again")
            shape = struct.unpack(f">{ndim}I", header[4:])
            if tuple(shape[1:]) != tuple(dims):
                raise DataError(f"{path}: IDX dimensions {shape[1:]}, expected {tuple(dims)}")
            expected = int(np.prod(shape))
            room = limits.inflated_at_most(size) if zipped else size - header_size
            if expected > room:
                raise DataError(f"{path}: truncated: the header says {shape[0]} items ({expected} bytes), more "
                                f"than a {size}-byte {'gzip ' if zipped else ''}file can hold; download it again")
            payload = handle.read(expected + 1)
    except (OSError, EOFError, zlib.error) as error:
        raise DataError(f"{path}: unreadable or truncated gzip file ({error}); download it again") from None
    if len(payload) != expected:
        problem = "truncated" if len(payload) < expected else "has trailing bytes"
        held = f"{len(payload)} bytes" if len(payload) <= expected else "more"
        raise DataError(f"{path}: {problem}: the header says {shape[0]} items ({expected} bytes), "
                        f"the file holds {held}; download it again")
    return np.frombuffer(payload, np.uint8).reshape(shape)


def read_split(raw_dir, split):
    """(images uint8 (N, 28, 28), labels int64 (N,), image file name) of one split, validated."""
    images_path = _find(raw_dir, FILES[split][0])
    labels_path = _find(raw_dir, FILES[split][1])
    images = read_idx(images_path, IMAGE_MAGIC, (SIDE, SIDE))
    labels = read_idx(labels_path, LABEL_MAGIC, ())
    if len(images) != len(labels):
        raise DataError(f"{labels_path}: {len(labels)} labels for {len(images)} images in {images_path}")
    bad = np.flatnonzero(labels >= NUM_CLASSES)
    if bad.size:
        raise DataError(f"{labels_path}: label {labels[bad[0]]} at index {bad[0]} is not a digit 0-9")
    return images, labels.astype(np.int64), os.path.basename(images_path)


def read(raw_dir):
    """{split: (images, labels, file name)}; every file is read and checked before anything is written."""
    return {split: read_split(raw_dir, split) for split in FILES}


def _records(images, labels, name):
    for i, (image, label) in enumerate(zip(images, labels)):
        yield schema.make_example(image, label, key=f"{name}:{i}")


def examples(raw_dir):
    """{split: generator of tf.train.Example}, keyed "<images file>:<index>"."""
    return {split: _records(*arrays) for split, arrays in read(raw_dir).items()}
