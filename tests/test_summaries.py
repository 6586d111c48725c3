"""The reporting callbacks and figures: TensorBoard summaries read back from their event files, the progress
line, translation grids and confusion matrices. (tests/test_end_to_end.py checks them on a real run.)"""

import re
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

from cycada_tf.config import experiment_config as config_lib
from cycada_tf.train import figures, progress, summaries
from cycada_tf.stages.source import TaskStage


def _fit(callbacks, epochs, stop_at=None):
    """A tiny TaskStage fitted for `epochs` epochs of 2 steps (stopped after epoch `stop_at`, if given)."""
    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model = TaskStage(net)
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    x = np.random.RandomState(0).normal(size=(8, 4)).astype(np.float32)
    y = np.arange(8, dtype=np.int32) % 3

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if stop_at is not None and epoch + 1 == stop_at:
                self.model.stop_training = True

    history = model.fit(x, y, batch_size=4, epochs=epochs, verbose=0, callbacks=[Stop()] + callbacks)
    return model, history


def test_every_metric_is_a_scalar_each_epoch_and_images_come_at_the_interval(tmp_path):
    calls = []

    def periodic(model):
        calls.append(model)
        return {"picture": np.full((5, 7, 3), 200, np.uint8), "batch": np.zeros((2, 4, 4, 1), np.uint8),
                "number": np.float32(0.25)}

    callback = summaries.TensorBoardSummaries(str(tmp_path), every_epochs=2,
                                              scalars=lambda model: {"extra": 3.0}, periodic=periodic)
    model, history = _fit([callback], epochs=5)
    events = summaries.read_events(str(tmp_path))
    # the stage's own metrics, the epoch means fit reports, at steps 1..5
    for name in ("loss", "accuracy"):
        assert [step for step, _ in events[f"train/{name}"]] == [1, 2, 3, 4, 5]
        np.testing.assert_allclose([v for _, v in events[f"train/{name}"]], history.history[name], rtol=1e-6)
    assert events["train/extra"] == [(step, 3.0) for step in range(1, 6)]
    # images (and numbers) every 2 epochs and after the last one
    assert [step for step, _ in events["picture"]] == [2, 4, 5] and len(calls) == 3 and calls[0] is model
    step, images = events["picture"][0]
    assert len(images) == 1 and images[0].shape == (5, 7, 3) and (images[0] == 200).all()
    assert [image.shape for image in events["batch"][0][1]] == [(4, 4, 1), (4, 4, 1)]
    assert events["number"] == [(2, 0.25), (4, 0.25), (5, 0.25)]


def test_a_stage_stopped_early_still_gets_its_last_images(tmp_path):
    callback = summaries.TensorBoardSummaries(str(tmp_path), every_epochs=5,
                                              periodic=lambda model: {"picture": np.zeros((2, 2, 1), np.uint8)})
    _fit([callback], epochs=10, stop_at=3)
    events = summaries.read_events(str(tmp_path))
    assert [step for step, _ in events["picture"]] == [3]
    assert [step for step, _ in events["train/loss"]] == [1, 2, 3]


def test_zero_interval_writes_scalars_only(tmp_path):
    callback = summaries.TensorBoardSummaries(str(tmp_path), every_epochs=0,
                                              periodic=lambda model: pytest.fail("no images at interval 0"))
    _fit([callback], epochs=2)
    assert sorted(summaries.read_events(str(tmp_path))) == ["train/accuracy", "train/loss"]


def test_progress_logs_one_line_per_epoch_with_the_time_left():
    lines = []
    _fit([progress.Progress("pixel", lines.append, line_every_s=0)], epochs=3)
    assert len(lines) == 3  # the epochs are too short for a first estimate before the first one ends
    pattern = r"pixel epoch (\d)/3, \d+ s/epoch, ~\d+ s left in the stage: train_accuracy=[\d.e-]+ train_loss=[\d.e-]+$"
    assert [int(re.match(pattern, line).group(1)) for line in lines] == [1, 2, 3], lines
    assert lines[-1].split(", ")[2].startswith("~0 s left")

    lines.clear()
    _fit([progress.Progress("feature", lines.append, may_stop_early=True, line_every_s=0)], epochs=2)
    assert "at most ~" in lines[0]


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_a_stages_first_estimate_comes_10_s_in_and_leaves_out_the_traced_first_step():
    clock, lines = FakeClock(), []
    callback = progress.Progress("pixel", lines.append, now=clock)
    callback.set_params({"epochs": 2, "steps": 100})
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    clock.t = 8.0  # the first step traces and compiles the step function: 8 s
    callback.on_train_batch_begin(1)
    clock.t = 9.0  # then 1 s a step
    callback.on_train_batch_begin(2)
    assert lines == []  # 9 s in: nothing yet
    clock.t = 10.0
    callback.on_train_batch_begin(3)
    assert lines == []  # 10 s in, but two steps timed
    clock.t = 11.0
    callback.on_train_batch_begin(4)
    # 1.00 s a step (not 11 s / 4 steps), 196 steps left
    assert lines == ["pixel: 1.00 s/step over its first 4 steps, ~3.3 min left in the stage"]
    for batch in range(5, 100):
        clock.t += 1.0
        callback.on_train_batch_begin(batch)
    assert len(lines) == 1  # once per stage
    clock.t += 1.0
    callback.on_epoch_end(0, {"loss": 0.5})
    assert lines[-1] == "pixel epoch 1/2, 1.7 min/epoch, ~1.7 min left in the stage: train_loss=0.5"  # 100 s

    lines.clear()  # a stage whose first epoch ends before 10 s: its epoch lines alone
    callback.on_train_begin()
    for epoch in range(2):
        callback.on_epoch_begin(epoch)
        for batch in range(1, 100):
            clock.t += 0.1
            callback.on_train_batch_begin(batch)
        clock.t += 0.1
        callback.on_epoch_end(epoch)
    assert [line.split(",")[0] for line in lines] == ["pixel epoch 1/2", "pixel epoch 2/2"]


def test_a_first_step_still_running_is_said_from_a_timer():
    clock, lines = FakeClock(), []
    callback = progress.Progress("pixel", lines.append, now=clock, first_estimate_s=0.05)
    callback.set_params({"epochs": 1, "steps": 10})
    callback.on_train_begin()
    clock.t = 12.0
    for _ in range(100):
        if lines:
            break
        time.sleep(0.05)
    callback.on_train_end()
    assert lines == ["pixel: its first step is still running after 12 s (it traces and compiles the step function)"]

    lines.clear()  # a first step that ends in time: no such line
    callback = progress.Progress("pixel", lines.append, now=clock, first_estimate_s=0.2)
    callback.set_params({"epochs": 1, "steps": 10})
    callback.on_train_begin()
    callback.on_epoch_begin(0)
    callback.on_train_batch_begin(1)
    time.sleep(0.4)
    assert lines == []
    callback.on_train_end()


def test_the_run_clock_counts_later_stages_and_seeds():
    """Seeds 0 and 1, stages source (prior cost 1) and pixel (10): before pixel has run, its time is the prior
    at the rate the timed stages took (an estimate); once it has, a later seed repeats what each stage took."""
    clock = FakeClock()
    run = progress.RunClock([(0, "source"), (0, "pixel"), (1, "source"), (1, "pixel")],
                            {"source": 1.0, "pixel": 10.0}, now=clock)
    run.start(0, "source")
    clock.t = 5.0
    # source: 5 s in, 5 s left: 10 s, 10 s per unit of prior cost; pixel 100 s, twice; source again 10 s
    assert run.left(stage_left=5.0) == (5.0 + 100.0 + 10.0 + 100.0, True)
    clock.t = 10.0
    run.finish()
    assert run.left() == (100.0 + 10.0 + 100.0, True)
    run.start(0, "pixel")
    clock.t = 30.0
    # pixel: 20 s in, 60 s left: 80 s; seed 1 repeats source (10 s) and pixel (80 s); nothing from the prior
    assert run.left(stage_left=60.0) == (60.0 + 10.0 + 80.0, False)
    clock.t = 90.0
    run.finish()
    run.start(1, "source")
    clock.t = 102.0
    assert run.left(stage_left=0.0) == (80.0, False)  # source took 12 s this time; pixel as seed 0's
    assert run.describe(0.0).startswith("run ~80 s left, until ~")


def test_a_stage_not_yet_timed_counts_as_it_took_before_or_at_its_prior():
    clock = FakeClock()
    run = progress.RunClock([(0, "source"), (0, "pixel"), (1, "source"), (1, "pixel")],
                            {"source": 1.0, "pixel": 10.0}, now=clock)
    run.start(0, "source")
    assert run.left(None) == (None, True) and run.describe(None) == "run: no time left yet (no step timed)"
    clock.t = 10.0
    run.finish()
    run.start(0, "pixel")
    clock.t = 13.0  # pixel's first step still running: 10 s per unit of prior cost, as source took
    assert run.left(None) == (97.0 + 10.0 + 100.0, True)


def test_prior_costs_scale_with_the_epochs_of_each_stage():
    from cycada_tf.stages import pixel, source
    from cycada_tf.stages.base import Stage
    config = config_lib.DigitsConfig(pixel_epochs=4, source_epochs=2)
    newcomer = Stage("newcomer", wire=None)  # no prior, no epochs field
    costs = progress.prior_costs(config, (source.STAGE, pixel.STAGE, newcomer))
    assert costs == {"source": 2 * source.STAGE.prior["digits"], "pixel": 4 * pixel.STAGE.prior["digits"],
                     "newcomer": progress.UNKNOWN_EPOCH_COST}


def test_the_final_choice_costs_more_pixel_epochs_when_the_pixel_stage_is_mixed():
    # its networks train in float32 whatever --precision says, while a mixed-precision pixel epoch is quicker
    from cycada_tf import selection
    assert selection.prior_cost("digits", "mixed_bfloat16") == selection.prior_cost("digits", "mixed_float16")
    assert selection.prior_cost("digits", "mixed_bfloat16") > 1.5 * selection.prior_cost("digits", "float32")
    assert selection.prior_cost("segmentation", "float32") == selection.PRIOR_COST["segmentation"]["float32"]
    assert selection.prior_cost("no_such_task", "float32") is None


@pytest.mark.parametrize("seconds, text", [(0.4, "0 s"), (41, "41 s"), (288, "4.8 min"), (7200, "2.0 h")])
def test_durations_read_naturally(seconds, text):
    assert progress.format_duration(seconds) == text


def test_translation_grid_rows_are_the_papers(tmp_path):
    x_s = tf.fill((3, 4, 4, 1), -1.0)  # black
    x_t = tf.fill((3, 4, 4, 1), 1.0)   # white
    g_st = lambda x, training: x * 0.0  # noqa: E731 - grey: (0 + 1) * 127.5 rounds to 128
    g_ts = lambda x, training: -x       # noqa: E731
    grid = figures.translation_grid(g_st, g_ts, x_s, x_t)
    assert grid.shape == (6 * 4, 3 * 4, 1) and grid.dtype == np.uint8
    # rows: x_s, G_ST(x_s), G_TS(G_ST(x_s)), x_t, G_TS(x_t), G_ST(G_TS(x_t))
    assert [int(grid[4 * r, 0, 0]) for r in range(6)] == [0, 128, 128, 255, 0, 128]
    path = str(tmp_path / "grid.png")
    figures.save_png(grid, path, scale=2)
    from PIL import Image
    assert Image.open(path).size == (2 * 12, 2 * 24)


def test_confusion_matrices_are_normalised_per_true_class():
    counts = np.array([[3, 1, 0], [0, 0, 0], [2, 2, 4]])
    np.testing.assert_allclose(figures.row_normalized(counts),
                               [[0.75, 0.25, 0.0], [0.0, 0.0, 0.0], [0.25, 0.25, 0.5]])
    picture = figures.confusion_figure([("before", counts), ("after", np.eye(3, dtype=int))], ["a", "b", "c"])
    assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[-1] == 3
    assert picture.shape[1] > picture.shape[0]  # two panels side by side
    assert picture.std() > 10  # drawn, not blank


def _dark_rows(picture):
    """The rows of a picture that hold any dark pixel (text)."""
    return np.flatnonzero((picture.reshape(picture.shape[0], -1) < 100).any(axis=1))


def test_translation_grid_carries_its_row_labels():
    grid = np.full((6 * 4, 3 * 4, 3), 200, np.uint8)
    picture = figures.labelled_translation_grid(grid, scale=2)
    height, width, _ = picture.shape
    margin = width - 2 * 12
    assert height == 2 * 24 and margin > 40  # the labels' margin, left of the grid at twice its size
    assert (picture[:, margin:] == 200).all()
    labels = picture[:, :margin]
    assert (labels == 255).mean() > 0.5  # black text on white
    # one label per row: text in each of the six rows of 8 pixels
    assert sorted(set(_dark_rows(labels) // 8)) == list(range(6))


def test_prediction_figure_titles_its_columns_keeps_a_column_for_a_stage_not_run_and_has_a_legend():
    classes = ["road", "car"]
    images = np.zeros((2, 8, 16, 3), np.float32)
    labels = np.zeros((2, 8, 16), np.int64)
    labels[:, :, :4] = 255
    predictions = [("source only", np.ones((2, 8, 16), np.int64)), ("pixel only", None)]
    picture = figures.segmentation_overlays(images, labels, predictions, classes, separator=2, scale=2)
    width = 4 * 2 * 16 + 3 * 2 * 2  # image, ground truth, two predictions, 2-pixel gaps, all twice
    assert picture.shape[1] == width and picture.dtype == np.uint8
    grid_rows = np.flatnonzero((picture[:, :32] == 128).all(axis=(1, 2)))  # the mid-grey test images
    top, bottom = grid_rows[0], grid_rows[-1] + 1
    assert bottom - top == 2 * 2 * 8 and top > 10  # a title band above the grid
    for column in range(4):  # a title over every column
        band = picture[:top, column * 36:column * 36 + 32]
        assert (band < 100).any(), column
    columns = [picture[top:bottom, column * 36:column * 36 + 32] for column in range(4)]
    assert (columns[1][:, :8] == figures.IGNORED_COLOUR).all()  # ignored: black
    assert (columns[1][:, 8:] == figures.CITYSCAPES_COLOURS["road"]).all()
    assert (columns[2] == figures.CITYSCAPES_COLOURS["car"]).all()
    assert (columns[3] == figures.NOT_RUN_COLOUR).all()  # the stage not run keeps its place
    legend = picture[bottom:]
    for colour in (figures.CITYSCAPES_COLOURS["road"], figures.CITYSCAPES_COLOURS["car"]):  # its swatches
        assert (legend == colour).all(axis=-1).sum() > 20, colour


def test_the_gate_figure_shows_a_one_epoch_run():
    picture = figures.gate_figure([0.5, 0.7, 0.65, 0.55], [1], [2], [4], threshold=0.6)
    assert picture.dtype == np.uint8 and picture.shape[-1] == 3

    def has(colour):
        return (np.abs(picture.astype(int) - colour).max(axis=-1) < 40).sum() > 10
    # the iterations above the gate (green), those under it (red), and the epoch's updates as a green bar
    assert has((44, 160, 44)) and has((214, 39, 40))


class _Gate:
    """What GateTrace reads of FeatureAdaptation: its ring buffer of accuracies, its counters and threshold."""

    def __init__(self, window):
        self.gate, self.gate_window = 0.6, window
        self.recent_accuracies = tf.Variable(tf.zeros([window]))
        self.steps_seen = tf.Variable(0, dtype=tf.int64)
        self.epoch_updates = tf.Variable(0, dtype=tf.int64)

    def step(self, accuracy):
        slot = int(self.steps_seen.numpy()) % self.gate_window
        self.recent_accuracies[slot].assign(accuracy)
        self.steps_seen.assign_add(1)
        if accuracy > self.gate:
            self.epoch_updates.assign_add(1)


def test_the_gate_trace_records_what_the_gate_read_and_the_updates_per_epoch(tmp_path):
    model = _Gate(window=2)
    trace = summaries.GateTrace(str(tmp_path / "gate.png"))
    trace.set_model(model)
    trace.on_train_begin()
    for epoch, accuracies in enumerate([(0.5, 0.9, 0.7), (0.2, 0.4, 0.5)]):
        model.epoch_updates.assign(0)
        trace.on_epoch_begin(epoch + 3)  # a resumed stage: its epochs keep their numbers
        for accuracy in accuracies:
            model.step(accuracy)
            trace.on_train_batch_end(0)
        trace.on_epoch_end(epoch + 3)
    # the mean of the last two iterations (the first alone at the start)
    np.testing.assert_allclose(trace.accuracies, [0.5, 0.7, 0.8, 0.45, 0.3, 0.45], atol=1e-6)
    assert trace.epochs == [4, 5] and trace.steps == [3, 3] and trace.updates == [2, 0]
    assert list(trace.periodic(model)) == ["gate"]
    trace.on_train_end()
    from PIL import Image
    assert Image.open(tmp_path / "gate.png").size[0] > 300


def test_every_image_summary_has_its_description(tmp_path):
    picture = np.zeros((4, 4, 3), np.uint8)
    callback = summaries.TensorBoardSummaries(str(tmp_path), periodic=lambda model: {
        tag: picture for tag in figures.DESCRIPTIONS})
    _fit([callback], epochs=2)
    assert summaries.read_descriptions(str(tmp_path)) == figures.DESCRIPTIONS


def test_translated_records_say_how_far_they_are_while_written(tmp_path, monkeypatch):
    from cycada_tf.data import translated
    monkeypatch.setattr(translated, "PROGRESS_EVERY_S", 0.0)  # a line after every batch
    batches = tf.data.Dataset.from_tensor_slices((tf.zeros((6, 4, 4, 1)), tf.range(6))).batch(4)
    lines, path = [], str(tmp_path / "translated_source")
    translated.write(path, batches, lambda x: x, translated.classification_example, 2, {"test": 1}, {},
                     lines.append, images=6)
    assert translated.count(path) == 12
    written = [re.match(r"translated records: (\d+) of 12 images \((\d+)%\) in \d+ s, ~\d+ s left: ", line)
               for line in lines]
    assert all(written), lines
    # after each batch of each copy, and once at the end
    assert [(int(m.group(1)), int(m.group(2))) for m in written] == [(4, 33), (6, 50), (10, 83), (12, 100),
                                                                      (12, 100)]


def test_a_stages_done_line_names_the_split_of_each_score():
    from cycada_tf.experiments import runner
    line = runner.ended({"seconds": 8.3, "accuracy": 0.5657, "source_test_accuracy": 0.97, "accuracy_t2s": 0.65,
                         "gated_updates": 12})
    assert line == ("done in 8s: target_test_accuracy=0.5657, source_test_accuracy=0.9700, "
                    "target_test_accuracy_t2s=0.6500")
    assert runner.ended({"skipped": "the target has no labels"}) == "skipped: the target has no labels"
