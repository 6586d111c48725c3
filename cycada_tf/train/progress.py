"""What the terminal says while a run trains: for each stage, a first estimate of its time left from its
first steps (about FIRST_ESTIMATE_S seconds in) and a line after its first and last epochs and between them
at most one every EPOCH_LINE_EVERY_S seconds (sub-second epochs are not a screen each); with each, one time left for the
whole run, which counts the stages and seeds still to come.

A stage's time left is its remaining steps at its measured time per step (its first step, which traces and
compiles the step function, left out). The run's time left adds, for each (seed, stage) still to come, the
time the same stage took in an earlier seed of this run; a stage this run has not yet timed gets its prior
cost (its record's prior per epoch, stages/base.Stage, times its epochs) at the seconds per unit of prior
cost that the stages timed so far took, and the line says that part is an estimate. Each stage that finishes
refines it. The runner adds each seed's final model's choice as a unit of its own (selection.PRIOR_COST); the
report, seconds at the end, is not counted."""

import threading
import time

import keras

FIRST_ESTIMATE_S = 10.0  # a stage's first line comes at the first step this long after it started training,
FIRST_ESTIMATE_STEPS = 3  # and with this many steps timed after the first (one alone misleads under load)
EPOCH_LINE_EVERY_S = 10.0  # an epoch's line comes this long after the stage's previous line at the soonest
# An epoch line's values are the epoch's means over the training batches: its plain accuracy and loss are said
# so, apart from the target test scores of a stage's "done" line (runner.ended).
TRAINING_NAMES = {"accuracy": "train_accuracy", "loss": "train_loss"}
UNKNOWN_EPOCH_COST = 1.0  # a stage or task without a prior: a pixel epoch's


def format_duration(seconds):
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def prior_costs(config, stages):
    """Each stage's prior cost in `config`'s run.

    Args:
        config: the run's config (its TASK and epochs fields).
        stages: the stages' records (stages/base.Stage).
    Returns:
        {stage name: its epochs at its prior cost per epoch for the task}."""
    return {stage.name: stage.prior.get(config.TASK, UNKNOWN_EPOCH_COST) * stage.epochs_of(config)
            for stage in stages}


class RunClock:
    """The whole run's time left. `units`: the (seed, stage) pairs the run trains, in order; `costs`: each
    stage's prior cost (prior_costs); `now`: the clock, in seconds."""

    def __init__(self, units, costs, now=time.monotonic):
        self.units, self.costs, self.now = list(units), costs, now
        self.taken = {}  # stage -> [seconds it took in each seed that finished it]
        self.index, self.started, self.running = 0, None, False

    def start(self, seed, stage):
        self.index, self.started, self.running = self.units.index((seed, stage)), self.now(), True

    def finish(self):
        self.taken.setdefault(self.units[self.index][1], []).append(self.now() - self.started)
        self.running = False

    def left(self, stage_left=0.0):
        """(seconds left in the run, whether any of it comes from the prior), the current stage having
        `stage_left` seconds left (after finish(): none; None: its steps are not timed yet, it counts as it took
        in an earlier seed, or at its prior); (None, True) while nothing has been timed at all."""
        stage = self.units[self.index][1]
        elapsed = self.now() - self.started if self.running else 0.0
        timed = self.running and stage_left is not None
        # Seconds per unit of prior cost: what the stages timed so far took (the current one as projected).
        spent = sum(sum(times) for times in self.taken.values()) + (elapsed + stage_left if timed else 0.0)
        cost = sum(self.costs[name] * len(times) for name, times in self.taken.items())
        cost += self.costs[stage] if timed else 0.0
        if cost <= 0:
            return None, True
        per_cost = spent / cost
        mean = {name: sum(times) / len(times) for name, times in self.taken.items()}
        guessed = False
        if not self.running:
            current, stage_left = 0.0, 0.0
        elif timed:
            current = elapsed + stage_left
        else:
            guessed = stage not in mean
            current = max(elapsed, mean.get(stage, self.costs[stage] * per_cost))
            stage_left = current - elapsed
        total = stage_left
        for _, later in self.units[self.index + 1:]:
            if later in mean:
                total += mean[later]
            elif later == stage:
                total += current
            else:
                total += self.costs[later] * per_cost
                guessed = True
        return total, guessed

    def describe(self, stage_left=0.0):
        """'run ~T left (estimated), until ~HH:MM', "(estimated)" where the prior is in it."""
        seconds, guessed = self.left(stage_left)
        if seconds is None:
            return "run: no time left yet (no step timed)"
        end = time.strftime("%H:%M", time.localtime(time.time() + seconds))
        return f"run ~{format_duration(seconds)} left{' (estimated)' if guessed else ''}, until ~{end}"


class Progress(keras.callbacks.Callback):
    """A stage's lines through `log`, whatever fit's verbosity: about FIRST_ESTIMATE_S seconds into its
    training, if its first epoch is still running, its time per step and time left (or, if its first step,
    which traces and compiles the step function, has not ended, that it has not, from a timer thread); after
    each epoch, the epoch, its time at the measured rate, the stage's time left and the epoch's losses and
    metrics: after the first epoch this process trains, after the last (or one that stops the stage) and between
    them at most one every `line_every_s` seconds. With a RunClock, each line also gives the run's time left. A
    stage that may stop early (feature adaptation's gate) gives its time left as an upper bound. A step is timed
    when the next one begins (on_train_batch_begin: no batch_end hook, so fit keeps dispatching the steps' logs
    asynchronously)."""

    def __init__(self, stage, log, may_stop_early=False, clock=None, now=time.monotonic,
                 first_estimate_s=FIRST_ESTIMATE_S, line_every_s=EPOCH_LINE_EVERY_S):
        super().__init__()
        self.stage, self.log, self.may_stop_early, self.clock, self.now = stage, log, may_stop_early, clock, now
        self.first_estimate_s, self.line_every_s, self.timer = first_estimate_s, line_every_s, None

    def _first_step_running(self):
        if self.first_end is None:
            self.log(f"{self.stage}: its first step is still running after {self.now() - self.begin:.0f} s (it "
                     "traces and compiles the step function)"
                     + (f"; {self.clock.describe(None)}" if self.clock is not None else ""))

    def on_train_begin(self, logs=None):
        self.timer = threading.Timer(self.first_estimate_s, self._first_step_running)
        self.timer.daemon = True
        self.begin = self.now()
        self.completed = self.epoch_base = 0  # steps this process has completed; before this epoch
        self.first_end, self.first_count = None, 0  # when its first steps completed, and how many
        self.epoch, self.announced, self.last_line, self.epoch_lines = 0, False, None, 0
        self.timer.start()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.epoch_base = epoch, self.completed

    def _completed(self, steps):
        """Record that `steps` steps of this epoch are done; the time."""
        now = self.now()
        self.completed = self.epoch_base + steps
        if self.first_end is None and self.completed:
            self.first_end, self.first_count = now, self.completed
            self.timer.cancel()
        return now

    def seconds_per_step(self, now):
        """The mean time of a step after the first (of the first, while it is the only one)."""
        timed = self.completed - self.first_count
        if timed > 0:
            return (now - self.first_end) / timed
        return (now - self.begin) / max(self.completed, 1)

    def _left(self, now, steps_left):
        left = self.seconds_per_step(now) * steps_left
        run = f"; {self.clock.describe(left)}" if self.clock is not None else ""
        return f"{'at most ' if self.may_stop_early else ''}~{format_duration(left)} left in the stage{run}"

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0 or self.announced:
            return
        now = self._completed(batch)
        steps, epochs = self.params.get("steps"), self.params.get("epochs")
        timed = self.completed - self.first_count
        if not steps or not epochs or now - self.begin < self.first_estimate_s or timed < FIRST_ESTIMATE_STEPS:
            return
        self.announced, self.last_line = True, now
        self.log(f"{self.stage}: {self.seconds_per_step(now):.2f} s/step over its first {self.completed} steps, "
                 + self._left(now, (epochs - self.epoch) * steps - batch))

    def on_epoch_end(self, epoch, logs=None):
        steps = self.params.get("steps") or 1
        now = self._completed(steps)
        done, epochs = epoch + 1, self.params.get("epochs") or epoch + 1
        self.announced = True  # the first estimate is for a first epoch still running: this line says more
        last = done >= epochs or getattr(self.model, "stop_training", False)
        if self.epoch_lines and not last and now - self.last_line < self.line_every_s:
            return
        self.last_line, self.epoch_lines = now, self.epoch_lines + 1
        metrics = " ".join(f"{TRAINING_NAMES.get(k, k)}={float(v):.3g}" for k, v in (logs or {}).items())
        self.log(f"{self.stage} epoch {done}/{epochs}, {format_duration(self.seconds_per_step(now) * steps)}/epoch, "
                 + self._left(now, (epochs - done) * steps) + (f": {metrics}" if metrics else ""))

    def on_train_end(self, logs=None):
        self.timer.cancel()
