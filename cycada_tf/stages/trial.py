"""One seed of a run as its directory holds it: <run_dir>/seed_<k>/<stage>/ (done.json, the stage's weights,
ckpt/, TensorBoard events), the translated records and final.json. The stages read what earlier stages left
through a Trial, and the report and export read a finished run through one; a Trial trains nothing.

It reads the run directory's files from `run_dir` and writes its own under `write_dir` (default `run_dir`; a
worker's private directory under multi_worker, see runner.py). The networks it builds compute in its `dtype`:
the runner hands each stage the trial building_in(that stage's --precision)."""

import copy
import os

from cycada_tf.train import atomic_files as files
from cycada_tf.data import translated
from cycada_tf.stages import registry

FINAL_FILE = "final.json"  # under seed_<k>/: the model chosen without target labels (selection.final_model)


class Trial:
    def __init__(self, task, seed, run_dir, strategy=None, write_dir=None, dtype=None):
        self.task, self.config, self.seed, self.strategy = task, task.config, seed, strategy
        self.dir = os.path.join(run_dir, f"seed_{seed}")
        self.out = os.path.join(write_dir or run_dir, f"seed_{seed}")
        self.dtype = dtype  # the dtype policy of the networks it builds (None: Keras' default, float32)

    def building_in(self, dtype):
        """This trial, building its networks in the dtype policy `dtype` (a stage's precision)."""
        trial = copy.copy(self)
        trial.dtype = dtype
        return trial

    def stage_dir(self, stage):
        """Where this process writes the stage's files (created)."""
        path = os.path.join(self.out, stage)
        os.makedirs(path, exist_ok=True)
        return path

    def done(self, stage):
        """The stage's done.json (its results), or None while it has not finished."""
        return files.read_json(os.path.join(self.dir, stage, "done.json"))

    def finish(self, stage, result):
        """Write the stage's done.json (this process's copy)."""
        files.write_json(os.path.join(self.stage_dir(stage), "done.json"), result)
        return result

    def weights(self, stage, name="f", written=False):
        """The weights file of a stage's network `name`: to read (the run directory's) or, if `written`, to
        write (this process's)."""
        return os.path.join(self.stage_dir(stage) if written else os.path.join(self.dir, stage),
                            f"{name}.weights.h5")

    def network(self, stage):
        """The task network a finished stage trained."""
        return self.task.network(self.weights(stage), dtype=self.dtype)

    def has_generators(self):
        return all(os.path.exists(self.weights(registry.TRANSLATORS, name)) for name in ("g_st", "g_ts"))

    def trained_generators(self):
        """G_S->T and G_T->S with the pixel stage's weights, as built (Keras models)."""
        g_st, g_ts = self.task.generators(dtype=self.dtype)
        g_st.load_weights(self.weights(registry.TRANSLATORS, "g_st"))
        g_ts.load_weights(self.weights(registry.TRANSLATORS, "g_ts"))
        return g_st, g_ts

    def generators(self):
        """The trained translators as the stages apply them to whole images."""
        return tuple(self.task.applied(g) for g in self.trained_generators())

    @property
    def direction(self):
        """s2t or t2s: --pixel_direction, or with auto the direction the pixel stage chose (its done.json)."""
        if self.config.pixel_direction != "auto":
            return self.config.pixel_direction
        choice = (self.done("pixel") or {}).get("direction", {}).get("choice")
        if choice is None:
            raise ValueError(f"--pixel_direction=auto: the pixel stage of {self.dir} recorded no direction "
                             f"(made by an older version): rerun it, or pass --pixel_direction=s2t or t2s")
        return choice

    def reads_translated(self, stage):
        """Whether `stage`'s model is given G_T->S of a target image rather than the image (its record says)."""
        return registry.get(stage).reads_translated(self)

    def view_of(self, stage):
        """What `stage`'s model is given of a target image: G_T->S (reads_translated), or the image (None)."""
        return self.generators()[1] if self.reads_translated(stage) else None

    def translated_dir(self, domain):
        return translated.directory(self.dir, domain)

    def final(self):
        """final.json: the final model's decision, or None."""
        return files.read_json(os.path.join(self.dir, FINAL_FILE))

    def write_final(self, decision):
        files.write_json(os.path.join(self.dir, FINAL_FILE), decision)
