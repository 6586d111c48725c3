"""The published numbers this implementation is compared with (Hoffman et al., ICML 2018, Table 2):
accuracy % on the target test set, mean and standard error of 4 runs, keyed by (source, target) and stage."""

TABLE_2 = {
    ("mnist", "usps"): {"source": (82.2, 0.8), "target": (95.6, 0.2), "feature": (95.6, 0.2),
                        "oracle": (96.3, 0.1)},
    ("usps", "mnist"): {"source": (69.6, 3.8), "target": (96.4, 0.1), "feature": (96.5, 0.1),
                        "oracle": (99.2, 0.1)},
    ("svhn", "mnist"): {"source": (67.1, 0.6), "target": (70.3, 0.2), "feature": (90.4, 0.4),
                        "oracle": (99.2, 0.1)},
}


def _dataset(name):
    """tfds:svhn_cropped -> svhn, so a tfds source is compared with the same row."""
    name = name.split(":", 1)[-1]
    return {"svhn_cropped": "svhn"}.get(name, name)


def reported(source, target):
    """{stage: (mean, standard error)} of the paper for this shift, or {} when the paper has none."""
    return TABLE_2.get((_dataset(source), _dataset(target)), {})


# Tables 3 and 4: IoU % per class in each dataset's class order (cycada_tf/data/sources), then mIoU, fwIoU and
# pixel accuracy %, one run each (no standard errors reported); None where the paper prints a dash. Keyed by
# (source, target, segmenter) and stage (the rows the paper has; FCNs in the wild and feat-only are other
# methods or ablations, not stages of a run, and are left out).
_SYNTHIA = {
    "source": (91.7, 80.6, 79.7, 12.1, 71.8, 44.2, 26.1, 42.8, 49.0, 38.7, 45.1, 41.3, 24.5, 49.8, 71.7, 82.3),
    "target": (92.5, 90.1, 91.9, 79.9, 85.7, 47.1, 36.9, 82.6, 45.0, 49.1, 46.2, 54.6, 21.5, 63.3, 85.7, 92.1),
    "oracle": (93.8, 92.2, 94.7, 90.7, 90.2, 64.4, 38.1, 88.5, 55.4, 51.0, 52.0, 68.9, 37.3, 70.5, 89.9, 94.5),
}
_GTA5_FCN8S = {
    "source": (26.0, 14.9, 65.1, 5.5, 12.9, 8.9, 6.0, 2.5, 70.0, 2.9, 47.0, 24.5, 0.0, 40.0, 12.1, 1.5, 0.0, 0.0,
               0.0, 17.9, 41.9, 54.0),
    "target": (83.5, 38.3, 76.4, 20.6, 16.5, 22.2, 26.2, 21.9, 80.4, 28.7, 65.7, 49.4, 4.2, 74.6, 16.0, 26.6, 2.0,
               8.0, 0.0, 34.8, 73.1, 82.8),
    "feature": (85.2, 37.2, 76.5, 21.8, 15.0, 23.8, 22.9, 21.5, 80.5, 31.3, 60.7, 50.5, 9.0, 76.9, 17.1, 28.2, 4.5,
                9.8, 0.0, 35.4, 73.8, 83.6),
    "oracle": (96.4, 74.5, 87.1, 35.3, 37.8, 36.4, 46.9, 60.1, 89.0, 54.3, 89.8, 65.6, 35.9, 89.4, 38.6, 64.1, 38.6,
               40.5, 65.1, 60.3, 87.6, 93.1),
}
_GTA5_DRN26 = {
    "source": (42.7, 26.3, 51.7, 5.5, 6.8, 13.8, 23.6, 6.9, 75.5, 11.5, 36.8, 49.3, 0.9, 46.7, 3.4, 5.0, 0.0, 5.0,
               1.4, 21.7, 47.4, 62.5),
    "target": (63.7, 24.7, 69.3, 21.2, 17.0, 30.3, 33.0, 32.0, 80.5, 25.3, 62.3, 62.0, 15.1, 73.1, 19.8, 23.6, 5.5,
               16.2, 28.7, 37.0, 63.8, 75.4),
    "feature": (79.1, 33.1, 77.9, 23.4, 17.3, 32.1, 33.3, 31.8, 81.5, 26.7, 69.0, 62.8, 14.7, 74.5, 20.9, 25.6, 6.9,
                18.8, 20.4, 39.5, 72.4, 82.3),
    "oracle": (97.3, 79.8, 88.6, 32.5, 48.2, 56.3, 63.6, 73.3, 89.0, 58.9, 93.0, 78.2, 55.2, 92.2, 45.0, 67.3, 39.6,
               49.9, 73.6, 67.4, 89.6, 94.3),
}
SEGMENTATION_TABLES = {("synthia_fall", "synthia_winter", "fcn8s"): ("Table 3", _SYNTHIA),
                       ("gta5", "cityscapes", "fcn8s"): ("Table 4 (A)", _GTA5_FCN8S),
                       ("gta5", "cityscapes", "drn26"): ("Table 4 (B)", _GTA5_DRN26)}


def reported_segmentation(source, target, model, classes):
    """(table name, {stage: {"per_class_iou": {class: IoU}, "miou", "fwiou", "pixel_accuracy"}}) of the paper
    for this shift and segmenter, as fractions like ours, or (None, {}) when the paper has none. `classes`:
    the dataset's class names, in the paper's column order."""
    name, rows = SEGMENTATION_TABLES.get((source, target, model), (None, {}))
    table = {}
    for stage, values in rows.items():
        if len(values) != len(classes) + 3:
            raise ValueError(f"the paper's {name} has {len(values) - 3} classes, {source} has {len(classes)}")
        fractions = [None if v is None else v / 100 for v in values]
        table[stage] = {"per_class_iou": dict(zip(classes, fractions)), "miou": fractions[-3],
                        "fwiou": fractions[-2], "pixel_accuracy": fractions[-1]}
    return name, table
