"""Task model training, Eq. 1: the source model f_S; the target model f_T on translated source images
(stages/target.py) and the target-trained oracle (stages/oracle.py) are this stage with other data."""

import keras
import tensorflow as tf

from cycada_tf.train import losses
from cycada_tf.stages.base import Plan, Stage, StageModel, build_optimizer, replica_scale


class TaskStage(StageModel):
    """Trains a classifier `net` with L_task (Eq. 1) on (image, label) batches; a segmenter on (image, label
    map) batches with ignore_label (255) marking the pixels that count nowhere."""

    # What TensorBoard says beside each value train_step reports (summaries.TensorBoardSummaries).
    SCALARS = {"loss": "L_task (Eq. 1): the cross-entropy of the stage's network on its labelled training "
                       "batches, the epoch's mean.",
               "accuracy": "Accuracy on the labelled training batches of the epoch (not the target test split: "
                           "that is target_test/)."}

    def __init__(self, net, ignore_label=None, **kwargs):
        super().__init__(**kwargs)
        self.net = net
        self.ignore_label = ignore_label
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy]

    def call(self, x, training=False):
        return self.net(x, training=training)

    def build_optimizers(self):
        build_optimizer(self.optimizer, self.net.trainable_variables)  # before a checkpoint restores it

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            logits = self.net(x, training=True)
            loss = self._task_loss(y, logits)
            scaled = replica_scale(loss, self.optimizer)
        variables = self.net.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        self.loss_tracker.update_state(loss)
        self._update_accuracy(y, logits)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data
        logits = self.net(x, training=False)
        self.loss_tracker.update_state(self._task_loss(y, logits))
        self._update_accuracy(y, logits)
        return {m.name: m.result() for m in self.metrics}

    def _task_loss(self, y, logits):
        # With an ignore label each replica averages over its own labelled pixels, so under a multi-replica
        # strategy the step's loss is the mean of the replicas' means, not of all pixels (equal when every
        # crop is fully labelled, as in the embedded domains).
        if self.ignore_label is None:
            return losses.task_loss(y, logits)
        return losses.task_loss(y, logits, ignore_label=self.ignore_label)

    def _update_accuracy(self, y, logits):
        if self.ignore_label is None:
            self.accuracy.update_state(y, logits)
        else:  # pixel accuracy over the labelled pixels
            keep = tf.not_equal(y, self.ignore_label)
            self.accuracy.update_state(tf.where(keep, y, 0), logits, sample_weight=tf.cast(keep, tf.float32))


def build(task, net, stage="source"):
    """A task stage's model training `net` and its optimizer: what training and tools/benchmark.py build. The
    model computes in `net`'s dtype policy."""
    return (TaskStage(net, ignore_label=task.ignore_label, name=f"{stage}_stage", dtype=net.dtype_policy),
            (task.optimizer("task", decayed=True),))


def task_plan(trial, stage, dataset, steps, epochs, init=None, view=None):
    """A task network (from `init`'s weights, else from scratch) trained with L_task on `dataset`; its
    TensorBoard shows its target test scores as it reads target images (through `view`)."""
    task = trial.task
    keras.utils.set_random_seed(trial.seed)
    net = task.network(init, dtype=trial.dtype)
    return Plan(*build(task, net, stage), dataset, epochs, steps, outputs={"f": net},
                periodic=task.test_summaries(net, view), result=lambda logs: task.scores(net, "target", translate=view))


def labelled_plan(trial, stage, domain, epochs):
    """A task network trained from scratch on the labelled training split of `domain`."""
    c, task = trial.config, trial.task
    dataset = task.inputs(domain, "train", batch_size=c.source_batch_size, shuffle=True, seed=trial.seed,
                          repeat=True, drop_remainder=True)
    steps = max(1, task.count(domain, "train") // c.source_batch_size)
    return task_plan(trial, stage, dataset, steps, epochs)


def step_schedule(total, pass_steps):
    """(epochs, steps per epoch) of exactly `total` iterations (--source_steps) in equal epochs of about
    `pass_steps` each: the fewest epochs, no fewer than total / pass_steps, whose length divides `total`; a
    ValueError naming the flag when no such epoch is at least half a pass."""
    epochs = max(1, -(-total // max(pass_steps, 1)))
    while total % epochs and total // (epochs + 1) >= pass_steps / 2:
        epochs += 1
    if total % epochs:
        rounded = total // epochs * epochs
        raise ValueError(f"--source_steps={total}: does not split into equal epochs of about a pass ({pass_steps} "
                         f"iterations); e.g. --source_steps={rounded} ({epochs} epochs of {rounded // epochs})")
    return epochs, total // epochs


def wire(trial):
    plan = labelled_plan(trial, "source", "source", trial.config.source_epochs)
    if trial.config.source_steps:
        plan.epochs, plan.steps = step_schedule(trial.config.source_steps, plan.steps)
    net, scores = plan.outputs["f"], trial.task.scores
    plan.result = lambda logs: {**scores(net, "source", prefix="source_test_"), **scores(net, "target")}
    return plan


STAGE = Stage("source", wire, label="Source only", epochs="source_epochs",
              prior={"digits": 0.015, "segmentation": 0.1}, candidate=0,
              reads_unlabelled_target=False)
