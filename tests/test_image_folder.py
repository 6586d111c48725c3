"""Own data as torchvision users have it: `folder:` takes the plain ImageFolder layout, root/<class>/*.png, with
a test split held out deterministically and said in the log and the report; a source and target whose classes
differ are refused naming the classes on each side. Real PNG files, written here."""

import json
import os

import numpy as np
import pytest

import official_files
from cycada_tf.config import experiment_config as config_lib
from cycada_tf.experiments import runner
from cycada_tf import tasks
from cycada_tf.data import registry, tfrecord
from cycada_tf.data.sources import folder


def write_image_folder(root, classes, per_class, seed=0):
    """root/<class>/<k>.png, `per_class` 28x28 grey digit-like images of each class."""
    rng = np.random.RandomState(seed)
    for name in classes:
        os.makedirs(os.path.join(root, name), exist_ok=True)
        for k in range(per_class):
            image = rng.randint(0, 256, (28, 28)).astype(np.uint8)
            with open(os.path.join(root, name, f"img_{k:03d}.png"), "wb") as handle:
                handle.write(official_files.png_bytes(image))


def test_the_image_folder_layout_is_a_classification_dataset_with_a_held_out_test_split(tmp_path):
    root = tmp_path / "pets"
    write_image_folder(str(root), ["cat", "dog", "emu"], 25)
    os.makedirs(root / ".ipynb_checkpoints")  # a hidden folder is no class
    name = f"folder:{root}"
    spec = registry.get(name)
    assert spec.classes == ("cat", "dog", "emu") and spec.labelled and spec.channels == 1
    assert spec.note == (f"{root}: <class>/ (ImageFolder layout) without test/: every 10th image of each class, "
                         "by file name, is held out as the test split (the same images every time)")
    manifest = tfrecord.read_manifest(registry.ensure(name, str(tmp_path / "data")))
    # 25 images a class: the 10th and 20th of each (img_009, img_019) are tested
    assert manifest["splits"]["train"]["count"] == 3 * 23 and manifest["splits"]["test"]["count"] == 3 * 2
    assert manifest["splits"]["test"]["classes"] == {"0": 2, "1": 2, "2": 2}
    splits, _ = folder.classification_items(name)
    assert sorted(os.path.basename(p) for p, k in splits["test"] if k == 1) == ["img_009.png", "img_019.png"]
    assert folder.classification_items(name) == (splits, spec.classes)  # the same split every time


def test_a_train_folder_with_its_own_test_split_needs_no_note(tmp_path):
    write_image_folder(str(tmp_path / "d" / "train"), ["a", "b"], 3)
    write_image_folder(str(tmp_path / "d" / "test"), ["a", "b"], 2)
    assert registry.get(f"folder:{tmp_path / 'd'}").note == ""
    write_image_folder(str(tmp_path / "e" / "train"), ["a", "b"], 3)
    assert "train/<class>/ without test/: every 10th image" in registry.get(f"folder:{tmp_path / 'e'}").note


def test_an_empty_class_folder_is_named(tmp_path):
    root = tmp_path / "pets"
    write_image_folder(str(root), ["cat"], 2)
    os.makedirs(root / "dog")
    with pytest.raises(tfrecord.DataError, match=f"{root}/dog: no images .*every folder of {root} is a class"):
        registry.get(f"folder:{root}")


def test_different_classes_are_named_on_each_side(tmp_path):
    write_image_folder(str(tmp_path / "s"), ["cat", "dog", "emu"], 2)
    write_image_folder(str(tmp_path / "t"), ["cat", "dog", "fox"], 2)
    source, target = f"folder:{tmp_path / 's'}", f"folder:{tmp_path / 't'}"
    config = config_lib.DigitsConfig(source=source, target=target, data_dir=str(tmp_path / "data"))
    with pytest.raises(ValueError) as caught:
        tasks.for_config(config)
    assert str(caught.value) == (
        f"--source={source} and --target={target} have different classes: source (3) cat, dog, emu; target (3) "
        "cat, dog, fox (only in the source: emu; only in the target: fox)")


def test_a_run_says_the_split_it_made_in_its_log_results_and_report(tmp_path, capsys):
    write_image_folder(str(tmp_path / "s"), [str(k) for k in range(10)], 10, seed=1)
    write_image_folder(str(tmp_path / "t"), [str(k) for k in range(10)], 10, seed=2)
    run_dir = tmp_path / "run"
    config = config_lib.DigitsConfig(source=f"folder:{tmp_path / 's'}", target=f"folder:{tmp_path / 't'}",
                                     data_dir=str(tmp_path / "data"), run_dir=str(run_dir), stages=("source",),
                                     seeds=(0,), source_epochs=1, verbose=0, summary_every_epochs=0)
    runner.run(config)
    notes = [registry.get(config.source).note, registry.get(config.target).note]
    assert all("(ImageFolder layout) without test/: every 10th image" in note for note in notes)
    err = capsys.readouterr().err
    assert all(f"] {note}\n" in err for note in notes)
    assert json.load(open(run_dir / "results.json"))["data_notes"] == notes
    report = open(run_dir / "report.md").read()
    assert "## Data\n\n" + "\n".join(notes) in report
