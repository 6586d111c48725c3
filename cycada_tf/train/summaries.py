"""Keras callbacks that report on a stage while it trains in TensorBoard and in pictures: every loss and
metric of each epoch, images at an interval (each summary with its description), the translation grid, the
feature gate's trace; and `log`, the run's progress line on stderr (progress.py times the run)."""

import sys
import time

import keras
import numpy as np
import tensorflow as tf

from cycada_tf.train import figures


TRAIN_PREFIX = "train/"  # the tag of a value of the training batches: train/<name>; target_test/<name> beside


def log(message):
    """A progress line of the run, on stderr with the time (stdout is for the results table)."""
    print(f"[cycada {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def tag(name):
    """The TensorBoard tag of a value of training (a train_step's epoch mean, a count of training):
    train/<name>, unless `name` already names its group."""
    return name if "/" in name else TRAIN_PREFIX + name


def description(model, name):
    """What a value's summary says in TensorBoard: the stage model's SCALARS entry for it, else the
    interval summaries' (figures.DESCRIPTIONS), else what the value is at least."""
    known = {**getattr(model, "SCALARS", {}), **figures.DESCRIPTIONS}
    return known.get(name) or f"'{name}', as the stage reports it after each epoch (the epoch's mean)."


class TensorBoardSummaries(keras.callbacks.Callback):
    """Writes to `log_dir` after each epoch: every value the stage's train_step reports (the epoch's mean) as a
    scalar, plus `scalars(model)`; every `every_epochs` epochs and after the last one, `periodic(model)` ({tag:
    uint8 image, batch of images, or a number}); and `text` ({tag: markdown}) when training begins. The step of a
    summary is the number of epochs done. Each summary carries its description (`description`); the values of
    training are tagged train/<name> (`tag`), the interval's keep their tags (target_test/accuracy, translations).

    The callables run networks in inference mode outside the train step: they must leave every random state
    of training alone (see figures.translation_grid)."""

    def __init__(self, log_dir, every_epochs=1, scalars=None, periodic=None, text=None):
        super().__init__()
        self.log_dir, self.every_epochs = log_dir, every_epochs
        self.scalars, self.periodic, self.text = scalars, periodic, text or {}
        self.writer = None

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(self.log_dir)
        with self.writer.as_default(step=0):
            for name, markdown in self.text.items():
                tf.summary.text(name, markdown)

    def on_epoch_end(self, epoch, logs=None):
        step = epoch + 1
        values = dict(logs or {})
        if self.scalars is not None:
            values.update(self.scalars(self.model))
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(tag(name), float(value), description=description(self.model, name))
            last = step == self.params.get("epochs") or self.model.stop_training
            if self.periodic is not None and self.every_epochs and (step % self.every_epochs == 0 or last):
                for name, value in self.periodic(self.model).items():
                    value = np.asarray(value)
                    if value.ndim == 0:
                        tf.summary.scalar(name, float(value), description=description(self.model, name))
                    else:
                        tf.summary.image(name, value[None] if value.ndim == 3 else value, max_outputs=8,
                                         description=description(self.model, name))
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()


def joined(*periodics):
    """One `periodic` (TensorBoardSummaries) giving what each of `periodics` gives; None for none."""
    periodics = [p for p in periodics if p is not None]
    if not periodics:
        return None
    return lambda model: {tag: value for periodic in periodics for tag, value in periodic(model).items()}


class TranslationGrid(keras.callbacks.Callback):
    """After each epoch: the translation grid of the fixed test images (x_s, x_t), its rows labelled, as a PNG
    at `path`; the last grid is kept in `latest` for TensorBoard (drawing it a second time would advance
    G_S->T's random state)."""

    def __init__(self, g_st, g_ts, x_s, x_t, path, scale=figures.TRANSLATION_SCALE):
        super().__init__()
        self.g_st, self.g_ts, self.x_s, self.x_t = g_st, g_ts, x_s, x_t
        self.path, self.scale = path, scale
        self.latest = None

    def draw(self):
        grid = figures.translation_grid(self.g_st, self.g_ts, self.x_s, self.x_t)
        self.latest = figures.labelled_translation_grid(grid, self.scale)
        figures.save_png(self.latest, self.path)
        return self.latest

    def on_epoch_end(self, epoch, logs=None):
        self.draw()


class GateTrace(keras.callbacks.Callback):
    """Feature adaptation's gate as it went (stages/feature.py's FeatureAdaptation): the discriminator accuracy
    the gate read at each iteration and f_T's updates in each epoch, drawn by figures.gate_figure for
    TensorBoard (`periodic`, tag "gate") and written to `path` when training ends. It traces this process's
    epochs: a resumed stage's picture starts where it resumed (its epochs keep their numbers)."""

    def __init__(self, path=None):
        super().__init__()
        self.path = path
        self.accuracies, self.epochs, self.steps, self.updates = [], [], [], []

    def on_train_begin(self, logs=None):
        self.accuracies, self.epochs, self.steps, self.updates = [], [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch + 1)
        self.steps.append(0)

    def on_train_batch_end(self, batch, logs=None):
        # The mean of the iterations in the gate's window (feature.GatedModel.window_accuracy): the slots of the
        # ring buffer filled so far.
        filled = min(int(self.model.steps_seen.numpy()), self.model.gate_window)
        self.accuracies.append(float(np.mean(self.model.recent_accuracies.numpy()[:filled])))
        self.steps[-1] += 1

    def on_epoch_end(self, epoch, logs=None):
        self.updates.append(int(self.model.epoch_updates.numpy()))  # before GateStop resets it

    def picture(self):
        done = len(self.updates)
        return figures.gate_figure(self.accuracies[:sum(self.steps[:done])], self.epochs[:done], self.updates,
                                   self.steps[:done], self.model.gate, self.model.gate_window)

    def periodic(self, model):
        return {"gate": self.picture()}

    def on_train_end(self, logs=None):
        if self.path and self.updates:
            figures.save_png(self.picture(), self.path)


def _values(log_dir):
    """(step, summary value) of every summary in a log directory's event files."""
    import glob

    from tensorflow.core.util import event_pb2
    for path in sorted(glob.glob(f"{log_dir}/events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                yield event.step, value


def read_events(log_dir):
    """What a log directory holds, read back from its event files: {tag: [(step, value)]}, a value being a
    float for a scalar, a string for a text summary and a list of decoded uint8 images (height, width, channels)
    for an image summary."""
    found = {}
    for step, value in _values(log_dir):
        plugin = value.metadata.plugin_data.plugin_name
        if plugin not in ("images", "text", "scalars"):  # the hparams plugin's (tensorboard_views.py)
            continue
        tensor = tf.make_ndarray(value.tensor)
        if plugin == "images":  # [width, height, PNG, PNG, ...]
            item = [tf.io.decode_png(png).numpy() for png in tensor[2:]]
        elif plugin == "text":
            item = tensor.item().decode()
        else:
            item = float(tensor)
        found.setdefault(value.tag, []).append((step, item))
    return found


def read_descriptions(log_dir, plugin="images"):
    """{tag: description} of the `plugin`'s summaries (images, scalars) in a log directory, as TensorBoard shows
    it (the writer records a tag's metadata with its first summary only)."""
    found = {}
    for _, value in _values(log_dir):
        if value.metadata.plugin_data.plugin_name == plugin and value.metadata.summary_description:
            found[value.tag] = value.metadata.summary_description
    return found
