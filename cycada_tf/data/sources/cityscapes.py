"""Cityscapes from its official layout (leftImg8bit + gtFine *_labelIds.png) -> images and 19-class label maps.

    leftImg8bit/<split>/<city>/<stem>_leftImg8bit.png
    gtFine/<split>/<city>/<stem>_gtFine_labelIds.png   (beside it _color, _instanceIds, _polygons.json)

Only `_labelIds.png` holds label ids (8-bit grey); they are mapped to the 19 train ids, every other id to
255. Splits train and val; `leftImg8bit/train_extra` (the 19,998 coarse-only images the paper trains the
target side on, without labels) becomes an image-only split when present. The test split's gtFine files
hold no real labels and are not read.
"""

import os

from cycada_tf.data.sources import segmentation
from cycada_tf.data.tfrecord import DataError

VERSION = "1"  # bump when the conversion changes: prepared copies are then rebuilt
IMAGE_DIR, LABEL_DIR = "leftImg8bit", "gtFine"
IMAGE_SUFFIX, LABEL_SUFFIX = "_leftImg8bit.png", "_gtFine_labelIds.png"
SPLITS = ("train", "val")
IMAGE_ONLY_SPLITS = ("train_extra",)

# The official label table, transcribed from cityscapesscripts/helpers/labels.py (mcordts/cityscapesScripts,
# the `labels` list): (label id, name, train id), train id 255 = not evaluated. License plate (id -1) never
# appears in a *_labelIds.png and is left out. GTA5's labels use the same ids (gta5.py reads this table).
LABELS = (
    (0, "unlabeled", 255), (1, "ego vehicle", 255), (2, "rectification border", 255), (3, "out of roi", 255),
    (4, "static", 255), (5, "dynamic", 255), (6, "ground", 255), (7, "road", 0), (8, "sidewalk", 1),
    (9, "parking", 255), (10, "rail track", 255), (11, "building", 2), (12, "wall", 3), (13, "fence", 4),
    (14, "guard rail", 255), (15, "bridge", 255), (16, "tunnel", 255), (17, "pole", 5),
    (18, "polegroup", 255), (19, "traffic light", 6), (20, "traffic sign", 7), (21, "vegetation", 8),
    (22, "terrain", 9), (23, "sky", 10), (24, "person", 11), (25, "rider", 12), (26, "car", 13),
    (27, "truck", 14), (28, "bus", 15), (29, "caravan", 255), (30, "trailer", 255), (31, "train", 16),
    (32, "motorcycle", 17), (33, "bicycle", 18),
)
CLASSES = tuple(name for _, name, train_id in sorted(LABELS, key=lambda label: label[2]) if train_id != 255)
# Every 8-bit value has an entry (ids above 33 -> 255), so any grey label PNG maps without error.
TRAIN_IDS = segmentation.lookup_table({label_id: train_id for label_id, _, train_id in LABELS})
PREPARE_HINT = ("Run: python tools/prepare_data.py --dataset=cityscapes --raw_dir=<dir with leftImg8bit/ and "
                "gtFine/> --data_dir=<data_dir> --width=1024")


def read_label(path):
    """Label ids of a *_gtFine_labelIds.png, uint8 (H, W)."""
    return segmentation.read_index_png(path)


def layout(raw_dir):
    """{split: [Pair]}: every image of train and val with its labelIds file (a missing one is an error)."""
    segmentation.require_dir(os.path.join(raw_dir, IMAGE_DIR), "Cityscapes images, leftImg8bit_trainvaltest.zip",
                             PREPARE_HINT)
    splits = {}
    for split in SPLITS + IMAGE_ONLY_SPLITS:
        image_dir = os.path.join(raw_dir, IMAGE_DIR, split)
        if split in IMAGE_ONLY_SPLITS and not os.path.isdir(image_dir):
            continue
        segmentation.require_dir(image_dir, f"Cityscapes {split} images", PREPARE_HINT)
        images = segmentation.sorted_files(image_dir, IMAGE_SUFFIX)
        if not images:
            raise DataError(f"{image_dir}: no *{IMAGE_SUFFIX} files. {PREPARE_HINT}")
        pairs = []
        for relative, image in images.items():  # relative: <city>/<stem>_leftImg8bit.png
            key = os.path.join(IMAGE_DIR, split, relative)
            if split in IMAGE_ONLY_SPLITS:
                pairs.append(segmentation.Pair(key, image))
                continue
            label = os.path.join(raw_dir, LABEL_DIR, split, relative[:-len(IMAGE_SUFFIX)] + LABEL_SUFFIX)
            if not os.path.isfile(label):
                raise DataError(f"{label}: missing, the label file of {image} (from gtFine_trainvaltest.zip)")
            pairs.append(segmentation.Pair(key, image, label))
        splits[split] = pairs
    return segmentation.Layout(splits)


def check(found):
    segmentation.check(found, label_depths=(8,), label_colors=(0, 3))
