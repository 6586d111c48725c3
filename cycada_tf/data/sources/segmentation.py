"""What every segmentation source shares: image/label pairs, PNG checks, id -> train id maps, resizing.

A source module (gta5, cityscapes, synthia) only knows its layout and its label ids: `layout(raw_dir)` pairs
each image with its label file, `read_label(path)` gives the raw ids and `TRAIN_IDS` maps them. This module
checks every pair's headers (PNG signature, size, bit depth) before anything is written, then decodes,
maps and resizes one pair at a time while the records are written (a bad file then aborts the atomic write,
so nothing partial is left). Every PNG's chunk CRCs and zlib stream are checked before it is decoded (png.py).
A label whose size differs from its image's (a few of GTA5's) is left out and reported, or, with
MISMATCHED_LABELS "resize", resized to its image's size by nearest neighbour (ids never blended).
"""

import collections
import dataclasses
import hashlib
import io
import os
import struct

import numpy as np
from PIL import Image

from cycada_tf.data import png, schema
from cycada_tf.data.tfrecord import DataError

PAPER_WIDTH = 1024  # "All images were resized to have width of 1024 pixels while keeping the aspect ratio" (6.1.2)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}
CHECKSUM_PROGRESS_EVERY = 2000  # files between two progress lines while checksumming
MISMATCHED_LABELS = ("skip", "resize")  # what becomes of a pair whose label is not the size of its image


@dataclasses.dataclass(frozen=True)
class Pair:
    key: str              # the image's path relative to raw_dir: the record's key
    image: str            # absolute paths; label None for image-only splits (Cityscapes train_extra)
    label: str = None
    resize_label: bool = False  # its label differs in size from the image: resized to it (MISMATCHED_LABELS)


@dataclasses.dataclass
class Layout:
    splits: dict          # {split: [Pair]} in a fixed order
    skipped: list = dataclasses.field(default_factory=list)  # "path: why" of files left out (reported)
    mismatched: list = dataclasses.field(default_factory=list)  # "label: sizes" of mis-sized pairs (reported)


def lookup_table(mapping, size=256):
    """{raw id: train id} -> an array indexed by raw id; ids not in the mapping give schema.IGNORE_LABEL."""
    table = np.full(size, schema.IGNORE_LABEL, np.uint8)
    for raw_id, train_id in mapping.items():
        table[raw_id] = train_id
    return table


def png_header(path):
    """(width, height, bit depth, colour type) from a PNG's IHDR chunk; DataError if not a PNG."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(33)
    except OSError as error:
        raise DataError(f"{path}: unreadable ({error})") from None
    if head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR" or len(head) < 26:
        raise DataError(f"{path}: not a PNG file (bad signature or header); download or extract it again")
    width, height, depth, color = struct.unpack(">IIBB", head[16:26])
    return width, height, depth, color


def check_pair(pair, label_depths=(8,), label_colors=(0, 3)):
    """Check the headers of an image and its label: PNGs of the same size, label of the expected kind."""
    width, height, depth, color = png_header(pair.image)
    if depth != 8 or color not in (0, 2, 3, 4, 6):
        raise DataError(f"{pair.image}: a {depth}-bit {PNG_COLOR_TYPES.get(color, color)} PNG; expected an "
                        "8-bit colour image")
    if pair.label is None:
        return
    l_width, l_height, l_depth, l_color = png_header(pair.label)
    if (l_width, l_height) != (width, height) and not pair.resize_label:
        raise DataError(size_mismatch(pair) + "; image and label must be the same size")
    if l_depth not in label_depths or l_color not in label_colors:
        raise DataError(f"{pair.label}: a {l_depth}-bit {PNG_COLOR_TYPES.get(l_color, l_color)} PNG; expected "
                        f"a {' or '.join(map(str, label_depths))}-bit "
                        f"{' or '.join(PNG_COLOR_TYPES[c] for c in label_colors)} label PNG of class ids")


def size_mismatch(pair):
    """None if the pair's label is the size of its image, else "<label>: label is WxH but its image ..."."""
    width, height, _, _ = png_header(pair.image)
    l_width, l_height, _, _ = png_header(pair.label)
    if (l_width, l_height) == (width, height):
        return None
    return f"{pair.label}: label is {l_width}x{l_height} but its image {pair.image} is {width}x{height}"


def separate_mismatched(layout, policy="skip"):
    """Apply `policy` (MISMATCHED_LABELS) to every pair whose label differs in size from its image: "skip"
    leaves it out, "resize" marks it to be resized; either way it is listed in layout.mismatched."""
    for split, pairs in layout.splits.items():
        kept = []
        for pair in pairs:
            problem = size_mismatch(pair) if pair.label is not None else None
            if problem is not None:
                layout.mismatched.append(problem)
                if policy == "skip":
                    continue
                pair = dataclasses.replace(pair, resize_label=True)
            kept.append(pair)
        layout.splits[split] = kept
    return layout


def _read_checked(path):
    """The bytes of a PNG whose chunk CRCs and zlib stream are intact (png.check), else DataError."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise DataError(f"{path}: unreadable ({error})") from None
    png.check(data, path)
    return data


def _open(path):
    """A fully decoded PIL image, or DataError naming the file (truncated or damaged PNG)."""
    data = _read_checked(path)
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
        return image
    except Exception as error:  # PIL raises OSError, SyntaxError, ValueError... on damaged files
        raise DataError(f"{path}: unreadable or truncated PNG ({type(error).__name__}: {error}); "
                        "download or extract it again") from None


def read_rgb(path):
    """uint8 (H, W, 3) of an image file."""
    return np.asarray(_open(path).convert("RGB"))


def read_index_png(path):
    """The stored values of an 8-bit grey or palette PNG (palette indices, not colours), uint8 (H, W)."""
    image = _open(path)
    if image.mode not in ("L", "P"):
        raise DataError(f"{path}: PNG of mode {image.mode}; expected one channel of label ids (grey or "
                        "palette), not a colour rendering of the labels")
    return np.asarray(image)


def read_first_channel_16bit(path):
    """Channel 0 of a 16- or 8-bit PNG as uint16 (H, W). PIL reduces 16-bit RGB to 8 bits, so TF decodes."""
    import tensorflow as tf
    _, _, depth, _ = png_header(path)
    data = _read_checked(path)
    try:
        values = tf.io.decode_png(data, channels=0, dtype=tf.uint16 if depth == 16 else tf.uint8).numpy()
    except (OSError, tf.errors.InvalidArgumentError) as error:
        message = getattr(error, "message", str(error)).splitlines()[0]
        raise DataError(f"{path}: unreadable or truncated PNG ({message}); download or extract it "
                        "again") from None
    return values[..., 0].astype(np.uint16)


def to_train_ids(raw_ids, table, path):
    """Raw label ids -> uint8 train ids through `table`; an id beyond the table is a wrong label file."""
    top = int(raw_ids.max()) if raw_ids.size else 0
    if top >= len(table):
        raise DataError(f"{path}: label id {top} is outside this dataset's id table (0..{len(table) - 1}); "
                        "is it the right label file?")
    return table[raw_ids]


def resized_size(width, height, target_width):
    """(width, height) scaled to target_width, aspect kept; target_width 0 or None keeps the size."""
    if not target_width:
        return width, height
    return target_width, max(1, int(round(height * target_width / width)))


def resize_pair(image, label, target_width):
    """Image bilinear, label (train ids) nearest, to target_width; labels never get blended ids."""
    height, width = image.shape[:2]
    size = resized_size(width, height, target_width)
    if size == (width, height):
        return image, label
    image = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
    if label is not None:
        label = np.asarray(Image.fromarray(label).resize(size, Image.NEAREST))
    return image, label


def check(layout, label_depths=(8,), label_colors=(0, 3)):
    """Every pair's headers, before anything is written; DataError naming the first bad file."""
    for pairs in layout.splits.values():
        for pair in pairs:
            check_pair(pair, label_depths, label_colors)


def fingerprint(source, layout, width, say=print):
    """What the manifest records: per split, a SHA-256 over every pair's key and file contents, the
    converter version and the width; the same files at the same width make the same inputs (a no-op)."""
    inputs, done = {}, 0
    for split, pairs in layout.splits.items():
        digest = hashlib.sha256()
        for pair in pairs:
            digest.update(pair.key.encode() + b"\0")
            for path in (pair.image, pair.label):
                if path is not None:
                    digest.update(_sha256_bytes(path))
            done += 1
            if done % CHECKSUM_PROGRESS_EVERY == 0:
                say(f"  checksummed {done} pairs")
        inputs[split] = f"{len(pairs)} pairs, sha256 {digest.hexdigest()}"
    inputs["converter"] = f"{source.__name__.rsplit('.', 1)[-1]}-v{source.VERSION}-width{width or 'native'}"
    return inputs


def _sha256_bytes(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.digest()


def _records(source, pairs, width):
    for pair in pairs:
        image = read_rgb(pair.image)
        label = None
        if pair.label is not None:
            label = to_train_ids(source.read_label(pair.label), source.TRAIN_IDS, pair.label)
            if pair.resize_label:
                label = np.asarray(Image.fromarray(label).resize(image.shape[1::-1], Image.NEAREST))
            if label.shape != image.shape[:2]:  # headers agreed; the decoded data did not
                raise DataError(f"{pair.label}: decoded label is {label.shape[1]}x{label.shape[0]}, its "
                                f"image {pair.image} {image.shape[1]}x{image.shape[0]}")
        image, label = resize_pair(image, label, width)
        yield schema.make_example(image, label_map=label, key=pair.key)


def examples(source, layout, width):
    """{split: generator of tf.train.Example} (image RGB uint8, label map of train ids uint8)."""
    return {split: _records(source, pairs, width) for split, pairs in layout.splits.items()}


def sorted_files(directory, suffix):
    """{name: path} of the files ending in suffix below directory (recursively), sorted by name."""
    found = {}
    for root, dirs, names in os.walk(directory):
        dirs.sort()
        for name in names:
            if name.endswith(suffix):
                found[os.path.relpath(os.path.join(root, name), directory)] = os.path.join(root, name)
    return collections.OrderedDict(sorted(found.items()))


def require_dir(path, what, command_hint=""):
    if not os.path.isdir(path):
        raise DataError(f"{path}: missing ({what}). {command_hint}".strip())
    return path
