"""What a user reads of a run: the results table as markdown (results.md, printed at the end) and report.md,
the table with the figures. Tables come from the plain results dict (results.py); the figures are the task's
(tasks/*.py draw them and give report.md's sections)."""

import os

from cycada_tf.train import atomic_files as files
from cycada_tf.reporting import paper, unlabelled_target as label_free


def _percent(value):
    return "-" if value is None else f"{100 * value:.1f}"


def _mean(value, standard_error, seeds):
    """A table's number: the mean over seeds, "± s.e." only when there are 2+ seeds (one has no spread)."""
    return _percent(value) + (f" ± {_percent(standard_error)}" if seeds > 1 else "")


def _gain_line(gain, unit=""):
    if not gain or gain["seeds"] < 2:
        return []
    model = "the final model" if gain.get("stage") == "final" else "pixel+feat"
    sigmas = abs(gain["mean"]) / gain["standard_error"] if gain["standard_error"] else float("inf")
    return [f"\nGain of {model} over source only{unit}, paired by seed: {100 * gain['mean']:+.1f} ± "
            f"{100 * gain['standard_error']:.1f} points (mean ± s.e. of {gain['seeds']} seeds; "
            f"{sigmas:.1f} standard errors)"]


def decisions_lines(decisions):
    """results.decisions' output as one line per decision (the target labels' choice beside, where read)."""
    lines = []
    for name, made in decisions:
        by = {d.get("criterion_name") for d in made.values()} - {None}
        said_by = f", by {', '.join(sorted(by)).replace('_', ' ')}" if by else ""
        if all("oracle_choice" in d for d in made.values()):
            agree = sum(d["choice"] == d["oracle_choice"] for d in made.values())
            lines.append(f"\nDecision without target labels, {name}{said_by} (seed: chosen / oracle's choice): "
                         + ", ".join(f"{seed}: {d['choice']} / {d['oracle_choice']}" for seed, d in made.items())
                         + f"; agrees on {agree} of {len(made)}")
        else:
            lines.append(f"\nDecision without target labels, {name}{said_by} (seed: chosen): "
                         + ", ".join(f"{seed}: {d['choice']}" for seed, d in made.items()))
        kept = [seed for seed, d in made.items() if d.get("kept_source")]
        if kept:
            why = ("learnability and reverse validation both scored every adapted model no higher than the source "
                   "model" if by == {"veto"} else "no adapted model beat the source model by the criterion's margin "
                   "(--final_margin)")
            lines.append(f"\nSeed{'s' if len(kept) > 1 else ''} {', '.join(kept)}: {why}, so the source model is the "
                         f"final model (exported): adaptation is not shipped where it cannot be shown to help.")
        lines += [f"\nSeed {seed}, {name}: {_criterion_values(d)}" for seed, d in made.items() if _criterion_values(d)]
    return lines


def _criterion_values(decision):
    """A decision's criterion values in words: the veto's scores of each stage against the source model's, else
    the criterion of each candidate."""
    if decision.get("votes"):
        return "; ".join(f"{stage} " + ", ".join(f"{score.replace('_', ' ')} {mine:.3f} against the source model's "
                                                 f"{source:.3f}" for score, (mine, source) in votes.items())
                         for stage, votes in decision["votes"].items())
    values = decision.get("criterion") or {}
    return ", ".join(f"{key} {value:.4g}" for key, value in values.items())


def accuracy_table(results, decisions):
    """Table 2: accuracy per row, with the paper's number beside each row when the shift is the paper's."""
    published = paper.reported(results["source"], results["target"])
    seeds = len(results["seeds"])
    over = f"mean ± s.e., {seeds} seeds" if seeds > 1 else "1 seed"
    lines = [f"| Model | {results['source']} -> {results['target']} (accuracy %, {over}) |"
             + (" Paper (Table 2, 4 runs) |" if published else ""),
             "|---|---|" + ("---|" if published else "")]
    for row in results["table"]:
        line = f"| {row['model']} | {_mean(row['accuracy'], row['standard_error'], seeds)} |"
        if published:
            mean_se = published.get(row["stage"]) if row["key"] == "accuracy" else None
            line += f" {mean_se[0]:.1f} ± {mean_se[1]:.1f} |" if mean_se else " - |"
        lines.append(line)
    return "\n".join(lines + _gain_line(results.get("gain")) + decisions_lines(decisions))


def segmentation_table(results, decisions, rows):
    """Table 3: per-class IoU, mIoU, fwIoU, pixel accuracy, one row per stage (%, mean over seeds; mIoU with
    its standard error), the paper's rows for this shift and segmenter beneath."""
    classes = results["classes"]
    seeds = len(results["seeds"])
    over = f"mean over {seeds} seeds; mIoU ± standard error" if seeds > 1 else "1 seed"
    lines = [f"{results['source']} -> {results['target']}: IoU per class, mIoU, fwIoU and pixel accuracy "
             f"(%, {over})", "",
             "| Model | " + " | ".join(classes) + " | mIoU | fwIoU | Pixel acc. |",
             "|---|" + "---|" * (len(classes) + 3)]

    def line(label, row, miou):
        cells = [_percent(row["per_class_iou"].get(name)) for name in classes]
        return (f"| {label} | " + " | ".join(cells)
                + f" | {miou} | {_percent(row['fwiou'])} | {_percent(row['pixel_accuracy'])} |")

    for row in results["table"]:
        lines.append(line(row["model"], row, _mean(row["miou"], row["miou_standard_error"], seeds)))
    published = results.get("paper")
    if published:  # one run each in the paper: no ± there
        for stage, _, label in rows:
            row = published["rows"].get(stage)
            if row is not None:
                lines.append(line(f"paper, {published['table']}: {label}", row, _percent(row["miou"])))
    return "\n".join(lines + _gain_line(results.get("gain"), " in mIoU") + decisions_lines(decisions))


def label_free_table(results, decisions=()):
    """The table of a target without labels (unlabelled_target.py), with how each decision was made."""
    return "\n".join([label_free.markdown_table(results)] + decisions_lines(decisions))


def write(run_dir, title, table, sections, labelled=True):
    """<run_dir>/report.md: `title`, the table, the task's `sections` (lines), TensorBoard's command. Where the
    target is not `labelled`, the report says that no target label exists rather than where they are read."""
    read = ("Target labels are read for the table and the figures only, never in training." if labelled else
            "The target has no labels: every number and choice above was made without one.")
    lines = [f"# {title}", "", table, "", f"Numbers in `results.json`. {read}", ""] + sections
    lines += ["## TensorBoard", "", f"`tensorboard --logdir {run_dir}` (one run per seed and stage).", ""]
    path = os.path.join(run_dir, "report.md")
    files.write_text(path, "\n".join(lines))
    return path
