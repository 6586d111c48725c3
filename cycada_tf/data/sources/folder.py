"""`folder:<path>` datasets: a user's own images, converted once to TFRecords with a manifest.

Three layouts, told apart by what the folder holds:
  classification  train/<class>/*.{png,jpg,jpeg} and optionally test/<class>/...; or torchvision's ImageFolder
                  layout, <class>/*.png directly in the folder. Class names are the folder names, sorted.
                  Without test/, every HOLDOUT_EVERY-th image of each class (by name) is the test split, so that
                  accuracy is never measured on training images (holdout_note says so in the log and report).
  segmentation    images/*.{png,jpg} with labels/<same stem>.png of train ids, and classes.json:
                  {"names": [...], "colors": [[r, g, b], ...] (optional), "ignore_label": 255 (optional)}.
  unlabelled      image files directly in the folder: a target domain without labels. Its records carry label
                  -1 and both splits hold every image (nothing is held out: without labels there is no accuracy
                  to protect; the label-free criteria are measured on the images adapted to).
Why convert rather than read in place: one decoding path and one record schema for every dataset, the counts
the pipelines need from the manifest, every image decoded and checked once (a bad file named before training
starts, not in the middle of an epoch), and a re-conversion only when a file's name, size or time changes.
"""

import contextlib
import hashlib
import json
import os
import warnings

import numpy as np
from PIL import Image

from cycada_tf.data import schema
from cycada_tf.data.sources import segmentation
from cycada_tf.data.tfrecord import DataError

PREFIX = "folder:"
VERSION = "2"  # bump when the conversion changes: prepared copies are then rebuilt
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
HOLDOUT_EVERY = 10
CLASSES_FILE = "classes.json"
# PIL modes whose samples are wider than 8 bits, and the value each one's full range ends at: scaled to 0..255
# (PIL's own convert() clips them at 255, which turns a 16-bit PNG white). PNG gives I;16 (16-bit grey) and,
# in older Pillows, I for the same samples; F (32-bit float) is read as 0..1.
WIDE_MODES = {"I;16": 65535, "I;16B": 65535, "I;16L": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}
GREY_MODES = ("1", "L", "LA", "La", *WIDE_MODES)  # every other mode (P, PA, RGB, RGBA, CMYK...) reads as RGB


def is_folder(name):
    return name.startswith(PREFIX)


def path_of(name):
    return os.path.abspath(os.path.expanduser(name[len(PREFIX):]))


def records_dir(data_dir, name):
    """<data_dir>/folder/<folder name>-<hash of its absolute path>: never inside the user's folder."""
    path = path_of(name)
    return os.path.join(data_dir, "folder", f"{os.path.basename(path) or 'root'}-"
                                            f"{hashlib.sha256(path.encode()).hexdigest()[:8]}")


def _images(directory):
    return sorted(os.path.join(directory, n) for n in os.listdir(directory)
                  if n.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(os.path.join(directory, n)))


def _subdirs(directory):
    return sorted(n for n in os.listdir(directory) if os.path.isdir(os.path.join(directory, n)))


def _class_dirs(directory):
    """The class folders of an ImageFolder layout: the subfolders, hidden ones (.ipynb_checkpoints) left out."""
    return [n for n in _subdirs(directory) if not n.startswith(".")]


def kind(name):
    """"classification", "segmentation" or "unlabelled"; DataError naming the folder when it is none."""
    path = path_of(name)
    if not os.path.isdir(path):
        raise DataError(f"{path}: no such directory (dataset '{name}')")
    if os.path.isdir(os.path.join(path, "train")):
        return "classification"
    if os.path.isdir(os.path.join(path, "images")):
        return "segmentation"
    if _images(path):
        return "unlabelled"
    if any(_images(os.path.join(path, c)) for c in _class_dirs(path)):
        return "classification"  # ImageFolder: <class>/*.png
    raise DataError(f"{path}: neither <class>/*.png or train/<class>/ (classification), images/ + labels/ + "
                    f"{CLASSES_FILE} (segmentation) nor image files ({', '.join(IMAGE_SUFFIXES)}) for an "
                    "unlabelled target")


def holdout_note(name):
    """What the log and report say of a classification folder's test split when the folder has none."""
    path = path_of(name)
    if os.path.isdir(os.path.join(path, "test")):
        return ""
    layout = "train/<class>/" if os.path.isdir(os.path.join(path, "train")) else "<class>/ (ImageFolder layout)"
    return (f"{path}: {layout} without test/: every {HOLDOUT_EVERY}th image of each class, by file name, is "
            "held out as the test split (the same images every time)")


def classification_items(name):
    """{split: [(path, class id)]} and the class names, of train/<class>/ (and test/<class>/) or <class>/."""
    path = path_of(name)
    if not os.path.isdir(os.path.join(path, "train")):
        return _image_folder_items(path)
    classes = tuple(_subdirs(os.path.join(path, "train")))
    if not classes:
        raise DataError(f"{os.path.join(path, 'train')}: no class folders (train/<class>/*.png)")
    splits = {}
    for split in ("train", "test"):
        if not os.path.isdir(os.path.join(path, split)):
            continue
        extra = sorted(set(_subdirs(os.path.join(path, split))) - set(classes))
        if extra:
            raise DataError(f"{os.path.join(path, split, extra[0])}: class '{extra[0]}' is not among train/'s "
                            f"classes ({', '.join(classes)})")
        splits[split] = [(image, k) for k, c in enumerate(classes)
                         for image in _images(os.path.join(path, split, c))]
        if split == "train":
            for c in classes:
                if not _images(os.path.join(path, split, c)):
                    raise DataError(f"{os.path.join(path, split, c)}: no images ({', '.join(IMAGE_SUFFIXES)})")
    if "test" not in splits:
        splits = _held_out(splits["train"])
    return splits, classes


def _image_folder_items(path):
    """torchvision's ImageFolder layout, <path>/<class>/*.png: every class folder must hold images."""
    classes = tuple(_class_dirs(path))
    for c in classes:
        if not _images(os.path.join(path, c)):
            raise DataError(f"{os.path.join(path, c)}: no images ({', '.join(IMAGE_SUFFIXES)}); every folder of "
                            f"{path} is a class (ImageFolder layout)")
    return _held_out([(image, k) for k, c in enumerate(classes) for image in _images(os.path.join(path, c))]), classes


def _held_out(items):
    """{"train", "test"} of (path, class id) `items` in name order: every HOLDOUT_EVERY-th of each class tested."""
    splits, rank = {"train": [], "test": []}, {}
    for image, k in items:
        rank[k] = rank.get(k, -1) + 1
        splits["test" if rank[k] % HOLDOUT_EVERY == HOLDOUT_EVERY - 1 else "train"].append((image, k))
    return splits


def unlabelled_items(name):
    images = [(image, -1) for image in _images(path_of(name))]
    return {"train": images, "test": images}


@contextlib.contextmanager
def _opened(path):
    """Image.open(path), refusing an image whose header says more pixels than PIL's bomb limit
    (Image.MAX_IMAGE_PIXELS; PIL only warns below twice that): a small file must not decode to gigabytes."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as image:
            yield image


def channels(paths):
    """1 when every image is grey, else 3 (grey images are then copied to three channels)."""
    for path in paths:
        try:
            with _opened(path) as image:
                if image.mode not in GREY_MODES:
                    return 3
        except Exception as error:  # PIL raises OSError, SyntaxError, ValueError... on damaged files
            raise DataError(f"{path}: unreadable image ({type(error).__name__}: {error})") from None
    return 1


def image_side(path):
    """The longer side of an image (what the registry reports as its size; the pipeline resizes anyway)."""
    try:
        with _opened(path) as image:
            return max(image.size)
    except Exception as error:
        raise DataError(f"{path}: unreadable image ({type(error).__name__}: {error})") from None


def read_image(path, num_channels):
    """The image at `path` as uint8 (height, width) for `num_channels` 1, else (height, width, 3)."""
    try:
        with _opened(path) as image:
            image.load()
            return to_uint8(image, num_channels, path)
    except DataError:
        raise
    except Exception as error:
        raise DataError(f"{path}: unreadable image ({type(error).__name__}: {error})") from None


def to_uint8(image, num_channels, path):
    """A PIL image of any mode as uint8 grey (num_channels 1) or RGB, each mode's full range onto 0..255:
    1 (0 and 255), L, LA and RGBA (alpha dropped), P and PA (through the palette), RGB, CMYK, and the wide
    WIDE_MODES scaled from their range (DataError naming `path` for values outside it)."""
    if image.mode not in WIDE_MODES:
        return np.asarray(image.convert("L" if num_channels == 1 else "RGB"))
    top = WIDE_MODES[image.mode]
    values = np.asarray(image, dtype=np.float64)
    if values.size and not (np.isfinite(values).all() and values.min() >= 0 and values.max() <= top):
        raise DataError(f"{path}: a {image.mode} image with values outside 0..{top:g} (from {values.min():g} to "
                        f"{values.max():g}); save it as 8- or 16-bit PNG")
    grey = np.round(values * (255.0 / top)).astype(np.uint8)
    return grey if num_channels == 1 else np.repeat(grey[..., None], 3, axis=-1)


def fingerprint(paths, extra=""):
    """Names, sizes and times of every file: a changed folder is converted again, an unchanged one is not."""
    digest = hashlib.sha256(f"{VERSION}:{extra}".encode())
    for path in sorted(set(paths)):
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return {"files": f"{len(set(paths))} files, sha256 {digest.hexdigest()}", "converter": f"folder-v{VERSION}"}


def classification_examples(splits, num_channels, root):
    def records(items):
        for path, label in items:
            yield schema.make_example(read_image(path, num_channels), label, key=os.path.relpath(path, root))
    return {split: records(items) for split, items in splits.items()}


class SegmentationFolder:
    """What segmentation.examples needs of a source module, for one folder: its label ids are train ids."""

    __name__ = "folder"
    VERSION = VERSION

    def __init__(self, name):
        self.path = path_of(name)
        classes_file = os.path.join(self.path, CLASSES_FILE)
        try:
            with open(classes_file) as handle:
                spec = json.load(handle)
            self.classes = tuple(str(c) for c in spec["names"])
            self.ignore = int(spec.get("ignore_label", schema.IGNORE_LABEL))
            self.colors = spec.get("colors")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(f"{classes_file}: missing or not {{\"names\": [...], \"ignore_label\": 255}} "
                            f"({type(error).__name__}: {error})") from None
        if not self.classes or len(self.classes) >= schema.IGNORE_LABEL:
            raise DataError(f"{classes_file}: 'names' must list 1 to 254 classes")
        self.TRAIN_IDS = segmentation.lookup_table({**{k: k for k in range(len(self.classes))},
                                                    self.ignore: schema.IGNORE_LABEL})

    def read_label(self, path):
        ids = segmentation.read_index_png(path)
        bad = ids[(ids >= len(self.classes)) & (ids != self.ignore)]
        if bad.size:
            raise DataError(f"{path}: train id {int(bad[0])} is not a class of {CLASSES_FILE} (0.."
                            f"{len(self.classes) - 1}) nor its ignore_label {self.ignore}")
        return ids

    def layout(self):
        images_dir, labels_dir = os.path.join(self.path, "images"), os.path.join(self.path, "labels")
        pairs = []
        for image in _images(images_dir):
            stem = os.path.splitext(os.path.basename(image))[0]
            label = os.path.join(labels_dir, stem + ".png")
            if not os.path.isfile(label):
                raise DataError(f"{label}: missing, the label of {image}")
            pairs.append(segmentation.Pair(os.path.relpath(image, self.path), image, label))
        if not pairs:
            raise DataError(f"{images_dir}: no images ({', '.join(IMAGE_SUFFIXES)})")
        held_out = pairs[HOLDOUT_EVERY - 1::HOLDOUT_EVERY] or pairs[-1:]
        return segmentation.Layout({"train": [p for p in pairs if p not in held_out], "test": held_out})
