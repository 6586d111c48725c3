"""A new stage is one file plus one line: a copy of the package gains tests/dummy_stage.py as
cycada_tf/stages/dummy.py and its line in stages/__init__.py's NAMES, and nothing else; the digits main
then accepts it in --stages, runs it after the source stage, and reports it in the table."""

import json
import os
import shutil
import subprocess
import sys

import cycada_tf

HERE = os.path.dirname(os.path.abspath(__file__))
LAST_LINE = '    "oracle",\n'


def test_a_dummy_stage_in_one_file_plus_one_line_runs_and_is_reported(embedded_data_dir, tmp_path):
    package = tmp_path / "tree" / "cycada_tf"
    shutil.copytree(os.path.dirname(cycada_tf.__file__), package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copyfile(os.path.join(HERE, "dummy_stage.py"), package / "stages" / "dummy.py")  # the file
    names = (package / "stages" / "__init__.py").read_text()
    assert names.count(LAST_LINE) == 1
    (package / "stages" / "__init__.py").write_text(names.replace(LAST_LINE, LAST_LINE + '    "dummy",\n'))  # the line
    run_dir = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(tmp_path / "tree"))
    done = subprocess.run([sys.executable, "-m", "cycada_tf.experiments.digits", "--stages=source,dummy",
                           f"--data_dir={embedded_data_dir}", f"--run_dir={run_dir}", "--seeds=0",
                           "--source_epochs=2", "--summary_every_epochs=0", "--verbose=0"],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "stage 'dummy' done" in done.stdout + done.stderr
    summary = json.loads((run_dir / "results.json").read_text())
    rows = {row["stage"]: row for row in summary["table"]}
    assert list(rows) == ["source", "dummy"]
    assert rows["dummy"]["model"] == "Dummy (the source model, copied)"
    assert rows["dummy"]["accuracy"] == rows["source"]["accuracy"]  # the same network, scored alike
    assert "| Dummy (the source model, copied) |" in (run_dir / "results.md").read_text()
    assert "Dummy (the source model, copied)" in (run_dir / "report.md").read_text()
