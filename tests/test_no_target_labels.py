"""No target label enters training: the target training pipeline yields images only, and adaptation trained on
target data whose labels were scrambled ends with bit-identical weights."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from cycada_tf.config import experiment_config as config_lib
from cycada_tf.experiments import runner
from cycada_tf.data import pipeline, schema
from relabel import rewrite_train_labels


def test_target_training_pipeline_yields_images_only(embedded_data_dir):
    ds = pipeline.load("uci_m", "train", embedded_data_dir, labels=False, batch_size=8)
    assert isinstance(ds.element_spec, tf.TensorSpec)
    assert ds.element_spec.shape.as_list() == [None, 32, 32, 3]


def _scramble_labels(data_dir, name):
    """Every training label of `name` in data_dir, class c -> (7c + 3) mod 10."""
    def relabel(example):
        label = example.features.feature[schema.LABEL].int64_list.value
        label[0] = (label[0] * 7 + 3) % 10
    rewrite_train_labels(data_dir, name, relabel)


@pytest.fixture
def deterministic_ops():
    """Deterministic kernels for one test only: the switch is process-wide and turns XLA off for later tests."""
    from tensorflow.python.framework import config as tf_config
    tf.config.experimental.enable_op_determinism()
    yield
    tf_config.disable_op_determinism()


def _config(data_dir, run_dir, **overrides):
    return config_lib.DigitsConfig(**{
        "data_dir": data_dir, "run_dir": run_dir, "seeds": (0,),
        "stages": ("source", "pixel", "target", "feature", "self_train"), "source_epochs": 1, "pixel_epochs": 1,
        "target_epochs": 1, "feature_epochs": 1, "pixel_batch_size": 64, "generator_width": 4,
        "discriminator_width": 4, "noise_channels": 2, "feature_min_steps_per_epoch": 5,
        "translations_per_image": 1, "verbose": 0, "self_train_epochs": 1, "self_train_steps_per_epoch": 3,
        "final_reverse_steps": 5, **overrides})


@pytest.fixture(scope="module")
def scrambled_data_dir(embedded_data_dir, tmp_path_factory):
    """The embedded pair with every training label of the target (uci_m) rewritten."""
    scrambled = str(tmp_path_factory.mktemp("scrambled"))
    for name in ("uci", "uci_m"):
        shutil.copytree(os.path.join(embedded_data_dir, name), os.path.join(scrambled, name))
    _scramble_labels(scrambled, "uci_m")
    _, clean_labels = pipeline.arrays("uci_m", "train", embedded_data_dir)
    _, bad_labels = pipeline.arrays("uci_m", "train", scrambled)
    assert (clean_labels != bad_labels).mean() > 0.5
    return scrambled


@pytest.fixture(scope="module")
def pixel_stages(embedded_data_dir, scrambled_data_dir, tmp_path_factory):
    """{tag: (data_dir, seed directory)}: the source stage, trained once (it reads source data only, which the
    scrambling leaves alone), then the pixel stage on the clean and on the scrambled data. The pixel stage does
    not depend on --pixel_direction, so each direction's runs below start from copies of both stages (the
    runner skips a finished stage)."""
    from tensorflow.python.framework import config as tf_config
    root = tmp_path_factory.mktemp("pixel_stages")
    stages = {}
    tf.config.experimental.enable_op_determinism()
    try:
        source = os.path.join(str(root), "source")
        runner.run(_config(embedded_data_dir, source, stages=("source",)))
        for tag, data_dir in (("clean", embedded_data_dir), ("scrambled", scrambled_data_dir)):
            run_dir = os.path.join(str(root), tag)
            shutil.copytree(os.path.join(source, "seed_0", "source"), os.path.join(run_dir, "seed_0", "source"))
            runner.run(_config(data_dir, run_dir, stages=("source", "pixel")))
            stages[tag] = (data_dir, os.path.join(run_dir, "seed_0"))
    finally:
        tf_config.disable_op_determinism()
    return stages


# The final model's default criterion (veto) where the candidates read target images through G_T->S, the
# criterion that trains nothing where they read them as they are (tests/test_no_target_labels_segmentation.py
# compares every criterion, recomputed by tools/decide.py).
FINAL_CRITERION = {"t2s": "veto", "s2t": "information_maximisation"}


@pytest.mark.slow
@pytest.mark.parametrize("direction", ["t2s", "s2t"])
def test_adaptation_is_blind_to_target_labels(tmp_path, direction, deterministic_ops, pixel_stages):
    weights, decisions = {}, {}
    for tag, (data_dir, stages_dir) in pixel_stages.items():
        config = _config(data_dir, str(tmp_path / tag), pixel_direction=direction,
                         final_criterion=FINAL_CRITERION[direction])
        for stage in ("source", "pixel"):
            shutil.copytree(os.path.join(stages_dir, stage), os.path.join(config.run_dir, "seed_0", stage))
        runner.run(config)
        seed_dir = os.path.join(config.run_dir, "seed_0")
        weights[tag] = {}
        for path in ("pixel/g_st.weights.h5", "pixel/g_ts.weights.h5", "target/f.weights.h5",
                     "feature/f.weights.h5", "self_train/f.weights.h5"):
            import h5py
            with h5py.File(os.path.join(seed_dir, path)) as handle:
                arrays = []
                handle.visititems(lambda n, o: arrays.append((n, o[()])) if hasattr(o, "shape") else None)
            weights[tag][path] = arrays
        with open(os.path.join(config.run_dir, "results.json")) as handle:
            per_seed = json.load(handle)["per_seed"]["0"]
        final = per_seed["final"]
        assert final["criterion_name"] == FINAL_CRITERION[direction]
        if direction == "t2s":
            assert "self_train" in final["votes"]  # the default's two votes
        decisions[tag] = (per_seed["pixel"]["direction"]["criterion"], final["criterion"], final.get("votes"),
                          final["choice"])
    # the label-free criteria, and so the decisions, are the same too (the oracle's choices may differ)
    assert decisions["clean"] == decisions["scrambled"]
    for path, arrays in weights["clean"].items():
        other = weights["scrambled"][path]
        assert [n for n, _ in arrays] == [n for n, _ in other]
        for (name, a), (_, b) in zip(arrays, other):
            assert np.array_equal(a, b), f"{path}:{name} differs when only target labels changed"
