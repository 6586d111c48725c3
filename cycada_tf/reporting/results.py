"""A run's results from plain dicts: each seed's stage results (their done.json) -> the paper-style table
(mean ± standard error over seeds per row), the paired gain over source only, and the label-free decisions
beside what the target test labels would have picked. Nothing here reads a file or a network."""

import math

import numpy as np

from cycada_tf.config import experiment_config as config_lib
from cycada_tf.reporting import paper, unlabelled_target as label_free
from cycada_tf.stages import registry

SEGMENTATION_SCORES = ("miou", "fwiou", "pixel_accuracy")
FINAL_ROW = ("final", "Final model (chosen without target labels)")  # after the last candidate's row


def rows(config, score_key):
    """The results table's rows: each stage's with a label (its record's), in the order a run trains them,
    and the final model's after the last candidate's.

    Args:
        config: the run's config (a row's label may depend on it).
        score_key: the key of done.json the task's table reads; a stage's row adds its key_suffix.
    Returns:
        ((stage, key of its done.json, row label), ...)."""
    table, last = [], max(k for k, stage in enumerate(registry.STAGES) if stage.candidate is not None)
    for k, stage in enumerate(registry.STAGES):
        if stage.row_label(config) is not None:
            table.append((stage.name, score_key + stage.key_suffix, stage.row_label(config)))
        if k == last:
            table.append((FINAL_ROW[0], score_key, FINAL_ROW[1]))
    return tuple(table)


def mean_and_se(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = float(np.mean(values))
    se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
    return mean, se


def stage_results(per_seed, stage):
    """Each seed's results of `stage`, in seed order; for "final", those of the stage the seed chose."""
    if stage == "final":
        return [r[r["final"]["choice"]] for r in per_seed.values() if r.get("final")]
    return [r[stage] for r in per_seed.values() if stage in r]


def adaptation_gain(per_seed, key="accuracy"):
    """The final model (else the most adapted candidate that ran) minus source only, paired by seed: {"mean",
    "standard_error", "seeds", "stage"} (does adaptation beat source only by more than seed noise?), or None."""
    stage = next((name for name in ("final",) + registry.CANDIDATES[:0:-1]
                  if any(key in r.get(name, {}) for r in per_seed.values())), None)
    source = registry.SOURCE_MODEL
    pairs = [(r[stage][key], r[source][key]) for r in per_seed.values()
             if key in r.get(stage, {}) and key in r.get(source, {})]
    mean, se = mean_and_se([adapted - source for adapted, source in pairs])
    if mean is None:
        return None
    return {"mean": mean, "standard_error": se, "seeds": len(pairs), "stage": stage}


def _common(config, per_seed, table, gain):
    return {"task": config.TASK, "source": config.source, "target": config.target, "seeds": list(per_seed),
            "table": table, "per_seed": per_seed, "gain": gain, "config": config_lib.to_json(config)}


def summarize_accuracy(config, per_seed, rows):
    """Table 2's rows: `rows` is (stage, key of its done.json, label); the digits' results dict."""
    table = []
    for stage, key, label in rows:
        values = [r.get(key) for r in stage_results(per_seed, stage)]
        mean, se = mean_and_se(values)
        if mean is not None:
            table.append({"model": label, "stage": stage, "key": key, "accuracy": mean, "standard_error": se,
                          "seeds": [v for v in values if v is not None]})
    published = paper.reported(config.source, config.target)
    return {**_common(config, per_seed, table, adaptation_gain(per_seed)),
            "paper_table_2": {stage: list(v) for stage, v in published.items()}}


def summarize_segmentation(config, per_seed, rows, classes):
    """Table 3's rows (mean over seeds of per-class IoU, mIoU, fwIoU, pixel accuracy) and the paired gain."""
    table = []
    for stage, key, label in rows:
        suffix = key[len("miou"):]  # "_t2s" for the pixel stage's row
        done = [r for r in stage_results(per_seed, stage) if key in r]
        if not done:
            continue
        row = {"model": label, "stage": stage, "key": key, "seeds": [r[key] for r in done]}
        for score in SEGMENTATION_SCORES:
            row[score], row[score + "_standard_error"] = mean_and_se([r.get(score + suffix) for r in done])
        row["per_class_iou"] = {name: mean_and_se([r["per_class_iou" + suffix].get(name) for r in done])[0]
                                for name in classes}
        table.append(row)
    name, published = paper.reported_segmentation(config.source, config.target, config.model, classes)
    return {**_common(config, per_seed, table, adaptation_gain(per_seed, "miou")), "classes": list(classes),
            "paper": {"table": name, "rows": published} if published else None}


def summarize_label_free(config, per_seed, rows):
    """The results of a run whose target has no labels (unlabelled_target.py)."""
    return {**label_free.summarize(config, per_seed, rows), "task": config.TASK}


def decisions(per_seed, oracle=True):
    """[(decision, {seed: {"choice", "oracle_choice", ...}})] of the label-free decisions each seed made; with
    `oracle`, only those the target test labels were read beside (none is, without target labels)."""
    out = []
    for name, get in registry.DECISIONS:
        values = {seed: get(r) for seed, r in per_seed.items() if get(r) and (not oracle or "oracle_choice" in get(r))}
        if values:
            out.append((name, values))
    return out
