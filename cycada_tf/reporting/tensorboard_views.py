"""TensorBoard's views of a whole run, written with its table: each stage's settings as text in its run
(seed_<k>/<stage>), and in each seed's run (seed_<k>) the config and the decisions made without target labels
as text, with the hparams plugin's view of the seeds: their settings and decisions beside their final scores."""

import dataclasses
import glob
import os

import tensorflow as tf
from tensorboard.plugins.hparams import api as hp

from cycada_tf.stages import registry

# Where a run is written and which seeds it has: not settings of one seed's trial.
NOT_HPARAMS = ("data_dir", "run_dir", "export_dir", "worker_dir", "seeds", "verbose", "summary_every_epochs")
# The scores the hparams view shows per seed: the target test score of a labelled target (the task's score
# key), else the label-free criteria (unlabelled_target.py).
LABEL_FREE_SCORES = ("information_maximisation", "entropy")
SCORE_DESCRIPTIONS = {
    "accuracy": "accuracy on the target test split (target labels read for reporting only)",
    "miou": "mean IoU on the target test split (target labels read for reporting only)",
    "information_maximisation": "information maximisation of the predictions on the target images, in nats "
                                "(no target label: higher is confident and spread over the classes)",
    "entropy": "mean entropy of the predictions on the target images, in nats (no target label)",
}


def _value(value):
    return ", ".join(str(v) for v in value) if isinstance(value, (tuple, list)) else value


def config_text(config, prefix=None):
    """The flags of `config` as a markdown table; only those named `prefix`* when given."""
    rows = [(f.name, _value(getattr(config, f.name))) for f in dataclasses.fields(config)
            if prefix is None or f.name.startswith(prefix)]
    return "\n".join(["| flag | value |", "|---|---|"] + [f"| --{name} | {value} |" for name, value in rows])


def stage_text(config, stage):
    """{tag: markdown} of a stage's run: its own flags (--<stage>_*); the whole config is in its seed's run."""
    return {"config": f"Stage '{stage}' of {config.source} -> {config.target}. Its flags (the run's whole "
                      "config: the text of the seed's run):\n\n" + config_text(config, f"{stage}_")}


def decisions_text(results, config=None):
    """A seed's decisions made without target labels, in markdown: each one's criterion, values and choice,
    and what the target test labels would have picked (reporting only). A direction `config` gives
    (--pixel_direction) is said to be given, its criterion only recorded."""
    lines = []
    for name, get in registry.DECISIONS:
        decision = get(results)
        if not decision:
            continue
        criterion = decision.get("criterion_name", "information maximisation")
        values = ", ".join(f"{k} {v:.4g}" for k, v in decision.get("criterion", {}).items())
        given = name == "pixel direction" and config is not None and config.pixel_direction != "auto"
        how = f"given by --pixel_direction ({criterion} recorded: {values})" if given else f"by {criterion} ({values})"
        lines.append(f"- **{name}**: `{decision['choice']}`, {how}"
                     + ("; no adapted model beat the source model, so the source model is kept"
                        if decision.get("kept_source") else "")
                     + (f"; the target test labels would have picked `{decision['oracle_choice']}`"
                        if "oracle_choice" in decision else ""))
    return "\n".join(lines) or "No decision made from data in this run."


def hparams_of(config, seed, results):
    """A seed's hparams: source, target, seed, every flag whose value is not the task's default, and the
    choice of each decision."""
    defaults = type(config)()
    values = {"source": config.source, "target": config.target, "seed": int(seed)}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name not in NOT_HPARAMS and field.name not in values and value != getattr(defaults, field.name):
            values[field.name] = _value(value)
    for name, get in registry.DECISIONS:
        if get(results):
            values[f"decision: {name}"] = get(results)["choice"]
    return {k: (v if isinstance(v, (bool, int, float, str)) else str(v)) for k, v in values.items()}


def scores_of(results, score_key, stages):
    """{metric tag: value} of a seed: final/<score> of its final model, stages/<stage>/<score> of each stage."""
    keys = (score_key,) if any(score_key in results.get(s, {}) for s in stages) else LABEL_FREE_SCORES
    found = {}
    final = results.get("final")
    for key in keys:
        if final and key in results.get(final["choice"], {}):
            found[f"final/{key}"] = float(results[final["choice"]][key])
        for stage in stages:
            if isinstance(results.get(stage, {}).get(key), (int, float)):
                found[f"stages/{stage}/{key}"] = float(results[stage][key])
    return found


def _fresh_writer(directory):
    """A summary writer for `directory`, its earlier event files (of a run made before) removed: TensorBoard
    would show one session per run of the command."""
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        os.remove(path)
    return tf.summary.create_file_writer(directory)


def write(run_dir, config, per_seed, score_key, stages):
    """Each seed's text and hparams summaries under <run_dir>/seed_<k>, and the hparams plugin's experiment
    (its hparams and metrics) in <run_dir> itself. `per_seed`: {seed: {stage: results, "final": decision}};
    `stages`: the stage names in the pipeline's order."""
    metrics, hparams = {}, {}
    for seed, results in per_seed.items():
        scores = scores_of(results, score_key, stages)
        values = hparams_of(config, seed, results)
        metrics.update(dict.fromkeys(scores))
        hparams.update(values)
        writer = _fresh_writer(os.path.join(run_dir, f"seed_{seed}"))
        with writer.as_default(step=0):
            tf.summary.text("config", config_text(config), description="The flags of the run.")
            tf.summary.text("decisions", decisions_text(results, config),
                            description="What the run chose from data without target labels, and how.")
            hp.hparams(values, trial_id=f"seed_{seed}")
            for tag, value in scores.items():
                key = tag.rsplit("/", 1)[1]
                tf.summary.scalar(tag, value, description=f"{tag.split('/')[-2].replace('final', 'final model')}"
                                                          f": {SCORE_DESCRIPTIONS.get(key, key)}")
        writer.close()
    writer = _fresh_writer(run_dir)  # the run "." of TensorBoard: the hparams plugin's experiment
    with writer.as_default():
        hp.hparams_config(
            hparams=[hp.HParam(name) for name in hparams],
            metrics=[hp.Metric(tag, display_name=tag, description=SCORE_DESCRIPTIONS.get(tag.rsplit("/", 1)[1]))
                     for tag in metrics])
    writer.close()
