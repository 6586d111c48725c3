"""One short real run through every stage on the embedded domains, through the absl main (the session's
tiny_digits_run), and its rerun."""

import json
import os
import re

import pytest

from conftest import TINY, copy_run, run_experiment, tiny_flags
from cycada_tf.experiments import runner

STAGES = ["source", "pixel", "target", "feature", "self_train", "final", "oracle"]


@pytest.mark.slow
def test_every_stage_runs_and_records_its_results_and_decisions(tiny_digits_run):
    run_dir, first = tiny_digits_run["run_dir"], tiny_digits_run["result"]
    assert "Sharding callback" not in first.stderr  # TensorFlow's INFO line per checkpoint save stays quiet
    with open(os.path.join(run_dir, "results.json")) as handle:
        results = json.load(handle)
    rows = {row["stage"]: row for row in results["table"]}
    assert list(rows) == STAGES
    for row in rows.values():
        assert 0.0 <= row["accuracy"] <= 1.0 and row["seeds"] and len(row["seeds"]) == 1
    seed_dir = os.path.join(run_dir, "seed_0")
    per_seed = results["per_seed"]["0"]
    # Something was learned: 10 classes, 297 source test digits; a guess scores 10% +- 1.7% (one s.d.), so 30%
    # is over 11 s.d. away (2 epochs reach ~49%).
    assert per_seed["source"]["source_test_accuracy"] >= 0.3
    # the decisions, with what the target test labels would have picked beside them (reporting only)
    direction = per_seed["pixel"]["direction"]
    assert direction["choice"] == "t2s" and set(direction["criterion"]) == {"s2t", "t2s"}  # given by the flag
    assert direction["oracle_choice"] in ("s2t", "t2s")
    final = per_seed["final"]
    assert final["choice"] in runner.CANDIDATES and final["oracle_choice"] in final["oracle"]
    assert final["criterion_name"] == "veto" and {"source", "self_train"} <= set(final["criterion"])
    # the largest criterion, or the source model when no adapted model beats it
    assert final["choice"] == max(final["criterion"], key=final["criterion"].get) or final.get("kept_source")
    assert final["accuracy"] == per_seed[final["choice"]]["accuracy"] == rows["final"]["accuracy"]
    assert "Decision without target labels, final model" in first.stdout
    for path in ("source/f.weights.h5", "pixel/g_st.weights.h5", "pixel/g_ts.weights.h5",
                 "pixel/translations.png", "target/f.weights.h5", "feature/f.weights.h5",
                 "oracle/f.weights.h5", "translated_source/manifest.json", "translated_target/manifest.json"):
        assert os.path.exists(os.path.join(seed_dir, path)), path
    translated = json.load(open(os.path.join(seed_dir, "translated_source", "manifest.json")))
    # t2s: every source training digit, one style code per copy, through G_T->S(G_S->T(.)), and every target
    # training image through G_T->S, unlabelled
    copies = TINY["digits"]["translations_per_image"]
    assert copies > 1 and translated["splits"]["train"]["count"] == 900 * copies
    assert sorted(translated["splits"]["train"]["classes"], key=int) == [str(k) for k in range(10)]
    translated_target = json.load(open(os.path.join(seed_dir, "translated_target", "manifest.json")))
    assert translated_target["splits"]["train"]["classes"] == {"-1": 1800}  # no target label written
    assert "| Source only |" in first.stdout and "| CyCADA pixel+feat |" in first.stdout
    with open(os.path.join(run_dir, "results.md")) as handle:
        assert "CyCADA pixel only" in handle.read()


@pytest.mark.slow
def test_a_rerun_skips_every_finished_stage_and_exports_the_next_version(tiny_digits_run, tmp_path):
    run = copy_run(tiny_digits_run, tmp_path)  # the session's run stays as it was made
    run_dir, export_dir, seed_dir = run["run_dir"], run["export_dir"], os.path.join(run["run_dir"], "seed_0")
    with open(os.path.join(run_dir, "results.json")) as handle:
        table = json.load(handle)["table"]
    mtime = os.stat(os.path.join(seed_dir, "pixel", "g_st.weights.h5")).st_mtime_ns
    decided = open(os.path.join(seed_dir, "final.json")).read()
    second = run_experiment("digits", f"--data_dir={run['data_dir']}", f"--run_dir={run_dir}",
                            f"--export_dir={export_dir}", *tiny_flags("digits"))
    assert second.stderr.count("already done, skipped") == len(STAGES) - 1  # every stage but "final"
    assert os.stat(os.path.join(seed_dir, "pixel", "g_st.weights.h5")).st_mtime_ns == mtime
    # the final model's choice, made from the same finished stages, is kept rather than computed again
    assert "chosen before from these same finished stages (final.json), kept" in second.stderr
    assert open(os.path.join(seed_dir, "final.json")).read() == decided
    assert json.load(open(os.path.join(run_dir, "results.json")))["table"] == table
    for model in ("classifier", "g_st", "g_ts"):  # each export is the next version
        assert sorted(os.listdir(os.path.join(export_dir, model))) == ["1", "2"]


@pytest.mark.slow
def test_every_stage_reports_its_scalars_images_progress_and_export(tiny_digits_run):
    _check_reporting(tiny_digits_run["run_dir"], tiny_digits_run["result"].stderr, tiny_digits_run["export_dir"])


# What each stage's TensorBoard log holds: every loss and metric of its train_step each epoch, and at the
# interval (here the last epoch) its images.
STAGE_SCALARS = {
    "source": {"train/loss", "train/accuracy", "target_test/accuracy"},
    "pixel": {"train/" + name for name in ("g_loss", "gan_st", "gan_ts", "cycle", "identity", "semantic_st",
                                           "semantic_ts", "d_loss", "d_t_accuracy", "d_s_accuracy")},
    "target": {"train/loss", "train/accuracy", "target_test/accuracy"},
    "feature": {"train/d_loss", "train/g_loss", "train/d_accuracy", "train/gate_open", "train/gated_updates",
                "target_test/accuracy"},
    "self_train": {"train/loss", "train/source_loss", "train/target_loss", "train/pseudo_fraction",
                   "train/threshold", "target_test/accuracy"},
    "oracle": {"train/loss", "train/accuracy", "target_test/accuracy"},
}
STAGE_IMAGES = {"source": {"target_test/confusion"}, "pixel": {"translations"}, "target": {"target_test/confusion"},
                "feature": {"target_test/confusion", "gate"}, "self_train": {"target_test/confusion"},
                "oracle": {"target_test/confusion"}}
EPOCHS = {stage: TINY["digits"][f"{stage}_epochs"] for stage in STAGE_SCALARS}


def _check_reporting(run_dir, stderr, export_dir):
    from PIL import Image

    from cycada_tf.train import summaries
    seed_dir = os.path.join(run_dir, "seed_0")
    for stage, scalars in STAGE_SCALARS.items():
        events = summaries.read_events(os.path.join(seed_dir, stage))
        assert scalars | STAGE_IMAGES[stage] | {"config"} == set(events), stage
        descriptions = summaries.read_descriptions(os.path.join(seed_dir, stage))
        assert set(descriptions) == STAGE_IMAGES[stage] and all(descriptions.values()), stage
        last = max(step for step, _ in events["train/d_loss" if stage == "feature" else sorted(scalars)[0]])
        assert 1 <= last <= EPOCHS[stage]  # the feature stage's gate may end it after epoch 1
        for name in scalars:
            assert [step for step, _ in events[name]][-1] == last and all(
                isinstance(v, float) for _, v in events[name]), (stage, name)
        for tag in STAGE_IMAGES[stage]:
            [(step, images)] = events[tag]
            assert step == last and len(images) == 1 and images[0].dtype.name == "uint8"
            height, width, channels = images[0].shape
            if stage == "pixel":  # six rows (x_s, G_ST(x_s), ... ) of ten 32x32 RGB test images, twice the size,
                assert (height, channels) == (2 * 6 * 32, 3) and width > 2 * 10 * 32  # their labels on the left
            else:
                assert channels == 3 and height > 100 and width > 100
        progress = re.findall(
            rf"{stage} epoch (\d+)/{EPOCHS[stage]}, \d+ s/epoch, (at most )?~[\d.]+ (s|min) left in the stage; "
            r"run ~[\d.]+ (s|min) left", stderr)
        assert [int(epoch) for epoch, _, _, _ in progress] == list(range(1, last + 1)), stage
    # The last stage's line still counts the final model's choice, which comes after it.
    [oracle_done] = [line for line in stderr.splitlines() if "stage 'oracle' done in" in line]
    assert not re.search(r"run ~0 s left", oracle_done) and re.search(r"run ~[\d.]+ (s|min) left", oracle_done)

    with open(os.path.join(run_dir, "report.md")) as handle:
        report = handle.read()
    assert "| Source only |" in report and "| CyCADA pixel+feat |" in report
    assert "(seed_0/pixel/translations.png)" in report and "(confusion_matrices.png)" in report
    assert os.path.isfile(os.path.join(seed_dir, "feature", "gate.png")) and "(seed_0/feature/gate.png)" in report
    picture = Image.open(os.path.join(run_dir, "confusion_matrices.png"))
    assert picture.format == "PNG" and picture.size[0] > 1.5 * picture.size[1]  # before | after

    for model in ("classifier", "g_st", "g_ts"):
        assert os.listdir(os.path.join(export_dir, model)) == ["1"]
        assert os.path.isfile(os.path.join(export_dir, model, "1", "saved_model.pb"))


def test_bad_flags_and_missing_data_end_with_one_clear_message(tmp_path):
    run_dir = os.path.join(tmp_path, "run")  # a run that cannot start leaves no run directory behind
    result = run_experiment("digits", f"--data_dir={tmp_path}", f"--run_dir={run_dir}", "--stages=source,bogus",
                            check=False)
    assert result.returncode != 0 and "--stages" in result.stderr and "bogus" in result.stderr
    assert "Traceback" not in result.stderr

    result = run_experiment("digits", f"--data_dir={tmp_path}", f"--run_dir={run_dir}", "--source=svhn",
                            "--target=mnist", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "prepare_data.py --dataset=svhn" in result.stderr
    assert not os.path.exists(os.path.join(tmp_path, "svhn"))
    assert not os.path.exists(run_dir)

    result = run_experiment("digits", f"--data_dir={tmp_path}", f"--run_dir={run_dir}", "--source=nonesuch",
                            check=False)
    assert result.returncode != 0 and "nonesuch" in result.stderr and "Traceback" not in result.stderr
    assert not os.path.exists(run_dir)


# Two runs of the same command apart from --run_dir: what results.json may differ in. Only the run directory
# itself (a flag that names where the run goes) and each stage's wall-clock seconds.
NOT_REPEATED = ("run_dir", "seconds")


def _without(value, keys=NOT_REPEATED):
    if isinstance(value, dict):
        return {k: _without(v, keys) for k, v in value.items() if k not in keys}
    return [_without(v, keys) for v in value] if isinstance(value, list) else value


def _weights(path):
    import h5py
    arrays = []
    with h5py.File(path) as handle:
        handle.visititems(lambda name, obj: arrays.append((name, obj[()])) if hasattr(obj, "shape") else None)
    return arrays


@pytest.mark.slow
def test_a_deterministic_run_repeats_bit_for_bit(embedded_data_dir, tmp_path):
    """--deterministic, float32, one seed, twice in two processes: the same results.json but for NOT_REPEATED,
    bit-identical weights. Two LeNet stages keep it short (dropout, a shuffled pipeline, Adam); the whole tiny
    run (TINY, every stage) was checked the same way by hand when the flag came: every weights file the same."""
    from cycada_tf.config import experiment_config as config_lib
    from cycada_tf.train import resume
    flags = ["--seeds=0", "--stages=source,oracle", "--source_epochs=1", "--oracle_epochs=1", "--verbose=0",
             "--precision=float32", "--summary_every_epochs=0", "--deterministic"]
    results, run_dirs = [], [str(tmp_path / "first"), str(tmp_path / "second")]
    for run_dir in run_dirs:
        out = run_experiment("digits", f"--data_dir={embedded_data_dir}", f"--run_dir={run_dir}", *flags)
        assert "--deterministic: TensorFlow op determinism on" in out.stderr
        with open(os.path.join(run_dir, "results.json")) as handle:
            results.append(json.load(handle))
    first, second = results
    assert first["config"]["deterministic"] is True and first["config"]["precision"] == "float32"
    assert first["per_seed"]["0"]["source"]["source_test_accuracy"] >= 0.3  # it learned (as the test above)
    assert json.dumps(_without(first)) == json.dumps(_without(second))
    for stage in ("source", "oracle"):
        [a, b] = [_weights(os.path.join(d, "seed_0", stage, "f.weights.h5")) for d in run_dirs]
        assert [n for n, _ in a] == [n for n, _ in b]
        assert all(x.tobytes() == y.tobytes() for (_, x), (_, y) in zip(a, b)), stage
    # A run directory keeps the value it was made with: without the flag it is refused, naming it.
    plain = config_lib.DigitsConfig(data_dir=embedded_data_dir, run_dir=run_dirs[0], seeds=(0,),
                                    stages=("source", "oracle"), source_epochs=1, oracle_epochs=1,
                                    precision="float32", summary_every_epochs=0, verbose=0)
    with pytest.raises(ValueError, match=r"--deterministic=False \(run directory: True\)"):
        resume.check_run_config(plain, run_dirs[0], write=False)


def test_deterministic_refuses_xla_before_anything_runs(tmp_path):
    from cycada_tf.config import experiment_config as config_lib
    from cycada_tf.train import determinism
    with pytest.raises(ValueError, match=r"--deterministic: --jit_compile=true \(pixel\)"):  # when it is built
        config_lib.DigitsConfig(data_dir=str(tmp_path), run_dir=str(tmp_path / "run"), deterministic=True,
                                jit_compile="auto,pixel=true")
    assert not determinism.enabled() and not os.path.exists(tmp_path / "run")


@pytest.mark.slow
def test_the_release_network_learns_the_source_task(embedded_data_dir, tmp_path):
    """--task_model=dtn (the authors' release's SVHN -> MNIST classifier) through the runner: the run records
    it, and its stage's weights load into it."""
    from cycada_tf.config import experiment_config as config_lib
    from cycada_tf.experiments import runner
    from cycada_tf import tasks
    from cycada_tf.models import dtn
    config = config_lib.DigitsConfig(data_dir=embedded_data_dir, run_dir=str(tmp_path / "run"), seeds=(0,),
                                     stages=("source",), source_epochs=2, verbose=0, summary_every_epochs=0,
                                     task_model="dtn")
    source = runner.run(config)["per_seed"]["0"]["source"]
    # 10 classes, 297 source test digits: 30% is over 11 s.d. of a guess away (2 epochs reached 54%)
    assert source["source_test_accuracy"] >= 0.3
    with open(tmp_path / "run" / "config.json") as handle:
        assert json.load(handle)["task_model"] == "dtn"
    net = tasks.for_config(config).network(str(tmp_path / "run" / "seed_0" / "source" / "f.weights.h5"))
    assert isinstance(net, dtn.DTN)


def test_an_unknown_task_model_ends_with_one_line(embedded_data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    result = run_experiment("digits", f"--data_dir={embedded_data_dir}", f"--run_dir={run_dir}",
                            "--task_model=vgg", check=False)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == "error: flag --task_model=vgg: value should be one of <lenet|dtn>"  # absl's enum flag
    assert not os.path.exists(run_dir)
