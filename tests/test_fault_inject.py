"""tools/fault_inject.py: what it counts as left behind, where it says a run was killed, and one real trial
(kill -9 early in a tiny embedded run, then the rerun finishes with results.json and nothing partial)."""

import os
import signal

import pytest

from tools import fault_inject


def test_leftovers_are_the_names_only_an_unfinished_write_has(tmp_path):
    for name in ("data/.uci.partial-12@host-ab1", "data/uci.old-.uci.partial-3@h-x", "run/config.json.tmp",
                 "run/seed_0/source/f.partial.weights.h5", "run/seed_0/source/ckpt/ckpt-2_temp",
                 "data/uci/train-00000-of-00001.tfrecord", "run/seed_0/source/ckpt/ckpt-1.index",
                 "run/results.json"):
        os.makedirs(os.path.dirname(tmp_path / name), exist_ok=True)
        (tmp_path / name).write_text("")
    found = [os.path.relpath(p, tmp_path) for p in fault_inject.leftovers(str(tmp_path))]
    assert found == ["data/.uci.partial-12@host-ab1", "data/uci.old-.uci.partial-3@h-x", "run/config.json.tmp",
                     "run/seed_0/source/ckpt/ckpt-2_temp", "run/seed_0/source/f.partial.weights.h5"]


def test_last_stage_is_the_last_one_started():
    assert fault_inject.last_stage("") == "data"
    assert fault_inject.last_stage("seed 0: stage 'source' starting\n...\nseed 0: stage 'pixel' starting\n") == "pixel"


@pytest.mark.slow
def test_one_kill_and_rerun(tmp_path, capsys):
    # the kill falls in the first 15 s (the data, source or pixel stage); the rerun resumes it and runs the rest
    assert fault_inject.main(["--kills=1", "--horizon_s=15", "--stages=source,pixel",
                              f"--work_dir={tmp_path / 'fi'}"]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 reruns finished with results.json and no partial file" in out, out


def test_an_export_is_whole_only_with_every_part_of_every_version(tmp_path):
    export = tmp_path / "export"
    assert fault_inject.broken_versions(str(export)) == [str(export / "models.config")]
    for part in ("saved_model.pb", "variables/variables.index", "assets/run.json"):
        os.makedirs(os.path.dirname(export / "g_st" / "1" / part), exist_ok=True)
        (export / "g_st" / "1" / part).write_text("")
    (export / "models.config").write_text("")
    os.makedirs(export / "g_ts" / "1" / "variables")  # a version without its SavedModel
    assert fault_inject.broken_versions(str(export)) == [str(export / "g_ts" / "1")]


def test_ctrl_c_must_end_in_one_line_130_and_nothing_partial():
    line = "interrupted in stage 'pixel' (seed 0); the same command resumes"
    assert fault_inject.interrupt_ok("sigint", 130, f"seed 0: stage 'pixel' starting\n{line}\n", [])
    assert not fault_inject.interrupt_ok("sigint", 130, f"Traceback (most recent call last):\n{line}\n", [])
    assert not fault_inject.interrupt_ok("sigint", 1, line, [])
    assert not fault_inject.interrupt_ok("sigint", 130, line, ["run/config.json.tmp"])
    assert fault_inject.interrupt_ok("kill", -9, "", ["run/config.json.tmp"])  # a kill leaves what it leaves


# A Ctrl-C 0.0 s after the start (a fault-injection trial): Python's own ending, before any line of the project
RUNPY_TRACEBACK = """Traceback (most recent call last):
  File "<frozen runpy>", line 189, in _run_module_as_main
  File "<frozen importlib._bootstrap>", line 1176, in _find_and_load
  File "<frozen importlib._bootstrap_external>", line 1659, in _fill_cache
KeyboardInterrupt
"""


def test_a_ctrl_c_before_the_projects_first_line_is_too_early_and_drawn_again():
    assert fault_inject.before_the_project_started(-signal.SIGINT, RUNPY_TRACEBACK)
    importing = RUNPY_TRACEBACK.replace("KeyboardInterrupt", '  File "/r/cycada_tf/experiments/digits.py", line 3, '
                                        'in <module>\n  File "/r/cycada_tf/train/interrupts.py", line 6, in '
                                        '<module>\nKeyboardInterrupt')
    assert fault_inject.before_the_project_started(-signal.SIGINT, importing)
    # from the project's own code on, it is a failure to end with one line
    later = RUNPY_TRACEBACK.replace("KeyboardInterrupt", '  File "/r/cycada_tf/config/experiment_config.py", '
                                    'line 9, in <module>\nKeyboardInterrupt')
    assert not fault_inject.before_the_project_started(-signal.SIGINT, later)
    assert not fault_inject.before_the_project_started(130, RUNPY_TRACEBACK)
    assert not fault_inject.before_the_project_started(-signal.SIGINT, "seed 0: stage 'pixel' starting\n")
    assert fault_inject.before_the_project_started(-signal.SIGINT, "")  # before Python's own handler
    site = 'Fatal Python error: init_import_site\nTraceback (most recent call last):\n  File "<frozen site>", ' \
           'line 616, in <module>\nKeyboardInterrupt\n'
    assert fault_inject.before_the_project_started(1, site)
    assert not fault_inject.before_the_project_started(1, later)
