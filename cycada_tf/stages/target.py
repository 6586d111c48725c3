"""The target model f_T of CyCADA pixel only: the task network trained with L_task (Eq. 1, stages/source.py)
on translated source images with their source labels.

In the paper's direction (--pixel_direction=s2t) f_T learns from G_S->T(X_S) and reads target images as they
are. In the reverse direction (t2s) target images are first mapped into the source domain by G_T->S, and f_T
learns from source images that went the same way, G_T->S(G_S->T(X_S)), so it is trained on exactly the kind
of images (and artifacts) it is given. The translated images are written once as TFRecords
(data/translated.py) by the chief; every other worker reads the chief's."""

from cycada_tf.train import distribute
from cycada_tf.data import pipeline, tfrecord, translated
from cycada_tf.stages import pixel
from cycada_tf.stages.base import Stage
from cycada_tf.stages.source import task_plan
from cycada_tf.train.summaries import log


def write_translated(trial):
    """Write the translated source records (with source labels) and, under t2s, the translated target records
    (without labels: target labels are never read here). Returns the target view: G_T->S under t2s, else
    None."""
    c, task = trial.config, trial.task
    g_st, g_ts = trial.generators()
    direction = trial.direction
    if distribute.is_chief(trial.strategy):
        inputs = {"g_st": tfrecord.sha256_of_file(trial.weights("pixel", "g_st")),
                  "g_ts": tfrecord.sha256_of_file(trial.weights("pixel", "g_ts")),
                  "direction": direction, "copies": c.translations_per_image}
        jobs = [("source", True, c.translations_per_image,
                 (lambda x: g_st(x, training=False)) if direction == "s2t"
                 else (lambda x: g_ts(g_st(x, training=False), training=False)))]
        if direction == "t2s":
            jobs.append(("target", False, 1, lambda x: g_ts(x, training=False)))
        for domain, labels, copies, mapping in jobs:
            path, info = trial.translated_dir(domain), task.translated_info(direction)
            if tfrecord.is_current(path, {**inputs, "labels": labels}):
                continue
            log(f"seed {trial.seed}: writing the translated {domain} training images ({direction}) to {path}")
            split = "train" if labels else "unlabelled"
            # read as the translators were trained (segmentation: at the pixel stage's resolution)
            batches = task.inputs(domain, split, labels=labels, batch_size=translated.BATCH, stage=pixel.STAGE.name)
            translated.write(path, batches, mapping, task.make_translated_example, copies,
                             {**inputs, "labels": labels}, info, log, images=task.count(domain, split))
    distribute.barrier(trial.strategy)
    return g_ts if direction == "t2s" else None


def wire(trial):
    c = trial.config
    view = write_translated(trial)
    dataset, count = trial.task.load_translated(trial.translated_dir("source"), True, trial.seed)
    dataset = pipeline.batch(dataset, c.source_batch_size).prefetch(2)
    return task_plan(trial, "target", dataset, max(1, count // c.source_batch_size), c.target_epochs, view=view)


def reads_translated(trial):
    """Under t2s f_T is given G_T->S(x_t), as it learnt from G_T->S(G_S->T(X_S)) (the feature stage's f_T too)."""
    return trial.direction == "t2s"


STAGE = Stage("target", wire, needs=lambda config: ("pixel",), label="CyCADA pixel only", epochs="target_epochs",
              prior={"digits": 0.065, "segmentation": 0.3}, candidate=1, reads_translated=reads_translated)
