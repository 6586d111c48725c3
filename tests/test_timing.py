"""timing.json: where a run's time goes. The markers StageTimer puts around a fit's callbacks give each
callback its own time, the first step (tracing) apart from the others, and the tiny whole run's stages add up
to their totals."""

import json
import os

import keras

from cycada_tf.train import timing

STEP_S, EPOCH_HOOK_S, BATCH_HOOK_S, STEPS = 5.0, 20.0, 1.0, 6


class Clock:
    """A clock that moves only when told to."""

    def __init__(self):
        self.time = 100.0

    def __call__(self):
        return self.time

    def sleep(self, seconds):
        self.time += seconds


CLOCK = Clock()


class SlowEpochEnd(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        CLOCK.sleep(EPOCH_HOOK_S)


class SlowBatchBegin(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        CLOCK.sleep(BATCH_HOOK_S)


def test_each_callback_the_first_step_and_the_others_get_their_own_time():
    timer = timing.StageTimer(now=CLOCK)
    around = timer.around([SlowEpochEnd(), SlowBatchBegin()])
    # No marker has a batch-end hook: Keras keeps dispatching the steps' logs asynchronously.
    assert all(type(c).on_train_batch_end is keras.callbacks.Callback.on_train_batch_end
               and "on_train_batch_end" not in vars(c) for c in around)
    callbacks = keras.callbacks.CallbackList(around, model=keras.Sequential())
    callbacks.on_train_begin()
    callbacks.on_epoch_begin(0)
    for step in range(STEPS):  # as model.fit calls them
        callbacks.on_train_batch_begin(step)
        CLOCK.sleep(STEP_S * (4 if step == 0 else 1))  # the first step traces
        callbacks.on_train_batch_end(step, {})
    callbacks.on_epoch_end(0, {})
    callbacks.on_train_end()
    phases = timer.record()
    assert phases == {"steps": STEPS, "first_step": 4 * STEP_S, "training": (STEPS - 1) * STEP_S,
                      "tracing": 3 * STEP_S, "callbacks.SlowEpochEnd": EPOCH_HOOK_S,
                      "callbacks.SlowBatchBegin": STEPS * BATCH_HOOK_S}


def test_a_run_writes_its_timing_and_each_stage_adds_up_to_its_total(tiny_digits_run):
    with open(os.path.join(tiny_digits_run["run_dir"], timing.FILE)) as handle:
        times = json.load(handle)
    assert set(times["run"]) == {"data", "report"}
    seed = times["seeds"]["0"]
    assert set(seed) == {"source", "pixel", "target", "feature", "self_train", "oracle", "final_choice"}
    with open(os.path.join(tiny_digits_run["run_dir"], "results.json")) as handle:
        per_seed = json.load(handle)["per_seed"]["0"]
    for stage, phases in seed.items():
        if stage == "final_choice":
            continue
        assert phases["total"] == per_seed[stage]["seconds"]
        parts = sum(v for k, v in phases.items() if k not in ("total", "tracing", "steps"))
        assert phases["total"] - 2.0 < parts <= phases["total"] + 0.1, (stage, phases)
        assert phases["steps"] > 0 and phases["first_step"] > 0 and phases["training"] > 0
        assert any(name.startswith("callbacks.") for name in phases), stage
