"""Where a run's time goes: <run_dir>/timing.json, in seconds.

For each seed and stage: `wire` (building the stage: its networks, datasets and records), `compile` (the
optimizers, the step and the checkpoint's restore), `first_step` (the first train step, which traces and
compiles the step function; `tracing` is it less a later step's mean time), `training` (every other step),
`callbacks.<name>` (what each callback does between steps and epochs: evaluation, figures, summaries,
checkpoints), `fit_other` (the rest of Keras' fit), `save_weights`, `result` (the stage's closing numbers)
and `total`. For each seed, `final_choice`; for the run, `data` and `report` (results, report and export).
A resumed run keeps the timings of the stages an earlier process ran."""

import contextlib
import os
import time

import keras

from cycada_tf.train import atomic_files as files

FILE = "timing.json"


class StageTimer:
    """The phases of one stage's time (seconds by phase name); `now`: the clock, in seconds."""

    def __init__(self, now=time.monotonic):
        self.phases, self.steps, self.now = {}, 0, now
        self._mark = None  # (marker index, hook, time) of the last marker reached
        self._step_start = None  # when the step in flight began (the last marker's on_train_batch_begin)
        self.fit_start = None  # when fit was called

    def add(self, name, seconds):
        self.phases[name] = self.phases.get(name, 0.0) + seconds

    @contextlib.contextmanager
    def phase(self, name):
        start = self.now()
        try:
            yield
        finally:
            self.add(name, self.now() - start)

    def around(self, callbacks):
        """`callbacks` with a marker before, between and after them: the time between two markers in one
        hook is the callback's between them, the time from the last marker's on_epoch_begin to the first's
        on_epoch_end the epoch's steps."""
        names = [type(callback).__name__ for callback in callbacks]
        markers = [_Marker(self, index, names) for index in range(len(callbacks) + 1)]
        return [item for pair in zip(markers, callbacks) for item in pair] + [markers[-1]]

    def record(self):
        """The phases, rounded, with `tracing` (the first step less a later step's mean) and `steps`."""
        phases = {name: round(seconds, 2) for name, seconds in self.phases.items()}
        if "first_step" in self.phases and self.steps > 1:
            mean_step = self.phases.get("training", 0.0) / (self.steps - 1)
            phases["tracing"] = round(max(0.0, self.phases["first_step"] - mean_step), 2)
        if self.steps:
            phases["steps"] = self.steps
        return phases


class _Marker(keras.callbacks.Callback):
    """One of StageTimer.around's markers: notes when each hook reaches it. A step is timed from the last
    marker's on_train_batch_begin to the first marker's next on_train_batch_begin or on_epoch_end, so the
    batch-end hooks of a callback that has them count in the steps: a marker with a batch-end hook would stop
    Keras' asynchronous dispatch of the steps' logs (what fit does when no callback has one)."""

    HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin")

    def __init__(self, timer, index, names):
        super().__init__()
        self.timer, self.index, self.names = timer, index, names
        for hook in self.HOOKS:
            setattr(self, hook, self._noting(hook))

    def _noting(self, hook):
        def note(*args, **kwargs):
            timer = self.timer
            now = timer.now()
            previous = timer._mark
            if self.index > 0 and previous is not None and previous[:2] == (self.index - 1, hook):
                timer.add(f"callbacks.{self.names[self.index - 1]}", now - previous[2])
            if self.index == 0:
                if hook == "on_train_begin" and timer.fit_start is not None:
                    timer.add("fit_setup", now - timer.fit_start)
                if hook in ("on_train_batch_begin", "on_epoch_end") and timer._step_start is not None:
                    timer.steps += 1  # the step in flight has ended
                    timer.add("first_step" if timer.steps == 1 else "training", now - timer._step_start)
                    timer._step_start = None
            if self.index == len(self.names) and hook == "on_train_batch_begin":
                timer._step_start = now
            timer._mark = (self.index, hook, timer.now())
        return note


class RunTiming:
    """timing.json of a run: StageTimers by seed and stage, and the seeds' and the run's own phases."""

    def __init__(self, run_dir):
        self.path = os.path.join(run_dir, FILE)
        self.seeds, self.run = {}, {}

    def stage(self, seed, stage):
        timer = StageTimer()
        self.seeds.setdefault(str(seed), {})[stage] = timer
        return timer

    @contextlib.contextmanager
    def phase(self, name, seed=None):
        """Times the block as the run's phase `name`, or seed `seed`'s."""
        start = time.monotonic()
        try:
            yield
        finally:
            seconds = round(time.monotonic() - start, 2)
            if seed is None:
                self.run[name] = round(self.run.get(name, 0.0) + seconds, 2)
            else:
                self.seeds.setdefault(str(seed), {})[name] = seconds

    def write(self):
        """timing.json: this process's timings over those an earlier process of the run wrote."""
        stored = files.read_json(self.path) or {}
        seeds = stored.get("seeds", {})
        for seed, entries in self.seeds.items():
            seeds.setdefault(seed, {}).update({name: value.record() if isinstance(value, StageTimer) else value
                                               for name, value in entries.items()})
        files.write_json(self.path, {"seeds": seeds, "run": {**stored.get("run", {}), **self.run}})
