"""The target-trained oracle: the task model of Eq. 1 trained on the labelled target training split. It reads
target labels, so it is reported only: no other stage reads it, and it is never the final model."""

from cycada_tf.stages.base import Stage
from cycada_tf.stages.source import labelled_plan

LABEL, LABELS = "Target only (oracle)", {"segmentation": "Oracle (train on target)"}  # its row; per task


def wire(trial):
    if not trial.task.target_spec.labelled:
        return {"skipped": "the target has no labels"}
    return labelled_plan(trial, "oracle", "target", trial.config.oracle_epochs)


STAGE = Stage("oracle", wire, label=lambda config: LABELS.get(config.TASK, LABEL), epochs="oracle_epochs",
              prior={"digits": 0.023, "segmentation": 0.1}, reads_unlabelled_target=False)
