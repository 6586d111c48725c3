"""tools/benchmark.py: a tiny real run of every stage under two precisions and of the input pipelines gives
positive finite rates and peak memory in the JSON it prints and writes, with the pipelines' headroom over the
fastest stage and each stage's arithmetic against the machine's matrix-product peak; --compare gives new / old
(also against a report from before --precisions); a bad flag is named, run as a script."""

import json
import math
import os
import subprocess
import sys

from conftest import REPO, child_env
from tools import benchmark

TINY = ["--steps=2", "--warmup_steps=1", "--batch_size=8", "--generator_width=4", "--discriminator_width=4",
        "--noise_channels=2", "--minibatch_std"]


def _rates(report):
    return {(key, rate): value for key, entry in report["results"].items()
            for rate, value in benchmark.rates(entry).items()}


def test_every_stage_and_pipeline_gives_a_positive_finite_rate(embedded_data_dir, tmp_path, capsys):
    output = str(tmp_path / "bench.json")
    report = benchmark.main([*TINY, f"--data_dir={embedded_data_dir}", f"--output={output}",
                             "--precisions=float32,mixed_bfloat16"])

    assert set(report) == {"machine", "settings", "results", "pipeline_headroom", "matmul_peak_gflop_per_second"}
    peaks = report["matmul_peak_gflop_per_second"]
    assert set(peaks) == {"float32", "bfloat16"} and all(math.isfinite(v) and v > 0 for v in peaks.values())
    for key in ("tensorflow", "keras", "python", "cpu_count", "gpus"):
        assert key in report["machine"]
    assert report["settings"]["generator_width"] == 4 and report["settings"]["minibatch_std"] is True
    stages = [f"{stage}:{p}" for stage in ("source", "pixel", "feature") for p in ("float32", "mixed_bfloat16")]
    assert set(report["results"]) == set(stages) | {"pipeline:uci", "pipeline:uci_m"}
    for key, entry in report["results"].items():
        assert entry["images"], key  # what one image is, said for every rate
    for key in stages:
        entry = report["results"][key]
        assert set(entry) >= {"images_per_second", "seconds_per_step", "metrics", "peak_memory_bytes"}
        assert entry["precision"] == key.split(":")[1] and entry["batch_size"] == 8
        assert all(math.isfinite(v) for v in entry["metrics"].values()), key
        assert entry["peak_memory"] == "process_peak_rss" and entry["peak_memory_bytes"] > 100 * 2**20, key
        # the step's arithmetic (tools/flops.py), its rate and how near the machine's matmul peak that is
        assert entry["gflop_per_step"] > 0, key
        assert math.isclose(entry["gflop_per_second"], entry["gflop_per_step"] / entry["seconds_per_step"])
        dtype = "float32" if entry["precision"] == "float32" else "bfloat16"
        assert math.isclose(entry["fraction_of_matmul_peak"], entry["gflop_per_second"] / peaks[dtype])
    for stage in ("source", "pixel", "feature"):  # the same arithmetic under either precision
        assert report["results"][f"{stage}:float32"]["gflop_per_step"] == report["results"][
            f"{stage}:mixed_bfloat16"]["gflop_per_step"]
    for key in ("pipeline:uci", "pipeline:uci_m"):
        assert set(benchmark.rates(report["results"][key])) == {"images_per_second",
                                                                "decode_images_per_second"}
    rates = _rates(report)
    assert len(rates) == 10
    for where, value in rates.items():
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (where, value)

    with open(output) as handle:
        assert json.load(handle) == report
    assert json.loads(capsys.readouterr().out) == report  # stdout is the JSON alone

    fastest = max(stages, key=lambda k: report["results"][k]["images_per_second"])
    headroom = report["pipeline_headroom"]
    assert headroom["fastest_stage"] == fastest and headroom["target"] == 5
    assert math.isclose(headroom["pipelines"]["pipeline:uci"], report["results"]["pipeline:uci"][
        "images_per_second"] / report["results"][fastest]["images_per_second"])
    assert headroom["minimum"] == min(headroom["pipelines"].values())

    again = benchmark.main([*TINY, "--stages=source", "--precisions=float32", f"--compare={output}"])
    ratios = again["comparison"]["ratios"]
    assert list(ratios) == ["source:float32"]
    new = again["results"]["source:float32"]["images_per_second"]
    old = report["results"]["source:float32"]["images_per_second"]
    assert math.isclose(ratios["source:float32"]["images_per_second"], new / old)

    # A report written before --precisions keyed its (float32) stages by the stage alone.
    legacy = str(tmp_path / "legacy.json")
    with open(legacy, "w") as handle:
        json.dump({"results": {"source": report["results"]["source:float32"]}}, handle)
    ratios = benchmark.main([*TINY, "--stages=source", "--precisions=float32",
                             f"--compare={legacy}"])["comparison"]["ratios"]
    assert list(ratios) == ["source:float32"] and ratios["source:float32"]["images_per_second"] > 0


def test_a_bad_flag_is_named_when_run_as_a_script():
    env = child_env()
    for flag, says in (("--stages=source,gan", "--stages: unknown stage gan"),
                       ("--precisions=float32,int8", "--precisions: unknown precision int8")):
        result = subprocess.run([sys.executable, os.path.join(REPO, "tools", "benchmark.py"), flag],
                                cwd=str(os.path.dirname(REPO)), env=env, capture_output=True, text=True,
                                timeout=300)
        assert result.returncode == 2
        assert says in result.stderr
