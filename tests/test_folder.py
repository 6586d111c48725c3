"""folder: datasets, a user's own images: classification (labelled source or target), segmentation, and a
target without any label running the whole digits method end to end."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import official_files
from conftest import run_experiment, tiny_flags
from cycada_tf.config import experiment_config as config_lib
from cycada_tf.experiments import runner
from cycada_tf.data import pipeline, registry, tfrecord

# The direction is the pixel stage's to choose here (auto), without target labels.
TINY = tiny_flags("digits", source_epochs=3, feature_epochs=1, feature_min_steps_per_epoch=2, self_train_epochs=1,
                  summary_every_epochs=0, pixel_direction=None)


def write_classes(root, split, count, seed, rgb=False):
    images, labels = official_files.digits(count, 28, seed)
    for i, (image, label) in enumerate(zip(images, labels)):
        os.makedirs(os.path.join(root, split, str(label)), exist_ok=True)
        array = np.stack([image, image // 2, 255 - image], -1) if rgb else image
        with open(os.path.join(root, split, str(label), f"{i:04d}.png"), "wb") as handle:
            handle.write(official_files.png_bytes(array))
    return labels


def test_classification_folder_names_classes_by_folder_and_holds_out_a_test_split(tmp_path):
    write_classes(str(tmp_path / "digits"), "train", 100, 0)
    name = f"folder:{tmp_path / 'digits'}"
    spec = registry.get(name)
    assert spec.classes == tuple(str(k) for k in range(10)) and spec.channels == 1 and spec.labelled
    directory = registry.ensure(name, str(tmp_path / "data"))
    assert directory.startswith(str(tmp_path / "data" / "folder" / "digits-"))
    manifest = tfrecord.read_manifest(directory)
    assert manifest["splits"]["train"]["count"] == 90 and manifest["splits"]["test"]["count"] == 10
    assert manifest["splits"]["test"]["classes"] == {str(k): 1 for k in range(10)}
    mtime = os.stat(os.path.join(directory, "manifest.json")).st_mtime_ns
    registry.ensure(name, str(tmp_path / "data"))  # converted once
    assert os.stat(os.path.join(directory, "manifest.json")).st_mtime_ns == mtime
    x, y = pipeline.arrays(name, "train", str(tmp_path / "data"), 28, 1)
    assert x.shape == (90, 28, 28, 1) and x.min() >= -1 and sorted(set(y)) == list(range(10))


def test_a_test_class_unknown_to_train_is_named(tmp_path):
    write_classes(str(tmp_path / "d"), "train", 20, 0)
    os.makedirs(tmp_path / "d" / "test" / "cat")
    with pytest.raises(tfrecord.DataError, match=f"{tmp_path}/d/test/cat: class 'cat' is not among"):
        registry.get(f"folder:{tmp_path / 'd'}")
    with pytest.raises(tfrecord.DataError, match=f"{tmp_path}/nothing: no such directory"):
        registry.get(f"folder:{tmp_path / 'nothing'}")


def test_an_unknown_name_is_refused_naming_the_folder_and_tfds_forms():
    with pytest.raises(ValueError) as refused:
        registry.get("uci-m")
    message = str(refused.value)
    assert message.startswith("unknown dataset 'uci-m'; known: ") and "uci_m" in message
    assert "folder:<path>, a folder of your own images (docs/data.md)" in message and "tfds:<name>" in message


def test_segmentation_folder_maps_its_ignore_id_and_names_a_bad_label(tmp_path):
    root = tmp_path / "scenes"
    os.makedirs(root / "images")
    os.makedirs(root / "labels")
    (root / "classes.json").write_text(json.dumps({"names": ["road", "car", "sky"], "ignore_label": 9}))
    rng = np.random.RandomState(0)
    labels = []
    for i in range(3):
        image = rng.randint(0, 256, size=(8, 12, 3)).astype(np.uint8)
        label = rng.choice([0, 1, 2, 9], size=(8, 12)).astype(np.uint8)
        labels.append(label)
        (root / "images" / f"{i}.png").write_bytes(official_files.png_bytes(image))
        (root / "labels" / f"{i}.png").write_bytes(official_files.png_bytes(label))
    name = f"folder:{root}"
    spec = registry.get(name)
    assert spec.classes == ("road", "car", "sky") and spec.segmentation
    ds = pipeline.load_segmentation(name, "train", str(tmp_path / "data"))
    stored = [y.numpy() for _, y in ds]
    assert len(stored) == 2 and np.array_equal(stored[0], np.where(labels[0] == 9, 255, labels[0]))
    (root / "labels" / "1.png").write_bytes(official_files.png_bytes(np.full((8, 12), 5, np.uint8)))
    with pytest.raises(tfrecord.DataError, match=f"{root}/labels/1.png: train id 5 is not a class"):
        registry.ensure(name, str(tmp_path / "data2"))


def test_a_stage_with_nothing_to_train_and_the_stages_left_out_are_logged_as_skipped(tmp_path, capsys):
    flat = official_files.unlabelled_photos(tmp_path / "photos")
    config = config_lib.DigitsConfig(data_dir=str(tmp_path / "data"), run_dir=str(tmp_path / "run"),
                                     target=f"folder:{flat}", stages=("oracle",), seeds=(0,), verbose=0,
                                     summary_every_epochs=0)
    runner.run(config)
    out = capsys.readouterr().err
    assert ("seed 0: stages 'source', 'pixel', 'target', 'feature', 'self_train' skipped: not in --stages"
            in out)
    assert "seed 0: stage 'oracle' skipped: the target has no labels; run " in out and " done in " not in out


@pytest.mark.slow
def test_a_labelled_folder_target_is_scored_with_its_labels(embedded_data_dir, tmp_path):
    write_classes(str(tmp_path / "t"), "train", 60, 1, rgb=True)
    write_classes(str(tmp_path / "t"), "test", 30, 2, rgb=True)
    run_dir = tmp_path / "run"
    run_experiment("digits", f"--data_dir={embedded_data_dir}", f"--target=folder:{tmp_path / 't'}",
                   f"--run_dir={run_dir}", "--stages=source", *TINY)
    done = json.load(open(run_dir / "seed_0" / "source" / "done.json"))
    assert 0.0 <= done["accuracy"] <= 1.0 and "entropy" not in done
    # it learned: 297 source test digits, a guess scores 10% +- 1.7% (one s.d.); 30% is over 11 s.d. away
    assert done["source_test_accuracy"] >= 0.3


@pytest.mark.slow
def test_an_unlabelled_target_runs_the_whole_method_and_exports(embedded_data_dir, tmp_path):
    flat = tmp_path / "my_images"
    os.makedirs(flat)
    for i, (image, _) in enumerate(pipeline.load("uci_m", "test", embedded_data_dir, 32, 3).take(200)):
        (flat / f"photo_{i:03d}.jpg").write_bytes(tf.io.encode_jpeg(pipeline.to_uint8(image)).numpy())
    run_dir, export_dir = tmp_path / "run", tmp_path / "export"
    result = run_experiment("digits", f"--data_dir={embedded_data_dir}", f"--target=folder:{flat}",
                            f"--run_dir={run_dir}", f"--export_dir={export_dir}", *TINY)
    results = json.load(open(run_dir / "results.json"))
    assert results["label_free"] and "no labels" in results["why"]
    rows = {row["stage"]: row for row in results["table"]}
    # no oracle: nothing to train it on; the final model is chosen without labels all the same
    assert list(rows) == ["source", "pixel", "target", "feature", "self_train", "final"]
    final = results["per_seed"]["0"]["final"]
    assert final["choice"] in runner.CANDIDATES and "oracle_choice" not in final
    assert final["choice"] == max(final["criterion"], key=final["criterion"].get) or final.get("kept_source")
    assert f"exported the '{final['choice']}' stage's classifier" in result.stderr
    for row in rows.values():
        assert 0 <= row["entropy"] <= np.log(10) + 1e-6 and row["information_maximisation"] >= 0
        assert 0 <= row["agreement_with_source"] <= 1
    assert rows["source"]["agreement_with_source"] == 1.0
    assert results["per_seed"]["0"]["oracle"]["skipped"] == "the target has no labels"
    assert results["per_seed"]["0"]["source"]["source_test_accuracy"] >= 0.3  # it learned (as the test above)
    assert "stage 'oracle' skipped: the target has no labels" in result.stderr
    assert "'oracle' done in" not in result.stderr
    assert "information maximisation" in result.stdout and "accuracy" not in results["table"][0]
    report = open(run_dir / "report.md").read()
    assert "## No confusion matrices" in report and "The target has no labels" in report
    assert "Target labels are read" not in report and rows["final"]["choices"] == [final["choice"]]
    assert not os.path.exists(run_dir / "confusion_matrices.png")
    assert os.path.exists(export_dir / "classifier" / "1" / "saved_model.pb")
    served = tf.saved_model.load(str(export_dir / "classifier" / "1"))
    out = served.signatures["classify"](images=tf.zeros([2, 20, 20, 3], tf.uint8))
    assert out["probabilities"].shape == (2, 10)
