"""The results table: mean and standard error over seeds, and the paper's Table 2 beside the paper's shifts."""

import math

from cycada_tf.config import experiment_config as config_lib
from cycada_tf.reporting import paper, results
from cycada_tf import tasks


def _per_seed(values):
    return {str(seed): {"source": {"accuracy": v[0]}, "feature": {"accuracy": v[1]}}
            for seed, v in enumerate(values)}


def test_mean_and_standard_error_over_seeds():
    config = config_lib.DigitsConfig(source="uci", target="uci_m", seeds=(0, 1, 2))
    summary = tasks.for_config(config).summarize(_per_seed([(0.5, 0.7), (0.6, 0.8), (0.7, 0.9)]))
    rows = {row["stage"]: row for row in summary["table"]}
    assert list(rows) == ["source", "feature"]
    assert math.isclose(rows["source"]["accuracy"], 0.6)
    assert math.isclose(rows["source"]["standard_error"], 0.1 / math.sqrt(3))  # std (ddof 1) 0.1
    assert summary["paper_table_2"] == {}
    table = tasks.for_config(config).markdown_table(summary)
    assert "| Source only | 60.0 ± 5.8 |" in table and "| CyCADA pixel+feat | 80.0 ± 5.8 |" in table
    assert table.splitlines()[0] == "| Model | uci -> uci_m (accuracy %, mean ± s.e., 3 seeds) |"
    assert "Paper" not in table
    # paired by seed: gains 0.2, 0.2, 0.2 -> +20.0 points, no spread
    assert math.isclose(summary["gain"]["mean"], 0.2) and summary["gain"]["standard_error"] < 1e-12
    assert "Gain of pixel+feat over source only, paired by seed: +20.0 ± 0.0 points" in table


def test_gain_is_paired_by_seed_and_skips_seeds_without_both_stages():
    per_seed = _per_seed([(0.50, 0.60), (0.70, 0.75), (0.40, 0.55)])
    per_seed["3"] = {"source": {"accuracy": 0.9}}  # a seed whose feature stage has not run
    gain = results.adaptation_gain(per_seed)
    assert gain["seeds"] == 3
    diffs = [0.10, 0.05, 0.15]
    assert math.isclose(gain["mean"], 0.10)
    se = math.sqrt(sum((d - 0.10) ** 2 for d in diffs) / 2) / math.sqrt(3)
    assert math.isclose(gain["standard_error"], se)
    assert results.adaptation_gain({"0": {"source": {"accuracy": 0.5}}}) is None


def test_paper_numbers_beside_the_papers_shifts():
    for source in ("svhn", "tfds:svhn_cropped"):
        config = config_lib.DigitsConfig(source=source, target="mnist", seeds=(0,))
        summary = tasks.for_config(config).summarize(_per_seed([(0.671, 0.904)]))
        table = tasks.for_config(config).markdown_table(summary).splitlines()
        assert table[0].endswith("Paper (Table 2, 4 runs) |") and table[1] == "|---|---|---|"
        # one seed has no spread: no ± on our side, the paper's mean ± s.e. of its 4 runs beside it
        assert table[0] == f"| Model | {source} -> mnist (accuracy %, 1 seed) | Paper (Table 2, 4 runs) |"
        assert "| Source only | 67.1 | 67.1 ± 0.6 |" in table
        assert "| CyCADA pixel+feat | 90.4 | 90.4 ± 0.4 |" in table
        assert summary["paper_table_2"]["feature"] == [90.4, 0.4]
    assert paper.reported("usps", "mnist")["source"] == (69.6, 3.8)
    assert paper.reported("mnist", "usps")["oracle"] == (96.3, 0.1)
    assert paper.reported("uci", "uci_m") == {}


def _segmentation_seed(classes, miou):
    scores = {"miou": miou, "fwiou": miou + 0.1, "pixel_accuracy": miou + 0.2,
              "per_class_iou": {name: miou for name in classes}}
    return {"source": dict(scores), "feature": dict(scores)}


def test_segmentation_tables_carry_the_papers_rows_for_its_shifts_and_segmenters():
    from cycada_tf.data.sources import cityscapes, synthia
    for model, table_name, road, bicycle, miou in (("fcn8s", "Table 4 (A)", "85.2", "0.0", "35.4"),
                                                   ("drn26", "Table 4 (B)", "79.1", "20.4", "39.5")):
        config = config_lib.SegmentationConfig(source="gta5", target="cityscapes", model=model, seeds=(0,))
        summary = tasks.for_config(config).summarize({"0": _segmentation_seed(cityscapes.CLASSES, 0.3)})
        assert summary["paper"]["table"] == table_name
        # the paper's columns are Cityscapes' 19 train ids in order: road first, bicycle last
        assert math.isclose(summary["paper"]["rows"]["feature"]["per_class_iou"]["road"], float(road) / 100)
        assert math.isclose(summary["paper"]["rows"]["feature"]["miou"], float(miou) / 100)
        lines = tasks.for_config(config).markdown_table(summary).splitlines()
        ours = [line for line in lines if line.startswith("| CyCADA pixel+feat |")]
        theirs = [line for line in lines if line.startswith(f"| paper, {table_name}: CyCADA pixel+feat |")]
        assert len(ours) == 1 and "| 30.0 | 40.0 | 50.0 |" in ours[0] and "±" not in ours[0]
        assert lines[0].endswith("IoU per class, mIoU, fwIoU and pixel accuracy (%, 1 seed)")
        cells = theirs[0].strip("| ").split(" | ")
        assert cells[1] == road and cells[19] == bicycle and cells[20] == miou and len(cells) == 1 + 19 + 3
        assert any(line.startswith(f"| paper, {table_name}: Oracle (train on target) |") for line in lines)
    config = config_lib.SegmentationConfig(source="synthia_fall", target="synthia_winter", model="fcn8s")
    summary = tasks.for_config(config).summarize({"0": _segmentation_seed(synthia.CLASSES, 0.3)})
    pixel_only = summary["paper"]["rows"]["target"]
    assert math.isclose(pixel_only["per_class_iou"]["sky"], 0.925)  # the first column of Table 3
    assert math.isclose(pixel_only["per_class_iou"]["traffic light"], 0.215)  # the last class column
    assert math.isclose(pixel_only["pixel_accuracy"], 0.921) and "feature" not in summary["paper"]["rows"]
    # no paper row for the embedded domains or for a segmenter the paper did not use
    for source, target, model in (("roads_game", "roads_camera", "small_fcn"), ("gta5", "cityscapes", "small_fcn")):
        config = config_lib.SegmentationConfig(source=source, target=target, model=model)
        classes = cityscapes.CLASSES if source == "gta5" else ("road", "sky")
        summary = tasks.for_config(config).summarize({"0": _segmentation_seed(classes, 0.3)})
        assert summary["paper"] is None and "paper," not in tasks.for_config(config).markdown_table(summary)


def test_segmentation_rows_carry_the_standard_error_of_two_seeds_or_more():
    config = config_lib.SegmentationConfig(source="roads_game", target="roads_camera", seeds=(0, 1))
    summary = tasks.for_config(config).summarize({"0": _segmentation_seed(("road", "sky"), 0.3),
                                                  "1": _segmentation_seed(("road", "sky"), 0.5)})
    lines = tasks.for_config(config).markdown_table(summary).splitlines()
    assert lines[0].endswith("(%, mean over 2 seeds; mIoU ± standard error)")
    feature = next(line for line in lines if line.startswith("| CyCADA pixel+feat |"))
    assert "| 40.0 ± 10.0 | 50.0 | 60.0 |" in feature  # s.e. of (30, 50): std 14.1 / sqrt(2)
