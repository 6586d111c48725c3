"""tools/benchmark.py: a tiny real run of every stage and the input pipeline gives positive finite rates in
the JSON it prints and writes; --compare gives new / old; a bad flag is named, run as a script."""

import json
import math
import os
import subprocess
import sys

from tools import benchmark

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--steps=2", "--warmup_steps=1", "--batch_size=8", "--generator_width=4", "--discriminator_width=4",
        "--noise_channels=2", "--minibatch_std"]


def _rates(report):
    return {(key, rate): value for key, entry in report["results"].items()
            for rate, value in benchmark.rates(entry).items()}


def test_every_stage_and_pipeline_gives_a_positive_finite_rate(embedded_data_dir, tmp_path, capsys):
    output = str(tmp_path / "bench.json")
    report = benchmark.main([*TINY, f"--data_dir={embedded_data_dir}", f"--output={output}"])

    assert set(report) == {"machine", "settings", "results"}
    for key in ("tensorflow", "keras", "python", "cpu_count", "gpus"):
        assert key in report["machine"]
    assert report["settings"]["generator_width"] == 4 and report["settings"]["minibatch_std"] is True
    assert set(report["results"]) == {"source", "pixel", "feature", "pipeline:uci", "pipeline:uci_m"}
    for key, entry in report["results"].items():
        assert entry["images"], key  # what one image is, said for every rate
    for stage in ("source", "pixel", "feature"):
        assert set(report["results"][stage]) >= {"images_per_second", "seconds_per_step", "metrics"}
        assert all(math.isfinite(v) for v in report["results"][stage]["metrics"].values()), stage
    for key in ("pipeline:uci", "pipeline:uci_m"):
        assert set(benchmark.rates(report["results"][key])) == {"images_per_second",
                                                                "decode_images_per_second"}
    rates = _rates(report)
    assert len(rates) == 7
    for where, value in rates.items():
        assert isinstance(value, float) and math.isfinite(value) and value > 0, (where, value)

    with open(output) as handle:
        assert json.load(handle) == report
    assert json.loads(capsys.readouterr().out) == report  # stdout is the JSON alone

    again = benchmark.main([*TINY, "--stages=source", f"--compare={output}"])
    ratios = again["comparison"]["ratios"]
    assert list(ratios) == ["source"]
    new, old = again["results"]["source"]["images_per_second"], report["results"]["source"]["images_per_second"]
    assert math.isclose(ratios["source"]["images_per_second"], new / old)


def test_a_bad_flag_is_named_when_run_as_a_script():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, os.path.join(REPO, "tools", "benchmark.py"), "--stages=source,gan"],
                            cwd=str(os.path.dirname(REPO)), env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "--stages: unknown stage gan" in result.stderr
