"""What every stage shares: the replica-local view of the loss, the model base class that names its optimizers
and builds them (StageModel), what a stage hands the runner (Plan) and its record (Stage): everything the rest
of the code knows of a stage."""

import abc
import dataclasses
from typing import Callable, Optional, Union

import keras
import tensorflow as tf

from cycada_tf.train import precision as precision_lib


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


class StageModel(keras.Model, metaclass=abc.ABCMeta):
    """A stage's keras.Model: compile sets its optimizers, OPTIMIZERS names them (its attributes, in
    compile's order), and build_optimizers builds each on the variables it trains."""

    OPTIMIZERS = ("optimizer",)

    @abc.abstractmethod
    def build_optimizers(self):
        """Build every optimizer of OPTIMIZERS on its variables (build_optimizer), before a checkpoint
        restores their slots."""

    def optimizers(self):
        """{name: optimizer} of OPTIMIZERS, what a checkpoint of the stage saves beside the model."""
        return {name: getattr(self, name) for name in self.OPTIMIZERS}


class OneNetModel(StageModel):
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
    """model.compile as training compiles a stage under `precision` (the dtype policy its networks were built
    with): the optimizers wrapped for loss scaling under mixed_float16 and built on their variables, XLA per
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


def reads_nothing_translated(trial):
    """A stage whose model is given target images as they are."""
    return False


@dataclasses.dataclass(frozen=True)
class Stage:
    """A stage as the rest of the code knows it, its one home (stages/__init__.py registers it).

    name: its module's name under stages/, its directory under seed_<k>/ and its --stages entry;
    wire: Trial (the task, the config and what earlier stages left) -> Plan, or its results directly when
        there is nothing to train;
    needs: config -> the earlier stages it reads;
    label: its row of the results table (a str, or config -> str); None: no row;
    key_suffix: what its row's key of done.json adds to the task's score key;
    epochs: the config field of its epochs (None: one unit of work);
    prior: {task name: relative cost of one epoch} (a pixel epoch is 1), progress.py's first estimate;
    candidate: its rank among the final model's candidates (selection.final_model, export), from the source
        model up to the most adapted; None: never the final model;
    reads_translated: Trial -> whether its model is given G_T->S(x_t) rather than the target image;
    reads_unlabelled_target: whether it reads the target's unlabelled training images (--target_train_split);
    crop: the config field of its training crop size where it has its own (segmentation), else None;
    decision: (name, key): the decision it makes from data, found under `key` in its results, or None;
    report: (run_dir, seeds, task name) -> report.md's lines showing its figure, or None;
    flags: the prefix of the flags it alone reads (without effect when it does not run), or ""."""
    name: str
    wire: Callable
    needs: Callable = lambda config: ()
    label: Union[str, Callable, None] = None
    key_suffix: str = ""
    epochs: Optional[str] = None
    prior: dict = dataclasses.field(default_factory=dict)
    candidate: Optional[int] = None
    reads_translated: Callable = reads_nothing_translated
    reads_unlabelled_target: bool = True
    crop: Optional[str] = None
    decision: Optional[tuple] = None
    report: Optional[Callable] = None
    flags: str = ""

    def row_label(self, config):
        """Its row's label in the results table of `config`'s run, or None."""
        return self.label(config) if callable(self.label) else self.label

    def epochs_of(self, config):
        """How many epochs `config` gives it (1 without an epochs field)."""
        return getattr(config, self.epochs) if self.epochs else 1
