"""tools/forward_memory.py: one forward pass of a segmenter at batch 1, its peak memory read back as one JSON
line (docs/segmentation.md's 2048x1024 numbers come from it)."""

import json
import subprocess
import sys

from conftest import REPO, child_env


def test_a_tiny_forward_pass_reports_its_peak_memory():
    done = subprocess.run([sys.executable, "tools/forward_memory.py", "--model=small_fcn", "--height=32",
                           "--width=64"], cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert (result["model"], result["height"], result["width"]) == ("small_fcn", 32, 64)
    assert 0 < result["rss_before_model_mib"] <= result["peak_rss_mib"] and result["seconds"] >= 0
    assert result["pass_peak_mib"] is None or 0 < result["pass_peak_mib"] <= result["peak_rss_mib"]


def test_a_size_that_is_no_image_is_refused_naming_the_flag():
    done = subprocess.run([sys.executable, "tools/forward_memory.py", "--height=0"], cwd=REPO, env=child_env(),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--height and --width must be positive" in done.stderr
