"""The written contracts: a task is an abstract class (tasks/base.Task) whose hooks a minimal stub implements and
the real runner then runs; an incomplete task or stage model is refused naming what it lacks; a config of an
unknown task is refused by name."""

import dataclasses
import typing

import keras
import numpy as np
import pytest
import tensorflow as tf

from cycada_tf.config import experiment_config as config_lib
from cycada_tf.reporting import results
from cycada_tf.experiments import runner
from cycada_tf import tasks
from cycada_tf.reporting import report as report_lib
from cycada_tf.stages.base import StageModel
from cycada_tf.tasks.base import Task

EXAMPLES, CLASSES = 40, 10


@dataclasses.dataclass
class StubConfig(config_lib.DigitsConfig):
    TASK: typing.ClassVar[str] = "stub"


def not_needed(*args, **kwargs):
    raise NotImplementedError("not needed by the source and oracle stages")


class StubTask(Task):
    """Ten classes of 8x8 images in memory, class k lighting pixel k, and a linear classifier: the least a task
    implements for the runner to train, score and report the source and oracle stages."""
    name, score_key = "stub", "accuracy"
    generators = image_discriminator = feature_discriminator = feature_options = pixel_options = not_needed
    make_translated_example = translated_info = load_translated = translation_grid = not_needed
    serving_model = serving_translator = not_needed

    def inputs(self, domain, split, labels=True, batch_size=None, shuffle=False, seed=0, repeat=False,
               drop_remainder=False, stage=None):
        y = np.arange(EXAMPLES, dtype=np.int32) % CLASSES
        x = np.where(np.eye(64, dtype=np.float32)[y].reshape(-1, 8, 8, 1) > 0, 1.0, -1.0).astype(np.float32)
        data = tf.data.Dataset.from_tensor_slices((x, y) if labels else x)
        data = data.shuffle(EXAMPLES, seed=seed) if shuffle else data
        data = data.repeat() if repeat else data
        return data.batch(batch_size, drop_remainder=drop_remainder) if batch_size else data

    def labelled_scores(self, net, domain, translate=None):
        counts = self.confusion(net, domain, translate)
        return {"accuracy": float(np.trace(counts) / counts.sum())}

    def build_network(self, from_scratch=True, dtype=None):
        return keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(dtype=dtype),
                                 keras.layers.Dense(CLASSES, dtype=dtype)])

    def test_summaries(self, net, translate=None):
        return None

    def summarize(self, per_seed):
        return results.summarize_accuracy(self.config, per_seed, self.rows)

    def markdown_table(self, summary):
        return report_lib.accuracy_table(summary, [])

    def report_sections(self, run_dir, summary, trials):
        return []

    def title(self):
        return "stub"


def test_a_stub_task_runs_through_the_runner(embedded_data_dir, tmp_path, monkeypatch):
    monkeypatch.setitem(tasks.TASKS, "stub", (__name__, "StubTask"))
    config = StubConfig(data_dir=embedded_data_dir, run_dir=str(tmp_path / "run"), seeds=(0,),
                        stages=("source", "oracle"), source_epochs=3, oracle_epochs=3, source_batch_size=10,
                        source_lr=0.05, summary_every_epochs=0, verbose=0, precision="float32")
    assert isinstance(tasks.for_config(config), StubTask)
    summary = runner.run(config)
    rows = {row["stage"]: row for row in summary["table"]}
    assert list(rows) == ["source", "oracle"]
    # a guess scores 10%; the stub's classes are linearly separable, and the stages learnt them
    assert rows["source"]["accuracy"] > 0.5 and rows["oracle"]["accuracy"] > 0.5
    assert (tmp_path / "run" / "seed_0" / "source" / "f.weights.h5").exists()
    assert (tmp_path / "run" / "report.md").read_text().startswith("# stub")


def test_a_task_missing_a_hook_is_refused_naming_it():
    class Incomplete(Task):
        name, score_key = "incomplete", "accuracy"
        inputs, labelled_scores = StubTask.inputs, StubTask.labelled_scores

    with pytest.raises(TypeError) as refused:
        Incomplete(StubConfig())
    assert all(name in str(refused.value) for name in ("build_network", "generators", "summarize", "title"))
    assert "inputs" not in str(refused.value) and "score_key" not in str(refused.value)


def test_a_stage_model_without_build_optimizers_is_refused():
    class Stage(StageModel):
        pass
    with pytest.raises(TypeError, match="build_optimizers"):
        Stage()


def test_an_unknown_task_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown task 'stub'.*digits, segmentation"):
        tasks.for_config(StubConfig())
