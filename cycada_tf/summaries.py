"""Keras callbacks that report on a stage while it trains: TensorBoard summaries (every loss and metric of
each epoch, images at an interval) and the translation grid; and `log`, the run's progress line
(progress.py times the stages and the run)."""

import time

import keras
import numpy as np
import tensorflow as tf

from cycada_tf import figures


def log(message):
    """A progress line of the run, on stdout with the time."""
    print(f"[cycada {time.strftime('%H:%M:%S')}] {message}", flush=True)


class TensorBoardSummaries(keras.callbacks.Callback):
    """Writes to `log_dir` after each epoch: every value the stage's train_step reports (the epoch's mean) as a
    scalar, plus `scalars(model)`; every `every_epochs` epochs and after the last one, `periodic(model)`
    ({tag: uint8 image, batch of images, or a number}). The step of a summary is the number of epochs done.

    The callables run networks in inference mode outside the train step: they must leave every random state
    of training alone (see figures.translation_grid)."""

    def __init__(self, log_dir, every_epochs=1, scalars=None, periodic=None):
        super().__init__()
        self.log_dir, self.every_epochs = log_dir, every_epochs
        self.scalars, self.periodic = scalars, periodic
        self.writer = None

    def on_train_begin(self, logs=None):
        self.writer = tf.summary.create_file_writer(self.log_dir)

    def on_epoch_end(self, epoch, logs=None):
        step = epoch + 1
        values = dict(logs or {})
        if self.scalars is not None:
            values.update(self.scalars(self.model))
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(name, float(value))
            last = step == self.params.get("epochs") or self.model.stop_training
            if self.periodic is not None and self.every_epochs and (step % self.every_epochs == 0 or last):
                for tag, value in self.periodic(self.model).items():
                    value = np.asarray(value)
                    if value.ndim == 0:
                        tf.summary.scalar(tag, float(value))
                    else:
                        tf.summary.image(tag, value[None] if value.ndim == 3 else value, max_outputs=8)
        self.writer.flush()

    def on_train_end(self, logs=None):
        if self.writer is not None:
            self.writer.close()


class TranslationGrid(keras.callbacks.Callback):
    """After each epoch: the translation grid of the fixed test images (x_s, x_t) as a PNG at `path`; the last
    grid is kept in `latest` for TensorBoard (drawing it a second time would advance G_S->T's random state)."""

    def __init__(self, g_st, g_ts, x_s, x_t, path, scale=2):
        super().__init__()
        self.g_st, self.g_ts, self.x_s, self.x_t = g_st, g_ts, x_s, x_t
        self.path, self.scale = path, scale
        self.latest = None

    def draw(self):
        self.latest = figures.translation_grid(self.g_st, self.g_ts, self.x_s, self.x_t)
        figures.save_png(self.latest, self.path, self.scale)
        return self.latest

    def on_epoch_end(self, epoch, logs=None):
        self.draw()


def read_events(log_dir):
    """What a log directory holds, read back from its event files: {tag: [(step, value)]}, a value being a
    float for a scalar and a list of decoded uint8 images (height, width, channels) for an image summary."""
    import glob

    from tensorflow.core.util import event_pb2
    found = {}
    for path in sorted(glob.glob(f"{log_dir}/events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                if value.metadata.plugin_data.plugin_name == "images":  # [width, height, PNG, PNG, ...]
                    item = [tf.io.decode_png(png).numpy() for png in tensor[2:]]
                else:
                    item = float(tensor)
                found.setdefault(value.tag, []).append((event.step, item))
    return found
