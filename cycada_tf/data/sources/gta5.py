"""GTA5 ("Playing for Data", Richter et al. 2016) from its official layout -> images and 19-class label maps.

    images/NNNNN.png   RGB frames (sizes vary across the release)
    labels/NNNNN.png   palette PNGs whose indices are Cityscapes label ids

Labels map to Cityscapes' 19 train ids through cityscapes.LABELS. The release is not uniform: 25 of its
24,966 ids have an image but no label in users' downloads (bupt-ai-cz/IAST-ECCV2020 issue #2 lists them), so
files are paired by id, and an unpaired file is reported and left out, never fatal. A pair whose image and
label differ in size is an error. There is no official split file in images.zip/labels.zip; the paper trains
on all of it: one split, "train".
"""

import os

from cycada_tf.data.sources import cityscapes, segmentation
from cycada_tf.data.tfrecord import DataError

VERSION = "1"  # bump when the conversion changes: prepared copies are then rebuilt
IMAGE_DIR, LABEL_DIR = "images", "labels"
SPLITS = ("train",)
CLASSES = cityscapes.CLASSES
TRAIN_IDS = cityscapes.TRAIN_IDS
PREPARE_HINT = ("Run: python tools/prepare_data.py --dataset=gta5 --raw_dir=<dir with images/ and labels/> "
                "--data_dir=<data_dir> --width=1024")


def read_label(path):
    """Palette indices (= Cityscapes label ids) of a label PNG, uint8 (H, W)."""
    return segmentation.read_index_png(path)


def layout(raw_dir):
    """{"train": [Pair]} paired by file name; files without a partner are listed in `skipped`."""
    image_dir = segmentation.require_dir(os.path.join(raw_dir, IMAGE_DIR), "GTA5 images, from images.zip",
                                         PREPARE_HINT)
    label_dir = segmentation.require_dir(os.path.join(raw_dir, LABEL_DIR), "GTA5 labels, from labels.zip",
                                         PREPARE_HINT)
    images = {name: path for name, path in segmentation.sorted_files(image_dir, ".png").items()
              if os.sep not in name}
    labels = {name: path for name, path in segmentation.sorted_files(label_dir, ".png").items()
              if os.sep not in name}
    paired = sorted(set(images) & set(labels))
    if not paired:
        raise DataError(f"{raw_dir}: no image in {IMAGE_DIR}/ has a label of the same name in {LABEL_DIR}/ "
                        f"({len(images)} images, {len(labels)} labels). {PREPARE_HINT}")
    skipped = ([f"{images[n]}: no label {os.path.join(label_dir, n)}" for n in sorted(set(images) - set(labels))]
               + [f"{labels[n]}: no image {os.path.join(image_dir, n)}"
                  for n in sorted(set(labels) - set(images))])
    pairs = [segmentation.Pair(os.path.join(IMAGE_DIR, name), images[name], labels[name]) for name in paired]
    return segmentation.Layout({"train": pairs}, skipped)


def check(found):
    segmentation.check(found, label_depths=(8,), label_colors=(0, 3))
