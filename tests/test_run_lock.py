"""One run per directory (locks.py): a second process on a held --run_dir or --export_dir is refused in one line
naming the holder's PID, before it trains or writes; a lock left by a kill -9 is taken over, and said so.
Export also removes the .partial-* versions that killed exports left."""

import os
import signal
import socket
import subprocess
import sys
import types

import keras
import pytest

from conftest import REPO, child_env
from cycada_tf.config import experiment_config as config_lib
from cycada_tf.serving import export
from cycada_tf.train import locks

HOLD = ("import sys, time; from cycada_tf.train import locks\n"
        "try:\n"
        "    with locks.held(sys.argv[1], '--run_dir'):\n"
        "        print('held', flush=True); time.sleep(600)\n"
        "except locks.Busy as error:\n"
        "    print(f'error: {error}', file=sys.stderr); sys.exit(2)\n")


def hold_in_another_process(directory):
    return subprocess.Popen([sys.executable, "-c", HOLD, directory], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=child_env())


def busy_line(directory, pid, flag="--run_dir", name=locks.RUN_LOCK):
    return (f"{flag}={directory} is in use by process {pid} (its lock: {os.path.join(directory, name)}); wait for "
            f"it to end, or give another {flag}")


def test_a_second_process_is_refused_naming_the_holders_pid(tmp_path):
    directory = str(tmp_path / "run")
    with locks.held(directory, "--run_dir"):
        second = hold_in_another_process(directory)
        out, err = second.communicate(timeout=60)
        assert second.returncode == 2 and err.splitlines() == [f"error: {busy_line(directory, os.getpid())}"]
        with pytest.raises(locks.Busy) as caught:  # another open of the lock, in this process too
            with locks.held(directory, "--run_dir"):
                pass
        assert str(caught.value) == busy_line(directory, os.getpid())
    with locks.held(directory, "--run_dir"):  # released at the end of the block
        pass


def test_a_lock_left_by_kill_9_is_taken_over(tmp_path):
    directory = str(tmp_path / "run")
    holder = hold_in_another_process(directory)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(locks.Busy, match=f"in use by process {holder.pid} "):
        with locks.held(directory, "--run_dir"):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    said = []
    with locks.held(directory, "--run_dir", log=said.append):
        pass
    assert said == [f"{os.path.join(directory, locks.RUN_LOCK)}: taking over the lock of process {holder.pid}, "
                    "which ended without releasing it (killed)"]
    with locks.held(directory, "--run_dir", log=said.append):  # released cleanly: nothing to take over
        pass
    assert len(said) == 1 and os.listdir(directory) == []


def test_the_runner_refuses_a_held_run_dir_before_it_trains(embedded_data_dir, tmp_path):
    from cycada_tf.experiments import runner
    run_dir = str(tmp_path / "run")
    config = config_lib.DigitsConfig(data_dir=embedded_data_dir, run_dir=run_dir, seeds=(0,), stages=("source",),
                                     source_epochs=1, summary_every_epochs=0, verbose=0)
    with locks.held(run_dir, "--run_dir"):
        with pytest.raises(locks.Busy, match=f"^--run_dir={run_dir} is in use by process {os.getpid()} "):
            runner.run(config)
    assert os.listdir(run_dir) == []  # no config.json, no seed_0/ (and the lock went with its holder)


def _trial(run_dir):
    """What export.export_seed reads of a finished run, for a tiny classifier (no training)."""
    net = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    task = types.SimpleNamespace(name="digits", serving_model=lambda network, view: export.Classifier(
        network, 16, 1, [str(k) for k in range(10)]))
    os.makedirs(os.path.join(run_dir, "seed_0", "source"))
    open(os.path.join(run_dir, "seed_0", "source", "f.weights.h5"), "w").close()
    return types.SimpleNamespace(
        task=task, seed=0, dir=os.path.join(run_dir, "seed_0"), config=types.SimpleNamespace(source="uci",
                                                                                             target="uci_m"),
        weights=lambda stage, name="f": os.path.join(run_dir, "seed_0", stage, f"{name}.weights.h5"),
        final=lambda: None, has_generators=lambda: False, reads_translated=lambda stage: False,
        network=lambda stage: net)


def test_export_takes_its_lock_and_removes_what_killed_exports_left(tmp_path):
    trial, export_dir = _trial(str(tmp_path / "run")), str(tmp_path / "export")
    with locks.held(export_dir, "--export_dir", locks.EXPORT_LOCK):
        with pytest.raises(locks.Busy) as caught:
            export.export_seed(trial, export_dir, log=lambda _: None)
    assert str(caught.value) == busy_line(export_dir, os.getpid(), "--export_dir", locks.EXPORT_LOCK)
    assert os.listdir(export_dir) == []
    model_dir = os.path.join(export_dir, "classifier")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = [f".partial-{dead.stdout.strip()}@{socket.gethostname()}-x1y2", ".partial-abc123"]  # killed; older
    for name in stale:
        os.makedirs(os.path.join(model_dir, name, "model"))
    said = []
    exported = export.export_seed(trial, export_dir, log=said.append)
    assert sorted(os.listdir(model_dir)) == ["1"] and exported == {"classifier": os.path.join(model_dir, "1")}
    assert [line for line in said if line.startswith("removed ")] == [
        f"removed {os.path.join(model_dir, name)}: left by an export that did not finish (a killed one)"
        for name in sorted(stale)]
