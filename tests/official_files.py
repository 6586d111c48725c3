"""Tiny raw files in the official formats (MNIST IDX.gz, SVHN .mat, USPS ESL text, MNIST-M layout, BSDS500
.tgz) as bytes, for the download, preparation and MNIST-M tests. Digits are learnable: each class is a
different bright block, so a short run can score above chance."""

import gzip
import hashlib
import io
import os
import struct
import tarfile

import numpy as np
from PIL import Image

IMAGE_MAGIC, LABEL_MAGIC = 0x00000803, 0x00000801


def digits(count, side, seed):
    """(uint8 images (count, side, side), labels): class k is a bright bar at row band k, plus noise."""
    rng = np.random.RandomState(seed)
    labels = np.arange(count) % 10
    rng.shuffle(labels)
    images = rng.randint(0, 40, size=(count, side, side)).astype(np.uint8)
    band = side / 10.0
    for image, label in zip(images, labels):
        image[int(label * band):int((label + 1) * band) + 1, side // 4:3 * side // 4] = 255
    return images, labels.astype(np.uint8)


def idx_gz(magic, array):
    array = np.asarray(array, np.uint8)
    return gzip.compress(struct.pack(f">I{array.ndim}I", magic, *array.shape) + array.tobytes())


def mnist_files(counts=None, seed=0):
    """{file name: bytes} of the four official MNIST files."""
    counts = counts or {"train": 60, "test": 20}
    out = {}
    for k, (split, prefix) in enumerate((("train", "train"), ("test", "t10k"))):
        images, labels = digits(counts[split], 28, seed + k)
        out[f"{prefix}-images-idx3-ubyte.gz"] = idx_gz(IMAGE_MAGIC, images)
        out[f"{prefix}-labels-idx1-ubyte.gz"] = idx_gz(LABEL_MAGIC, labels)
    return out


def svhn_files(counts=None, seed=10):
    """{file name: bytes} of train_32x32.mat and test_32x32.mat (X (32, 32, 3, N), y 1..10, 10 = 0)."""
    import scipy.io
    counts = counts or {"train": 60, "test": 20}
    out = {}
    for k, split in enumerate(("train", "test")):
        images, labels = digits(counts[split], 32, seed + k)
        x = np.moveaxis(np.repeat(images[..., None], 3, axis=-1), 0, 3)
        y = np.where(labels == 0, 10, labels).reshape(-1, 1).astype(np.uint8)
        buffer = io.BytesIO()
        scipy.io.savemat(buffer, {"X": x, "y": y})
        out[f"{split}_32x32.mat"] = buffer.getvalue()
    return out


def usps_files(counts=None, seed=20):
    counts = counts or {"train": 30, "test": 10}
    out = {}
    for k, split in enumerate(("train", "test")):
        images, labels = digits(counts[split], 16, seed + k)
        lines = [" ".join([f"{label:.4f}"] + [f"{v / 127.5 - 1:.4f}" for v in image.reshape(-1)])
                 for image, label in zip(images, labels)]
        out[f"zip.{split}.gz"] = gzip.compress(("\n".join(lines) + "\n").encode())
    return out


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


BSDS_COLOURS = {"train": (200, 100, 50), "test": (0, 255, 0)}  # one flat colour per split: a known blend


def unlabelled_photos(directory, count=4, side=20, seed=0):
    """`count` random RGB PNGs of `side` x `side` pixels in `directory` (made), a folder: target without labels;
    returns the directory."""
    os.makedirs(directory)
    rng = np.random.RandomState(seed)
    for i in range(count):
        with open(os.path.join(directory, f"{i}.png"), "wb") as f:
            f.write(png_bytes(rng.randint(0, 256, (side, side, 3)).astype(np.uint8)))
    return directory


def bsds_tgz(count=3):
    """BSR_bsds500.tgz's shape: BSR/BSDS500/data/images/{train,test}/*.jpg, every photo of a split one flat
    colour (BSDS_COLOURS), so that a blend with a digit is known exactly whatever crop it takes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for split in ("train", "test"):
            for i in range(count):
                photo = np.zeros((40, 50, 3), np.uint8) + np.array(BSDS_COLOURS[split], np.uint8)
                jpg = io.BytesIO()
                Image.fromarray(photo).save(jpg, format="PNG")  # lossless, whatever the .jpg name says
                info = tarfile.TarInfo(f"BSR/BSDS500/data/images/{split}/{i:04d}.jpg")
                info.size = len(jpg.getvalue())
                archive.addfile(info, io.BytesIO(jpg.getvalue()))
    return buffer.getvalue()


def write_mnist_m_layout(root, counts=None, seed=40):
    """mnist_m_{train,test}/*.png and mnist_m_{train,test}_labels.txt under root; returns {split: labels}."""
    counts = counts or {"train": 20, "test": 10}
    out = {}
    for k, split in enumerate(("train", "test")):
        images, labels = digits(counts[split], 28, seed + k)
        os.makedirs(os.path.join(root, f"mnist_m_{split}"), exist_ok=True)
        lines = []
        for i, (image, label) in enumerate(zip(images, labels)):
            name = f"{i:08d}.png"
            rgb = np.stack([image, 255 - image, image // 2], axis=-1)
            with open(os.path.join(root, f"mnist_m_{split}", name), "wb") as handle:
                handle.write(png_bytes(rgb))
            lines.append(f"{name} {label}")
        with open(os.path.join(root, f"mnist_m_{split}_labels.txt"), "w") as handle:
            handle.write("\n".join(lines) + "\n")
        out[split] = labels
    return out


def write(directory, files):
    os.makedirs(directory, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as handle:
            handle.write(data)


def sha256sums(files):
    """The `sha256sum` lines of {file name: bytes} (what CYCADA_DATA_CHECKSUMS reads)."""
    return "".join(f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in files.items())
