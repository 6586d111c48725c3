"""A stage for tests/test_dummy_stage.py, copied there as cycada_tf/stages/dummy.py: the source model copied
as it is, with its own row in the results table. Nothing to train: its wiring returns its results."""

import shutil

from cycada_tf.stages.base import Stage


def wire(trial):
    """Copy the source stage's f and score it on the target's evaluation split."""
    shutil.copyfile(trial.weights("source"), trial.weights("dummy", written=True))
    return trial.task.scores(trial.network("dummy"), "target")


STAGE = Stage("dummy", wire, needs=lambda config: ("source",), label="Dummy (the source model, copied)",
              prior={"digits": 0.01})
