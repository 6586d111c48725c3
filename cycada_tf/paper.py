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
