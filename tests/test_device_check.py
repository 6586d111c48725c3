"""tools/device_check.sh: the GPU check's plan (nvidia-smi, TensorFlow, the default digits run with the GPU
defaults, the benchmark under both mixed precisions with and without XLA, mirrored with two GPUs) within its
8 minutes; its CPU path runs every step here and writes its JSON files; a machine without TensorFlow and an
unwritable --out each end in one line."""

import json
import os
import stat
import subprocess
import sys

import pytest

from conftest import REPO, child_env
from tools import device_check

SCRIPT = os.path.join(REPO, "tools", "device_check.sh")


def _summary(folder):
    with open(os.path.join(folder, "summary.json")) as handle:
        return json.load(handle)


def test_the_gpu_plan_has_every_step_of_the_check(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(["bash", SCRIPT, "--dry_run", "--gpus=2", f"--out={out}"], capture_output=True,
                          text=True, timeout=60, env=child_env())
    assert done.returncode == 0, done.stderr
    summary = _summary(out)
    assert summary["mode"] == "gpu" and summary["budget_s"] == 480 and os.listdir(out) == ["summary.json"]
    steps = {step["name"]: step["command"] for step in summary["steps"]}
    benches = {f"bench_{p}_xla_{x}" for p in ("mixed_float16", "mixed_bfloat16") for x in ("true", "false")}
    assert set(steps) == {"nvidia_smi", "tensorflow", "digits_run", "mirrored"} | benches
    assert steps["nvidia_smi"][0] == "nvidia-smi"
    for name in benches:
        precision, xla = name[len("bench_"):].rsplit("_xla_", 1)
        assert f"--precisions={precision}" in steps[name] and f"--jit_compile={xla}" in steps[name]
    run = steps["digits_run"]
    assert run[1:3] == ["-m", "cycada_tf.experiments.digits"] and "--precision=auto" in run
    assert "--jit_compile=auto" in run and not any(a.startswith("--stages") for a in run)  # the default run
    assert "--strategy=mirrored" in steps["mirrored"]
    one_gpu = device_check.plan(1, str(tmp_path))
    assert "mirrored" not in [name for name, *_ in one_gpu]


@pytest.mark.slow
def test_the_cpu_path_runs_every_step_and_writes_its_files(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run(["bash", SCRIPT, "--cpu", f"--out={out}"], capture_output=True, text=True,
                          timeout=400, env=child_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(os.listdir(out)) == ["bench.json", "run_results.json", "summary.json"]
    summary = _summary(out)
    assert summary["mode"] == "cpu" and summary["tensorflow"]["tensorflow"]
    assert [step["name"] for step in summary["steps"]] == ["tensorflow", "digits_run", "bench_float32_xla_false"]
    assert all(step["rc"] == 0 and step["seconds"] > 0 for step in summary["steps"])
    with open(out / "bench.json") as handle:
        results = json.load(handle)["bench_float32_xla_false"]["results"]
    assert results["source:float32"]["images_per_second"] > 0
    with open(out / "run_results.json") as handle:
        run = json.load(handle)
    assert run["per_seed"]["0"]["source"]["source_test_accuracy"] > 0.2  # learned: chance is 0.1


def test_without_tensorflow_the_check_stops_in_one_line(tmp_path, monkeypatch, capsys):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho \"ModuleNotFoundError: No module named 'tensorflow'\" >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(device_check, "python", lambda: str(fake))
    assert device_check.main(["--cpu", f"--out={tmp_path / 'out'}"]) == 3
    line = capsys.readouterr().err.strip()
    assert line == f"error: TensorFlow does not import with {fake}: the other steps need it (docs/speed.md)"
    summary = _summary(tmp_path / "out")
    assert summary["steps"][-1]["name"] == "tensorflow" and "No module named" in summary["steps"][-1]["tail"]


def test_an_out_that_is_a_file_is_one_line_and_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    done = subprocess.run([sys.executable, os.path.join(REPO, "tools", "device_check.py"), "--dry_run",
                           f"--out={blocker}"], capture_output=True, text=True, timeout=60, env=child_env())
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"error: --out={blocker}: cannot create it (File exists)"], done.stderr
