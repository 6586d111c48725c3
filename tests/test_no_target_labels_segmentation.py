"""No target label map enters the road scenes' self-training or the final model's choice: the segmentation
self-training (dacs reading target images as they are, guided by the target model through G_T->S), run on
target data whose label maps were scrambled, ends with bit-identical weights, and every criterion of the final
model is bit-identical. The stages before it are trained once and shared: they read target images through the
same stage code as the digits run, whose blindness tests/test_no_target_labels.py checks."""

import os
import shutil

import h5py
import numpy as np
import pytest
import tensorflow as tf

from cycada_tf.config import experiment_config as config_lib
from cycada_tf.experiments import runner
from cycada_tf import tasks
from cycada_tf.data import pipeline, registry, schema
from cycada_tf.stages.trial import Trial
from relabel import rewrite_train_labels
from tools import decide  # every criterion of a finished run, recomputed from its weights

CLASSES = 8  # the embedded road scenes' train ids


def _scramble_label_maps(data_dir, name):
    """Rewrite every training label map of `name` in data_dir, class c -> (3c + 1) mod 8, the ignored pixels
    left ignored."""
    def relabel(example):
        field = example.features.feature[schema.LABEL_MAP].bytes_list.value
        label_map = tf.io.decode_png(field[0]).numpy()[..., 0]
        scrambled = np.where(label_map == schema.IGNORE_LABEL, label_map, (3 * label_map + 1) % CLASSES)
        field[0] = schema.encode_png(scrambled.astype(np.uint8))
    rewrite_train_labels(data_dir, name, relabel)


def _config(data_dir, run_dir, **overrides):
    """Tiny networks and steps; the default self-training (dacs, target view, guided) from the target stage."""
    return config_lib.SegmentationConfig(**{
        "data_dir": data_dir, "run_dir": run_dir, "seeds": (0,), "stages": ("source", "pixel", "target",
                                                                             "self_train"),
        "source_epochs": 1, "pixel_epochs": 1, "target_epochs": 1, "source_batch_size": 32, "pixel_batch_size": 16,
        "crop_size": (32, 64), "pixel_crop_size": (32, 32), "model_width": 8, "generator_width": 4,
        "generator_blocks": 1, "discriminator_width": 4, "summary_every_epochs": 0, "verbose": 0,
        "pixel_direction": "t2s", "self_train_init": "target", "self_train_epochs": 1,
        "self_train_steps_per_epoch": 3, "self_train_batch_size": 4, "self_train_guide_steps": 2,
        "final_reverse_steps": 5, **overrides})


def _weights(path):
    with h5py.File(path) as handle:
        arrays = []
        handle.visititems(lambda n, o: arrays.append((n, o[()])) if hasattr(o, "shape") else None)
    return arrays


@pytest.mark.slow
def test_road_scene_adaptation_and_the_final_choice_are_blind_to_target_label_maps(tmp_path):
    from tensorflow.python.framework import config as tf_config
    clean, scrambled = str(tmp_path / "clean"), str(tmp_path / "scrambled")
    for name in ("roads_game", "roads_camera"):
        registry.ensure(name, clean)
    shutil.copytree(clean, scrambled)
    _scramble_label_maps(scrambled, "roads_camera")
    before = np.concatenate([y.numpy().ravel() for _, y in pipeline.load_segmentation(
        "roads_camera", "train", clean, batch_size=50)])
    after = np.concatenate([y.numpy().ravel() for _, y in pipeline.load_segmentation(
        "roads_camera", "train", scrambled, batch_size=50)])
    assert (before != after).mean() > 0.5

    tf.config.experimental.enable_op_determinism()
    try:
        shared = str(tmp_path / "shared")
        # its final choice is made again below, with self-training: the one criterion that trains nothing here
        runner.run(_config(clean, shared, stages=("source", "pixel", "target"),
                           final_criterion="information_maximisation"))
        weights, criteria = {}, {}
        # the clean run chooses by the default (veto), which decide must reproduce; the scrambled one by the
        # criterion that trains nothing, as every criterion of both is recomputed and compared below
        for tag, data_dir, overrides in (("clean", clean, {}),
                                         ("scrambled", scrambled, {"final_criterion": "information_maximisation"})):
            config = _config(data_dir, str(tmp_path / f"run_{tag}"), **overrides)
            shutil.copytree(os.path.join(shared, "seed_0"), os.path.join(config.run_dir, "seed_0"))
            runner.run(config)
            seed_dir = os.path.join(config.run_dir, "seed_0")
            weights[tag] = {path: _weights(os.path.join(seed_dir, path))
                            for path in ("self_train/f.weights.h5", "self_train/teacher.weights.h5")}
            decided = decide.decide_seed(Trial(tasks.for_config(config), 0, config.run_dir),
                                         list(config_lib.FINAL_CRITERIA), runner.CANDIDATES)
            assert decided["reproduced"], "tools/decide.py does not reproduce the run's own criterion"
            criteria[tag] = {stage: {name: value for name, value in row.items() if name != "score"}
                             for stage, row in decided["candidates"].items()}
    finally:
        tf_config.disable_op_determinism()
    assert set(criteria["clean"]) == {"source", "target", "self_train"}
    assert criteria["clean"] == criteria["scrambled"]
    for path, arrays in weights["clean"].items():
        other = weights["scrambled"][path]
        assert [n for n, _ in arrays] == [n for n, _ in other]
        for (name, a), (_, b) in zip(arrays, other):
            assert np.array_equal(a, b), f"{path}:{name} differs when only target label maps changed"
