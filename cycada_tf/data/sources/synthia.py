"""SYNTHIA video sequences (SYNTHIA-SEQS, Ros et al. 2016) -> front-view images and 13-class label maps.

    SYNTHIA-SEQS-NN-<SEASON>/RGB/Stereo_Left/Omni_F/NNNNNN.png        8-bit RGB frames
    SYNTHIA-SEQS-NN-<SEASON>/GT/LABELS/Stereo_Left/Omni_F/NNNNNN.png  16-bit PNG, class id in channel 0
                                                                      (instance id in channel 1)

--raw_dir is one sequence folder or a folder holding several; every sequence of the dataset's season is read
(the paper: fall -> winter, front view only, "13 classes ... 10,852 fall images and 7,654 winter images").
The paper gives no train/test split of the sequences: one split, "train", holds every frame.
"""

import os
import re

from cycada_tf.data.sources import segmentation
from cycada_tf.data.tfrecord import DataError

VERSION = "1"  # bump when the conversion changes: prepared copies are then rebuilt
CAMERA = os.path.join("Stereo_Left", "Omni_F")  # the left front camera: the paper's "front-facing views"
IMAGE_DIR = os.path.join("RGB", CAMERA)
LABEL_DIR = os.path.join("GT", "LABELS", CAMERA)
SPLITS = ("train",)
SEASONS = {"synthia_fall": "FALL", "synthia_winter": "WINTER"}  # dataset name -> folder suffix
SEQUENCE = re.compile(r"^SYNTHIA-SEQS-\d+-([A-Z]+)$")

# The paper's 13 classes as SYNTHIA-SEQS class ids (README.txt of the SYNTHIA-SEQS download: 0 void, 1 sky,
# 2 building, 3 road, 4 sidewalk, 5 fence, 6 vegetation, 7 pole, 8 car, 9 traffic sign, 10 pedestrian,
# 11 bicycle, 12 lanemarking, 13-14 reserved, 15 traffic light; the same table is in
# m-birke/automotive-segmentation-datasets synthia_sequences.md). The 13 evaluated ones are every class but
# void and the reserved ids, as in the FCNs-in-the-wild / CyCADA SYNTHIA fall -> winter benchmark.
# Train ids follow the SYNTHIA id order; 0, 13 and 14 are ignored (255).
CLASS_IDS = ((1, "sky"), (2, "building"), (3, "road"), (4, "sidewalk"), (5, "fence"), (6, "vegetation"),
             (7, "pole"), (8, "car"), (9, "traffic sign"), (10, "pedestrian"), (11, "bicycle"),
             (12, "lanemarking"), (15, "traffic light"))
CLASSES = tuple(name for _, name in CLASS_IDS)
NUM_IDS = 16  # ids 0..15 exist; a larger one means the file is not a SYNTHIA-SEQS label
TRAIN_IDS = segmentation.lookup_table({raw: train for train, (raw, _) in enumerate(CLASS_IDS)}, NUM_IDS)


def prepare_hint(dataset):
    return (f"Run: python tools/prepare_data.py --dataset={dataset} --raw_dir=<dir with "
            f"SYNTHIA-SEQS-NN-{SEASONS[dataset]} folders> --data_dir=<data_dir> --width=1024")


def read_label(path):
    """Class ids (channel 0) of a 16-bit SYNTHIA label PNG, uint16 (H, W)."""
    return segmentation.read_first_channel_16bit(path)


def sequences(raw_dir, season):
    """The sequence folders to read: raw_dir itself when it is one, else its SYNTHIA-SEQS-NN-<season>."""
    if os.path.isdir(os.path.join(raw_dir, "RGB")):
        match = SEQUENCE.match(os.path.basename(os.path.normpath(raw_dir)))
        if match and match.group(1) != season:
            raise DataError(f"{raw_dir}: a {match.group(1)} sequence, this dataset reads {season} ones")
        return [os.path.normpath(raw_dir)]
    found = sorted(os.path.join(raw_dir, name) for name in os.listdir(raw_dir)
                   if SEQUENCE.match(name) and SEQUENCE.match(name).group(1) == season
                   and os.path.isdir(os.path.join(raw_dir, name)))
    if not found:
        raise DataError(f"{raw_dir}: no SYNTHIA-SEQS-NN-{season} folder (nor RGB/ of one sequence). "
                        f"{prepare_hint(next(k for k, v in SEASONS.items() if v == season))}")
    return found


def layout(raw_dir, season):
    """{"train": [Pair]}: every front-view frame of the season's sequences with its label (else an error)."""
    pairs = []
    for sequence in sequences(raw_dir, season):
        image_dir = segmentation.require_dir(os.path.join(sequence, IMAGE_DIR), "the sequence's front-view "
                                             "frames")
        images = {name: path for name, path in segmentation.sorted_files(image_dir, ".png").items()
                  if os.sep not in name}
        if not images:
            raise DataError(f"{image_dir}: no .png frames")
        for name, image in images.items():
            label = os.path.join(sequence, LABEL_DIR, name)
            if not os.path.isfile(label):
                raise DataError(f"{label}: missing, the label file of {image}")
            key = os.path.join(os.path.basename(sequence), IMAGE_DIR, name)
            pairs.append(segmentation.Pair(key, image, label))
    return segmentation.Layout({"train": pairs})


def check(found):
    # 16-bit RGB or RGBA as released; 16-bit grey and 8-bit copies are read the same way (channel 0).
    segmentation.check(found, label_depths=(16, 8), label_colors=(0, 2, 6))
