"""Surviving a crash: each stage's checkpoint (networks, every optimizer, step, epoch and the stage's own
state), written at the end of each epoch whose weights are all finite; the stop on a non-finite loss or weight;
the run directory's config check, which lets a learning rate change on request (--accept_lr_change) and keeps
the change in config.json's history."""

import json
import math
import os
import shutil
import time

import keras
import tensorflow as tf

from cycada_tf.config import experiment_config as config_lib
from cycada_tf.train import atomic_files as files

CONFIG_FILE = "config.json"
HISTORY = "history"  # config.json's list of accepted flag changes (not a flag)
UNFINISHED = "_temp"  # the suffix of a checkpoint that tf.train.CheckpointManager has not finished writing
KEEP_CHECKPOINTS = 2  # the one being written never replaces the last good one until it is complete


CONTINUE = ("Lower the stage's learning rate (its --*_lr flag) and rerun the same command with "
            "--accept_lr_change to continue from it, or check the input data")


class NonFiniteLoss(ValueError):
    """A loss or metric of a stage became NaN or infinite; the stage stopped before saving anything."""


def is_learning_rate(flag):
    return flag.endswith("_lr")


def check_run_config(config, run_dir, write=True):
    """Store the flags that shape results in <run_dir>/config.json on first use (unless not `write`: a
    multi_worker task other than the chief only checks); refuse a run directory made with other values of
    them, naming each differing flag (the flags that may differ are config_lib.rerun_fields). With
    --accept_lr_change, other learning rates (--*_lr) are accepted: config.json then holds the new values, and
    its history the old ones, when and which flags changed."""
    values = _result_flags(config)
    path = os.path.join(run_dir, CONFIG_FILE)
    if os.path.exists(path):
        with open(path) as handle:
            stored = json.load(handle)
        history = stored.pop(HISTORY, [])
        # A flag added to the project since the run was made has the run's behaviour as its default.
        stored = {**_result_flags(type(config)()), **stored}
        differing = sorted(k for k in set(stored) | set(values) if stored.get(k) != values.get(k))
        accept = getattr(config, "accept_lr_change", False)
        refused = [k for k in differing if not (accept and is_learning_rate(k))]
        if refused:
            detail = ", ".join(f"{'task ' if k == 'task' else f'--{k}='}{values.get(k)} (run directory: "
                               f"{stored.get(k)})" for k in refused)
            hint = (" (add --accept_lr_change to continue with another learning rate)"
                    if any(is_learning_rate(k) for k in refused) else "")
            raise ValueError(f"run directory {run_dir} was made with other flags: {detail}{hint}. Use the "
                             f"same flags to continue it, or another --run_dir for a new run")
        if differing and write:
            history.append({"time": time.strftime("%Y-%m-%d %H:%M:%S"), "accepted": "--accept_lr_change",
                            "changed": {k: {"from": stored.get(k), "to": values.get(k)} for k in differing}})
            files.write_json(path, {**values, HISTORY: history})
        return
    if write:
        files.write_json(path, values)


def remove_unfinished(directory):
    """Remove the <prefix>-<n>_temp directories of checkpoint saves that did not complete in `directory`
    (tf.train.CheckpointManager writes one there, then renames it; a failed save leaves it)."""
    if os.path.isdir(directory):
        for name in os.listdir(directory):
            if name.endswith(UNFINISHED) and os.path.isdir(os.path.join(directory, name)):
                shutil.rmtree(os.path.join(directory, name), ignore_errors=True)


def _result_flags(config):
    rerun = config_lib.rerun_fields(type(config))
    return {k: v for k, v in config_lib.to_json(config).items() if k not in rerun}


def _finite(value):
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return True  # not a number: nothing to check


class StageCheckpoint(keras.callbacks.Callback):
    """Checkpoints `trackables` (networks, optimizers, the stage's own state) under `directory` with the number
    of epochs done and of steps taken, after each epoch whose values are all finite; stops the stage with
    NonFiniteLoss (stage, epoch, step, which value) on the first non-finite one, so the last checkpoint stays
    the last good state. tf.train.CheckpointManager writes a checkpoint completely before it points to it.

    restore() returns the number of epochs done (fit's initial_epoch). Data pipelines are rebuilt from their
    seeds on resume, so a resumed stage sees its data in a new order from the epoch it continues.

    Checkpoints are restored from `directory` and written to `write_directory` (default: the same). Under
    MultiWorkerMirroredStrategy every worker must save (reading distributed variables may take part in
    collectives), but only the chief to the run directory: the others write to their private directory."""

    def __init__(self, stage, directory, log=print, write_directory=None, **trackables):
        super().__init__()
        self.stage, self.directory, self.log = stage, directory, log
        self.write_directory = write_directory or directory
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.checkpoint = tf.train.Checkpoint(epoch=self.epoch, step=self.step, **trackables)
        self.weights = [v for v in trackables.get("variables", ()) if "float" in str(v.dtype)]
        self.optimizers = [t for t in trackables.values() if isinstance(t, keras.optimizers.Optimizer)]
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=KEEP_CHECKPOINTS)
        self.writer = self.manager if self.write_directory == directory else tf.train.CheckpointManager(
            self.checkpoint, self.write_directory, max_to_keep=KEEP_CHECKPOINTS)
        remove_unfinished(self.write_directory)  # a save killed (kill -9) before it completed
        self.last_logs = {}
        self._steps = 0
        self._current_epoch = 0

    @property
    def logs_path(self):
        return os.path.join(self.directory, "last_logs.json")

    @property
    def written_logs_path(self):
        return os.path.join(self.write_directory, "last_logs.json")

    def restore(self):
        if self.manager.latest_checkpoint is None:
            return 0
        # A checkpoint holds each optimizer's learning rate; the flags' (--accept_lr_change) win over it.
        inner = [getattr(o, "inner_optimizer", o) for o in self.optimizers]  # under a LossScaleOptimizer
        rates = [(o, float(o.learning_rate)) for o in inner
                 if not isinstance(o._learning_rate, keras.optimizers.schedules.LearningRateSchedule)]
        self.checkpoint.restore(self.manager.latest_checkpoint).assert_existing_objects_matched()
        for optimizer, rate in rates:
            optimizer.learning_rate = rate
        if os.path.exists(self.logs_path):
            with open(self.logs_path) as handle:
                self.last_logs = json.load(handle)
        epochs = int(self.epoch.numpy())
        self.log(f"{self.stage}: resuming from {self.manager.latest_checkpoint} ({epochs} epochs, "
                 f"{int(self.step.numpy())} steps done; data pipelines restart from their seeds)")
        return epochs

    def _check(self, logs, batch=None):
        for name, value in (logs or {}).items():
            if not _finite(value):
                where = f"epoch {self._current_epoch + 1}, step {self._steps}"
                if batch is not None:
                    where += f" (batch {batch + 1} of the epoch)"
                last = self.writer.latest_checkpoint or self.manager.latest_checkpoint
                raise NonFiniteLoss(
                    f"stage '{self.stage}': non-finite {name} ({float(value)}) at {where}; the last good "
                    f"checkpoint ({last or 'none yet'}) is kept. {CONTINUE}")

    def _check_weights(self, epoch):
        """NonFiniteLoss naming the first weight with a NaN or an infinity: such a state is never saved."""
        for variable in self.weights:
            if not bool(keras.ops.all(keras.ops.isfinite(variable))):
                last = self.writer.latest_checkpoint or self.manager.latest_checkpoint
                name = getattr(variable, "path", variable.name)
                raise NonFiniteLoss(
                    f"stage '{self.stage}': non-finite weights in {name} after epoch {epoch + 1}, "
                    f"step {self._steps}, though its logged values were finite; not saved, the last good "
                    f"checkpoint ({last or 'none yet'}) is kept. {CONTINUE}")

    def on_train_begin(self, logs=None):
        self._steps = int(self.step.numpy())

    def on_epoch_begin(self, epoch, logs=None):
        self._current_epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._steps += 1
        self._check(logs, batch)

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs)
        self._check_weights(epoch)
        self.epoch.assign(epoch + 1)
        self.step.assign(self._steps)
        try:
            self.writer.save(checkpoint_number=epoch + 1)
        except BaseException:  # a full disk, an interrupt: the half-written checkpoint goes, the last one stays
            remove_unfinished(self.write_directory)
            raise
        self.last_logs = {k: float(v) for k, v in (logs or {}).items() if _finite(v)}
        files.write_json(self.written_logs_path, self.last_logs)
