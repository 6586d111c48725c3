"""One short real run of `python -m cycada_tf.experiments.segmentation` through every stage on the embedded
road scenes (tiny networks, one epoch each, three for the source model), its rerun, which skips every finished
stage, and its export for TF Serving."""

import json
import os
import subprocess
import sys

import pytest

from conftest import child_env, run_experiment, tiny_flags
from cycada_tf.experiments import runner

TINY = tiny_flags("segmentation", summary_every_epochs=1)
STAGES = ["source", "pixel", "target", "feature", "self_train", "final", "oracle"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """The tiny run's directories, after one run with --export_dir."""
    root = tmp_path_factory.mktemp("segmentation")
    dirs = {name: str(root / name) for name in ("data", "run", "export")}
    run_experiment("segmentation", f"--data_dir={dirs['data']}", f"--run_dir={dirs['run']}",
                   f"--export_dir={dirs['export']}", *TINY)
    return dirs


@pytest.mark.slow
def test_every_stage_runs_with_a_table_3_row_and_a_rerun_skips_them(finished):
    data_dir, run_dir = finished["data"], finished["run"]
    results = json.load(open(os.path.join(run_dir, "results.json")))
    rows = {row["stage"]: row for row in results["table"]}
    assert list(rows) == STAGES
    classes = ["road", "sidewalk", "building", "pole", "vegetation", "sky", "person", "car"]
    assert results["classes"] == classes
    for row in rows.values():
        for score in ("miou", "fwiou", "pixel_accuracy"):
            assert 0.0 <= row[score] <= 1.0, (row["stage"], score)
        assert sorted(row["per_class_iou"]) == sorted(classes) and len(row["seeds"]) == 1
    seed = results["per_seed"]["0"]
    # Something was learned: the source model beats the best constant answer (every pixel the most frequent
    # class of the source test split) in pixel accuracy by 5 points, and its mIoU is over twice the mIoU that
    # answer gets (its class's share over the 8 classes: the others score 0).
    import numpy as np
    from cycada_tf.data import pipeline
    counts = sum(np.bincount(y.numpy().ravel(), minlength=256)[:8]
                 for _, y in pipeline.load_segmentation("roads_game", "test", data_dir, batch_size=50))
    majority = counts.max() / counts.sum()
    assert seed["source"]["source_test_pixel_accuracy"] >= majority + 0.05
    assert seed["source"]["source_test_miou"] >= 2 * majority / 8
    # the final model, chosen by the veto (the source model and the stages it looked at, self_train first),
    # with the oracle's choice beside it
    final = seed["final"]
    assert final["criterion_name"] == "veto" and final["choice"] in runner.CANDIDATES
    assert {"source", "self_train"} <= set(final["criterion"]) <= set(runner.CANDIDATES)
    assert seed["final"]["miou"] == seed[seed["final"]["choice"]]["miou"] == rows["final"]["miou"]
    assert seed["final"]["oracle_choice"] in seed["final"]["oracle"]
    # the source model is scored on both domains' test splits; the pixel stage reports f_S(G_T->S(x_t))
    assert 0.0 <= seed["source"]["source_test_miou"] <= 1.0 and 0.0 <= seed["pixel"]["miou_t2s"] <= 1.0
    seed_dir = os.path.join(run_dir, "seed_0")
    for path in ("source/f.weights.h5", "pixel/g_st.weights.h5", "pixel/translations.png",
                 "target/f.weights.h5", "feature/f.weights.h5", "oracle/f.weights.h5",
                 "translated_source/manifest.json"):
        assert os.path.exists(os.path.join(seed_dir, path)), path
    translated = json.load(open(os.path.join(seed_dir, "translated_source", "manifest.json")))
    assert translated["splits"]["train"]["count"] == 400  # every source training scene, translated once
    table = open(os.path.join(run_dir, "results.md")).read()
    assert "| Model | road | sidewalk |" in table and "| CyCADA pixel+feat |" in table and "mIoU" in table
    report = open(os.path.join(run_dir, "report.md")).read()
    assert "predictions_seed_0.png" in report and os.path.exists(os.path.join(run_dir, "predictions_seed_0.png"))
    from cycada_tf.train import summaries
    events = summaries.read_events(os.path.join(seed_dir, "target"))
    assert "target_test/miou" in events and "target_test/predictions" in events
    # the feature stage gates on the mean accuracy over --gate_window iterations, logged beside d_accuracy
    assert {"train/d_accuracy", "train/gate_accuracy", "train/gate_open"} <= set(summaries.read_events(
        os.path.join(seed_dir, "feature")))
    image = events["target_test/predictions"][-1][1][0]
    # 4 images: image | truth | prediction, 2-pixel gaps; the titles above, the legend below
    assert image.shape[1:] == (3 * 128 + 2 * 2, 3) and image.shape[0] > 4 * 64
    assert summaries.read_descriptions(os.path.join(seed_dir, "target"))["target_test/predictions"]
    assert os.path.exists(os.path.join(seed_dir, "feature", "gate.png"))

    mtime = os.stat(os.path.join(seed_dir, "pixel", "g_st.weights.h5")).st_mtime_ns
    second = run_experiment("segmentation", f"--data_dir={data_dir}", f"--run_dir={run_dir}", *TINY)
    assert second.stderr.count("already done, skipped") == 6
    assert os.stat(os.path.join(seed_dir, "pixel", "g_st.weights.h5")).st_mtime_ns == mtime
    assert json.load(open(os.path.join(run_dir, "results.json")))["table"] == results["table"]


@pytest.mark.slow
def test_the_export_serves_label_maps_and_translations_as_the_keras_networks_compute_them(finished, tmp_path):
    import numpy as np
    import tensorflow as tf

    from cycada_tf.config import experiment_config as config_lib
    from cycada_tf.serving import export
    from cycada_tf import tasks
    from cycada_tf.stages.trial import Trial
    from cycada_tf.data import pipeline
    from cycada_tf.models import segmenter
    from tools import export as export_tool

    models = sorted(os.listdir(finished["export"]))
    assert models == ["g_st", "g_ts", "models.config", "segmenter"]
    models.remove("models.config")
    for model in models:
        assert os.listdir(os.path.join(finished["export"], model)) == ["1"]
    listing = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir",
                              os.path.join(finished["export"], "segmenter", "1"), "--all"], capture_output=True,
                             text=True, timeout=300, env=child_env())
    assert listing.returncode == 0, listing.stderr[-2000:]
    segment = listing.stdout[listing.stdout.index("signature_def['segment']"):]
    assert "dtype: DT_UINT8" in segment and "shape: (-1, -1, -1, -1)" in segment
    assert "outputs['label_map']" in segment and "outputs['probabilities']" in segment

    config = export_tool.run_config(finished["run"])
    assert isinstance(config, config_lib.SegmentationConfig)
    trial = Trial(tasks.for_config(config), 0, finished["run"])
    images = np.random.default_rng(3).integers(0, 256, (2, 50, 70, 3), dtype=np.uint8)  # no crop's size
    x = pipeline.from_uint8(tf.constant(images), None, 3)
    chosen = json.load(open(os.path.join(finished["run"], "seed_0", "final.json")))["choice"]
    net = trial.task.network(trial.weights(chosen))  # s2t: the segmenter reads target images as they are
    served = tf.saved_model.load(os.path.join(finished["export"], "segmenter", "1")).signatures["segment"](
        images=tf.constant(images))
    logits = net(x, training=False).numpy()
    assert served["label_map"].shape == (2, 50, 70) and served["label_map"].dtype == tf.uint8
    np.testing.assert_allclose(served["probabilities"].numpy(), tf.nn.softmax(logits).numpy(), atol=1e-5)
    ties = np.sort(logits, axis=-1)[..., -1] - np.sort(logits, axis=-1)[..., -2] < 1e-4
    np.testing.assert_array_equal(served["label_map"].numpy()[~ties], logits.argmax(-1)[~ties])
    g_st, _ = trial.trained_generators()
    translated = tf.saved_model.load(os.path.join(finished["export"], "g_st", "1")).signatures["translate"](
        images=tf.constant(images))["translated"].numpy()
    expected = pipeline.to_uint8(segmenter.any_size(g_st, 2 ** config.generator_downsamplings)(x)).numpy()
    assert translated.shape == (2, 50, 70, 3)
    assert np.abs(translated.astype(int) - expected.astype(int)).max() <= 1  # rounding at .5 only

    # tools/export.py on the finished run: the next version of each model
    assert export_tool.main([f"--run_dir={finished['run']}", "--seed=0", f"--export_dir={finished['export']}"]) == 0
    assert all(sorted(os.listdir(os.path.join(finished["export"], m))) == ["1", "2"] for m in models)
    assert export.versions(os.path.join(finished["export"], "segmenter")) == [1, 2]


def test_a_bad_flag_ends_with_a_message_naming_it(tmp_path):
    result = run_experiment("segmentation", "--model=unet", f"--data_dir={tmp_path / 'data'}",
                            f"--run_dir={tmp_path / 'run'}", check=False, timeout=300)
    assert result.returncode == 2 and result.stderr.splitlines() == [
        "error: flag --model=unet: value should be one of <small_fcn|fcn8s|drn26>"]
    assert not os.path.exists(tmp_path / "run")


def test_a_run_at_eval_resolution_native_scores_the_full_size_label_maps(embedded_data_dir, tmp_path):
    """The source stage trained at --train_short_side=32 on the 64x128 road scenes: its recorded target mIoU
    is the one of the 64x128 label maps as prepared (every labelled pixel counted once, the logits upsampled
    to them), not of 32x64 maps (a quarter of the pixels), which --eval_resolution=train scores."""
    import numpy as np

    from conftest import tiny_config
    from cycada_tf.data import pipeline
    from cycada_tf.reporting import segmentation_metrics as metrics
    from cycada_tf.tasks import segmentation

    small = dict(data_dir=embedded_data_dir, run_dir=str(tmp_path / "run"), stages=("source",), source_epochs=1,
                 train_short_side=32, crop_size=(32, 32), feature_crop_size=(32, 32))
    config = tiny_config("segmentation", eval_resolution="native", **small)
    done = runner.run(config)["per_seed"]["0"]["source"]
    task = segmentation.SegmentationTask(config)
    net = task.build_network()
    net.load_weights(os.path.join(small["run_dir"], "seed_0", "source", "f.weights.h5"))
    native = task.confusion(net, "target")
    labels = np.concatenate([y.numpy() for _, y in pipeline.load_segmentation(
        "roads_camera", "test", embedded_data_dir, batch_size=50)])
    assert labels.shape[1:] == (64, 128) and native.sum() == np.sum(labels != 255) > 0
    assert done["miou"] == metrics.summary(native)["miou"]
    at_train = segmentation.SegmentationTask(tiny_config("segmentation", **small)).confusion(net, "target")
    assert 4 * at_train.sum() == pytest.approx(native.sum(), rel=0.02)
    assert metrics.summary(at_train)["miou"] != done["miou"]
