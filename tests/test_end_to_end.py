"""One short real run through every stage on the embedded domains, through the absl main, and its rerun."""

import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--seeds=0", "--source_epochs=2", "--pixel_epochs=1", "--target_epochs=1", "--feature_epochs=2",
        "--oracle_epochs=1", "--pixel_batch_size=64", "--generator_width=4", "--discriminator_width=4",
        "--feature_min_steps_per_epoch=5", "--noise_channels=2", "--verbose=0"]


def run_main(*args, check=True):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)
    result = subprocess.run([sys.executable, "-m", "cycada_tf.experiments.digits", *args], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.mark.slow
def test_every_stage_runs_and_a_rerun_skips_them(embedded_data_dir, tmp_path):
    run_dir = str(tmp_path / "run")
    first = run_main(f"--data_dir={embedded_data_dir}", f"--run_dir={run_dir}", *TINY)
    with open(os.path.join(run_dir, "results.json")) as handle:
        results = json.load(handle)
    rows = {row["stage"]: row for row in results["table"]}
    assert list(rows) == ["source", "pixel", "target", "feature", "oracle"]
    for row in rows.values():
        assert 0.0 <= row["accuracy"] <= 1.0 and row["seeds"] and len(row["seeds"]) == 1
    seed_dir = os.path.join(run_dir, "seed_0")
    for path in ("source/f.weights.h5", "pixel/g_st.weights.h5", "pixel/g_ts.weights.h5",
                 "pixel/translations.png", "target/f.weights.h5", "feature/f.weights.h5",
                 "oracle/f.weights.h5", "translated_source/manifest.json", "translated_target/manifest.json"):
        assert os.path.exists(os.path.join(seed_dir, path)), path
    translated = json.load(open(os.path.join(seed_dir, "translated_source", "manifest.json")))
    # the default direction (t2s): every source training digit, 3 style codes each, through G_T->S(G_S->T(.)),
    # and every target training image through G_T->S, unlabelled
    assert translated["splits"]["train"]["count"] == 900 * 3
    assert sorted(translated["splits"]["train"]["classes"], key=int) == [str(k) for k in range(10)]
    translated_target = json.load(open(os.path.join(seed_dir, "translated_target", "manifest.json")))
    assert translated_target["splits"]["train"]["classes"] == {"-1": 1800}  # no target label written
    assert "| Source only |" in first.stdout and "| CyCADA pixel+feat |" in first.stdout
    with open(os.path.join(run_dir, "results.md")) as handle:
        assert "CyCADA pixel only" in handle.read()

    mtime = os.stat(os.path.join(seed_dir, "pixel", "g_st.weights.h5")).st_mtime_ns
    second = run_main(f"--data_dir={embedded_data_dir}", f"--run_dir={run_dir}", *TINY)
    assert second.stdout.count("already done, skipped") == 5
    assert os.stat(os.path.join(seed_dir, "pixel", "g_st.weights.h5")).st_mtime_ns == mtime
    assert json.load(open(os.path.join(run_dir, "results.json")))["table"] == results["table"]


def test_bad_flags_and_missing_data_end_with_one_clear_message(tmp_path):
    result = run_main(f"--data_dir={tmp_path}", "--stages=source,bogus", check=False)
    assert result.returncode != 0 and "--stages" in result.stderr and "bogus" in result.stderr
    assert "Traceback" not in result.stderr

    result = run_main(f"--data_dir={tmp_path}", "--source=svhn", "--target=mnist", check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "prepare_data.py --dataset=svhn" in result.stderr
    assert not os.path.exists(os.path.join(tmp_path, "svhn"))

    result = run_main(f"--data_dir={tmp_path}", "--source=nonesuch", check=False)
    assert result.returncode != 0 and "nonesuch" in result.stderr and "Traceback" not in result.stderr
