"""SIGINT and SIGTERM end a run with one line saying where it was and that the same command resumes, exit status
130 or 143, no traceback (cycada_tf/train/interrupts.py); the rerun continues from the last checkpoint."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, child_env
from cycada_tf.train import interrupts
from tools import fault_inject

RESUMES = "the same command resumes"


def test_ctrl_c_in_a_stage_is_one_line_and_130(embedded_data_dir, tmp_path):
    command = [sys.executable, "-m", "cycada_tf.experiments.digits", f"--data_dir={embedded_data_dir}",
               f"--run_dir={tmp_path / 'run'}", "--seeds=0", "--stages=source", "--source_epochs=200",
               "--summary_every_epochs=0", "--verbose=2"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=child_env(), preexec_fn=fault_inject.ctrl_c_reaches)  # also as a background job
    deadline = time.monotonic() + 240
    for line in process.stderr:  # wait for the stage to start
        assert time.monotonic() < deadline
        if "stage 'source' starting" in line:
            break
    time.sleep(2)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert err.strip().splitlines()[-1] == f"interrupted in stage 'source' (seed 0); {RESUMES}", err[-3000:]


def test_sigterm_unwinds_as_an_exception_and_is_143():
    previous = signal.getsignal(signal.SIGTERM)
    interrupts.install()
    try:
        interrupts.entering("stage 'pixel' (seed 3)")
        with pytest.raises(interrupts.Terminated) as caught:
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler raises here, in the main thread
            except Exception:  # noqa: BLE001 - what the code's `except Exception` blocks do: not catch it
                pytest.fail("Terminated was caught as an Exception")
        assert interrupts.status_and_line(caught.value) == (143, f"interrupted in stage 'pixel' (seed 3); {RESUMES}")
        assert interrupts.status_and_line(KeyboardInterrupt())[0] == 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        interrupts.entering("start-up")


@pytest.mark.parametrize("error, status", [("KeyboardInterrupt()", 130), ("interrupts.Terminated()", 143)])
def test_the_end_of_an_interrupt_skips_the_interpreters_teardown(error, status):
    # After the line, nothing of the interpreter's teardown runs (an atexit function here; TensorFlow's
    # destructors in a run, which can crash after an interrupt): the status is the signal's, not a crash's.
    code = ("import atexit; from cycada_tf.train import interrupts; atexit.register(print, 'teardown ran'); "
            f"interrupts.entering(\"stage 'feature' (seed 1)\"); interrupts.end({error})")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env=child_env())
    assert done.returncode == status, done.stderr
    assert done.stderr == f"interrupted in stage 'feature' (seed 1); {RESUMES}\n"
    assert "teardown ran" not in done.stdout


def test_once_the_run_has_written_everything_an_interrupt_changes_nothing():
    code = ("import os, signal; from cycada_tf.train import interrupts; interrupts.finished(); "
            "os.kill(os.getpid(), signal.SIGINT); os.kill(os.getpid(), signal.SIGTERM); print('still here')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env=child_env())
    assert (done.returncode, done.stdout, done.stderr) == (0, "still here\n", "")


def test_the_experiments_main_ignores_interrupts_once_its_run_has_returned():
    # The experiment's main with a runner that returns at once: after it, a signal is ignored (exit status 0),
    # as one that reaches a finished run during TensorFlow's teardown is.
    code = ("import os, signal, sys, types\n"
            "stub = types.ModuleType('stub_runner'); stub.run = lambda config: print('ran'); "
            "sys.modules['stub_runner'] = stub\n"
            "from cycada_tf.config import experiment_config as config_lib\n"
            "from cycada_tf.experiments import flags\n"
            "flags.define_from(config_lib.DigitsConfig)\n"
            "main = flags.experiment_main(config_lib.DigitsConfig, 'stub_runner')\n"
            "from absl import flags as absl_flags\n"
            "absl_flags.FLAGS(['prog'])\n"
            "main(['prog'])\n"
            "os.kill(os.getpid(), signal.SIGINT); os.kill(os.getpid(), signal.SIGTERM); print('still here')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env=child_env())
    assert (done.returncode, done.stdout) == (0, "ran\nstill here\n"), done.stderr[-3000:]


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_while_the_modules_load_is_the_same_one_line(signum, status):
    # interrupts.starting(), the first line of the experiments' __main__: a signal before the run's own handling
    # is installed (while absl, the config and TensorFlow load) ends at once with the line, not a traceback
    code = ("import os, signal, time; from cycada_tf.train import interrupts; interrupts.starting(); "
            f"os.kill(os.getpid(), {int(signum)}); time.sleep(30); print('not ended')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                          env=child_env(), preexec_fn=_both_signals_as_a_terminal_has_them)
    assert (done.returncode, done.stdout, done.stderr) == (status, "", f"interrupted in start-up; {RESUMES}\n")


def _both_signals_as_a_terminal_has_them():
    # this test process may ignore SIGTERM (an in-process export ends with interrupts.finished()), and an
    # ignored signal stays ignored across exec: the child starts with both at their defaults
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


def test_after_start_up_sigint_is_a_keyboard_interrupt_again_unless_it_was_ignored():
    code = ("import signal; from cycada_tf.train import interrupts; interrupts.starting(); interrupts.install(); "
            "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, "
            "signal.getsignal(signal.SIGINT) is signal.SIG_IGN)")
    for preexec, expected in ((fault_inject.ctrl_c_reaches, "True False"),
                              (lambda: signal.signal(signal.SIGINT, signal.SIG_IGN), "False True")):
        done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60,
                              env=child_env(), preexec_fn=preexec)
        assert done.stdout.strip() == expected, done.stderr[-2000:]


def test_the_experiments_first_line_is_the_start_up_handler():
    # nothing of the project loads before it: `python -m cycada_tf.experiments.digits` runs the package's
    # __init__ files, then interrupts.py, then starting()
    for name in ("digits", "segmentation"):
        with open(os.path.join(REPO, "cycada_tf", "experiments", f"{name}.py")) as handle:
            code = [line for line in handle.read().split('"""', 2)[2].splitlines() if line.strip()]
        assert code[:3] == ["from cycada_tf.train import interrupts  # first: a Ctrl-C while the rest loads ends "
                            "with the one line", 'if __name__ == "__main__":', "    interrupts.starting()"], name
