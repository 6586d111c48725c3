"""MNIST-M (Ganin & Lempitsky 2015) from its distribution layout, or built from MNIST and BSDS500 photos.

Distribution layout (mnist_m.tar.gz, in raw_dir or raw_dir/mnist_m/): mnist_m_train/*.png and
mnist_m_test/*.png, 28x28 RGB, with mnist_m_{train,test}_labels.txt holding "<file name> <label>" a line.
Build route (--build_mnist_m): each MNIST digit (the IDX files in raw_dir) blended with a random 28x28 crop
of a BSDS500 training photo, |crop - digit| per channel, as the paper describes; BSDS500 from
BSR_bsds500.tgz as distributed (read without extracting) or its extracted BSR/ tree.
"""

import io
import os
import tarfile

import numpy as np
from PIL import Image

from cycada_tf.data import schema
from cycada_tf.data.sources import embedded, mnist
from cycada_tf.data.tfrecord import DataError

VERSION = "1"  # bump when the conversion changes: prepared copies are then rebuilt
SPLITS = ("train", "test")
SIDE = 28
BUILD_SEED = 20150526  # which photo and crop each built digit gets (fixed: the build is reproducible)
BSDS_ARCHIVE = "BSR_bsds500.tgz"
BSDS_TRAIN = "BSR/BSDS500/data/images/train"  # Ganin & Lempitsky's crops come from the training photos


def _root(raw_dir):
    for candidate in (raw_dir, os.path.join(raw_dir, "mnist_m")):
        if os.path.isfile(os.path.join(candidate, "mnist_m_train_labels.txt")):
            return candidate
    return None


def has_layout(raw_dir):
    return _root(raw_dir) is not None


def _labels_file(root, split):
    return os.path.join(root, f"mnist_m_{split}_labels.txt")


def input_files(raw_dir, build=False, bsds500=None):
    """{file name: path} of what the records are made from: the label files (they name every image; replace
    the whole copy, or delete the prepared directory, after editing images), or the MNIST files and the
    BSDS500 archive."""
    if build:
        source = bsds_source(raw_dir, bsds500)
        name = os.path.basename(source) if source.endswith(".tgz") else "BSR"
        files = mnist.input_files(raw_dir)
        if os.path.isfile(source):
            files[name] = source
        return files
    root = _root(raw_dir)
    if root is None:
        raise DataError(f"{raw_dir}: no mnist_m_train_labels.txt (there or in mnist_m/). MNIST-M needs "
                        "mnist_m_train/, mnist_m_test/ and mnist_m_{train,test}_labels.txt, or --build_mnist_m "
                        f"with the MNIST files and {BSDS_ARCHIVE}")
    return {os.path.basename(_labels_file(root, s)): _labels_file(root, s) for s in SPLITS}


def read_layout(raw_dir, split):
    """[(path, label)] of one split of the distribution layout, checked: every listed file exists."""
    root = _root(raw_dir)
    path = _labels_file(root, split)
    if not os.path.isfile(path):
        raise DataError(f"{path}: missing (MNIST-M's {split} labels)")
    items = []
    with open(path) as handle:
        for number, line in enumerate(handle, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or not fields[1].isdigit() or int(fields[1]) > 9:
                raise DataError(f"{path}: line {number} is not '<file name> <digit 0-9>': {line.strip()!r}")
            image = os.path.join(root, f"mnist_m_{split}", fields[0])
            if not os.path.isfile(image):
                raise DataError(f"{image}: missing, listed on line {number} of {path}")
            items.append((image, int(fields[1])))
    if not items:
        raise DataError(f"{path}: no images listed")
    return items


def _read_png(path):
    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError... on damaged files
        raise DataError(f"{path}: unreadable image ({type(error).__name__}: {error})") from None
    if array.shape[:2] != (SIDE, SIDE):
        raise DataError(f"{path}: {array.shape[1]}x{array.shape[0]}, MNIST-M images are {SIDE}x{SIDE}")
    return array


def bsds_source(raw_dir, bsds500=None):
    """The BSDS500 archive or extracted tree: --bsds500 if given, else found in raw_dir."""
    candidates = [bsds500] if bsds500 else [os.path.join(raw_dir, BSDS_ARCHIVE), os.path.join(raw_dir, "BSR")]
    for path in candidates:
        if os.path.exists(path):
            return path
    raise DataError(f"{candidates[0]}: missing. --build_mnist_m needs BSDS500 ({BSDS_ARCHIVE}, or its "
                    f"extracted BSR/ tree) besides the MNIST files")


def bsds_photos(source):
    """The BSDS500 training photos, uint8 RGB, sorted by name (from the .tgz or the extracted tree)."""
    photos = []
    try:
        if os.path.isfile(source):
            with tarfile.open(source) as archive:
                members = sorted((m for m in archive.getmembers() if m.isfile() and m.name.endswith(".jpg")
                                  and os.path.dirname(m.name).endswith(BSDS_TRAIN)), key=lambda m: m.name)
                for member in members:
                    data = archive.extractfile(member).read()
                    photos.append(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))
        else:
            directory = os.path.join(os.path.dirname(source.rstrip(os.sep)), BSDS_TRAIN)
            for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
                if name.endswith(".jpg"):
                    with Image.open(os.path.join(directory, name)) as image:
                        photos.append(np.asarray(image.convert("RGB")))
    except (OSError, tarfile.TarError, EOFError) as error:
        raise DataError(f"{source}: unreadable BSDS500 archive or photo ({error})") from None
    photos = [p for p in photos if p.shape[0] >= SIDE and p.shape[1] >= SIDE]
    if not photos:
        raise DataError(f"{source}: no training photos under {BSDS_TRAIN}/*.jpg")
    return photos


def _layout_records(raw_dir, split):
    for path, label in read_layout(raw_dir, split):
        yield schema.make_example(_read_png(path), label, key=f"mnist_m_{split}/{os.path.basename(path)}")


def _built_records(images, labels, name, photos, seed):
    rng = np.random.RandomState(seed)
    for i, (digit, label) in enumerate(zip(images, labels)):
        yield schema.make_example(embedded.blend(digit, photos, rng), label, key=f"{name}:{i}")


def examples(raw_dir, build=False, bsds500=None):
    """{split: generator of tf.train.Example}; every label file (or MNIST file) is checked first."""
    if not build:
        for split in SPLITS:
            read_layout(raw_dir, split)
        return {split: _layout_records(raw_dir, split) for split in SPLITS}
    digits = mnist.read(raw_dir)
    photos = bsds_photos(bsds_source(raw_dir, bsds500))
    return {split: _built_records(*digits[split], photos, BUILD_SEED + k)
            for k, split in enumerate(SPLITS)}
