"""What every stage shares: the replica-local view of the loss, the optimizers beyond self.optimizer, and
what a stage hands the runner (Plan) and how the runner knows it (Stage)."""

import dataclasses
from typing import Callable, Optional

import keras
import tensorflow as tf

from cycada_tf import precision as precision_lib


def replica_scale(loss, optimizer):
    """What the tape differentiates for `optimizer`. Each replica sees its share of the global batch, and
    gradients are summed across replicas: dividing the replica's mean loss by the number of replicas makes
    the sum the mean over the global batch (with equal shares, which drop_remainder guarantees). Under
    mixed_float16 the optimizer is a LossScaleOptimizer, which multiplies by its loss scale here and divides
    the gradients by it when it applies them (a no-op for any other optimizer)."""
    return optimizer.scale_loss(loss / tf.distribute.get_strategy().num_replicas_in_sync)


def build_optimizer(optimizer, variables):
    """`fit` builds only self.optimizer; any other optimizer must be built on its variables explicitly (inside
    the strategy scope, where the stage itself is built) or Adam's slots fail to be created."""
    if not optimizer.built:
        optimizer.build(variables)
    return optimizer


class OneNetModel(keras.Model):
    """A stage's model that trains every weight of `self.net` with self.optimizer and reports the means in
    `self.trackers` ({name: keras.metrics.Mean}); subclasses set both and write train_step."""

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, x, training=False):
        return self.net(x, training=training)

    def build_optimizers(self):
        build_optimizer(self.optimizer, self.net.trainable_variables)


def compile(model, optimizers, precision, jit_compile):
    """model.compile as training compiles a stage under `precision` (whose policy built its networks): the
    optimizers wrapped for loss scaling under mixed_float16 and built on their variables, XLA per
    `jit_compile` (auto, true, false)."""
    xla = precision_lib.use_xla(jit_compile, tf.distribute.get_strategy())
    model.compile(*(precision_lib.optimizer(o, precision) for o in optimizers), jit_compile=xla,
                  auto_scale_loss=False)
    model.build_optimizers()  # before a checkpoint restores them
    return model


@dataclasses.dataclass
class Plan:
    """What a stage's wiring hands the runner to train (runner.fit): the stage's keras.Model with the
    optimizers to compile it with (the runner wraps them for --precision, builds them, restores the stage's
    checkpoint and fits), its data and length, and what to save and report after.

    callbacks: the stage's own (besides the runner's progress line, TensorBoard and checkpoint);
    scalars / periodic: what TensorBoard shows besides the losses (summaries.TensorBoardSummaries);
    state: more tf objects for the checkpoint; done: a callable telling from the restored state that the
    stage needs no more epochs; outputs: {name: network} saved as <stage>/<name>.weights.h5;
    result: logs of the last epoch -> the stage's results (its done.json)."""
    model: keras.Model
    optimizers: tuple
    dataset: tf.data.Dataset
    epochs: int
    steps: int
    outputs: dict
    result: Callable
    callbacks: list = dataclasses.field(default_factory=list)
    scalars: Optional[Callable] = None
    periodic: Optional[Callable] = None
    may_stop_early: bool = False
    state: dict = dataclasses.field(default_factory=dict)
    done: Optional[Callable] = None


@dataclasses.dataclass(frozen=True)
class Stage:
    """A stage as the runner sees it: its name (its directory under seed_<k>/, its --stages entry), the
    function wiring it from a Trial (the task, the config and what earlier stages left) into a Plan, or into
    its results directly when there is nothing to train, the earlier stages it reads (of a config), and
    whether its model may be the run's final model (a candidate of selection.final_model)."""
    name: str
    wire: Callable
    needs: Callable = lambda config: ()
    candidate: bool = False
