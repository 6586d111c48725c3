"""What the tests share: the repository's root, the tiny configuration of each experiment (tiny_flags for its
command line, tiny_config for runner.run), run_experiment (an experiment's absl main in a child process), and
the session's fixtures: the embedded digit domains, one tiny whole digits run and one trained source stage,
each built once."""

import fcntl
import glob
import json
import os
import shutil
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is first imported

import pytest  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMBEDDED = ("uci", "uci_m", "fonts")

# Every stage of an experiment, small enough to run in seconds on a CPU: tiny networks, few epochs and steps,
# in float32 (the learning margins below were measured in it; --precision=auto would be bfloat16 on some CPUs).
TINY = {
    "digits": dict(seeds=(0,), precision="float32", source_epochs=2, pixel_epochs=1, target_epochs=1,
                   feature_epochs=2, oracle_epochs=1, pixel_batch_size=64, generator_width=4, discriminator_width=4,
                   noise_channels=2, translations_per_image=2, feature_min_steps_per_epoch=5,
                   self_train_epochs=2, self_train_steps_per_epoch=5, pixel_direction="t2s", final_reverse_steps=5,
                   verbose=0),
    "segmentation": dict(seeds=(0,), precision="float32", source_epochs=3, pixel_epochs=1, target_epochs=1,
                         feature_epochs=2, oracle_epochs=1, source_batch_size=64, pixel_batch_size=32,
                         crop_size=(32, 64),
                         pixel_crop_size=(32, 32), model_width=8, generator_width=4, generator_blocks=1,
                         discriminator_width=4, feature_batch_size=16, feature_min_steps_per_epoch=5,
                         gate_window=3, semantic_weight=1.0, self_train_epochs=1, self_train_steps_per_epoch=3,
                         self_train_batch_size=4, pixel_direction="s2t", final_reverse_steps=5,
                         verbose=0),
}


# The files that take longest (tools/test.sh --durations), run first: pytest-xdist hands each worker the next
# file in collection order when it is free, so started last one of them would leave the other worker idle at
# the end. Scheduling only: a file not named keeps its place after these.
LONGEST_FIRST = ("test_no_target_labels.py", "test_end_to_end.py", "test_strategy.py", "test_adaptation_gain.py",
                 "test_segmentation_end_to_end.py", "test_experiments.py",
                 "test_no_target_labels_segmentation.py", "test_failure_paths_run.py", "test_benchmark.py",
                 "test_self_train.py", "test_precision.py", "test_multi_worker.py", "test_folder.py",
                 "test_export.py", "test_fault_inject.py", "test_resume.py", "test_serving_client.py",
                 "test_device_check.py")


def pytest_collection_modifyitems(items):
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


@pytest.fixture(scope="session", autouse=True)
def float32_where_auto():
    """In this process --precision=auto resolves to float32 on every machine, so that a test's numbers (its
    learning margins were measured in float32) do not depend on whether the CPU has bfloat16 instructions;
    tests/test_precision.py gives resolve_auto the CPU's flags it tests."""
    from cycada_tf.train import precision
    original = precision.resolve_auto
    precision.resolve_auto = lambda flags=None, gpus=None: original(set() if flags is None else flags, gpus)
    yield
    precision.resolve_auto = original


def tiny_values(task, **overrides):
    """TINY[task] with `overrides` (a value of None drops the field: the experiment's default then)."""
    values = {**TINY[task], **overrides}
    return {name: value for name, value in values.items() if value is not None}


def _flag(name, value):
    if isinstance(value, (tuple, list)):
        value = ",".join(str(v) for v in value)
    elif isinstance(value, bool):
        value = str(value).lower()
    return f"--{name}={value}"


def tiny_flags(task, **overrides):
    """The tiny configuration of `task` (digits or segmentation) as its command line's flags."""
    return [_flag(name, value) for name, value in tiny_values(task, **overrides).items()]


def tiny_config(task, **overrides):
    """The tiny configuration of `task` as its config, for runner.run in this process."""
    from cycada_tf.config import experiment_config as config_lib
    return config_lib.TASKS[task](**tiny_values(task, **overrides))


def child_env(**extra):
    """The environment of a child process that imports this checkout's modules, TensorFlow's log lines quiet."""
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO, **extra)


def run_experiment(task, *args, check=True, env=None, timeout=900):
    """`python -m cycada_tf.experiments.<task> args` in a child process; with `check`, a failure raises with
    the ends of its stdout and stderr."""
    result = subprocess.run([sys.executable, "-m", f"cycada_tf.experiments.{task}", *args], cwd=REPO,
                            env=env or child_env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def built_once(tmp_path_factory, name, build):
    """The directory `name`, made by build(path) once for the whole session: under pytest-xdist the first
    worker to ask builds it (the others wait on its lock) and every worker reads the same one."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's directory, above each worker's own
    path, built = root / name, root / f"{name}.built"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not built.exists():
            shutil.rmtree(path, ignore_errors=True)  # what a failed build left
            path.mkdir()
            build(path)
            built.touch()
    return path


@pytest.fixture(scope="session")
def embedded_data_dir(tmp_path_factory):
    """A data_dir holding the TFRecords of every embedded domain (a few seconds to build)."""
    from cycada_tf.data import registry

    def build(path):
        for name in EMBEDDED:
            registry.ensure(name, str(path))
    return str(built_once(tmp_path_factory, "embedded_data", build))


@pytest.fixture(scope="session")
def tiny_digits_run(embedded_data_dir, tmp_path_factory):
    """One tiny run of every digits stage through the absl main, with --export_dir, made once for the session:
    {"run_dir", "export_dir", "data_dir", "result" (the finished process: returncode, stdout, stderr)}.
    Readers leave it as it is; a test that changes a run works on a copy (copy_run)."""
    def build(root):
        result = run_experiment("digits", f"--data_dir={embedded_data_dir}", f"--run_dir={root / 'run'}",
                                f"--export_dir={root / 'export'}", *tiny_flags("digits"))
        for stream in ("stdout", "stderr"):
            (root / stream).write_text(getattr(result, stream))
    root = built_once(tmp_path_factory, "tiny_digits_run", build)
    result = subprocess.CompletedProcess([], 0, (root / "stdout").read_text(), (root / "stderr").read_text())
    return {"run_dir": str(root / "run"), "export_dir": str(root / "export"), "data_dir": embedded_data_dir,
            "result": result}


# The source model the learning tests adapt from (digits defaults, uci -> uci_m, seed 0): 10 epochs reach about
# 90% on the source test digits and 50% on the target's.
SOURCE_EPOCHS = 10


@pytest.fixture(scope="session")
def source_stage(embedded_data_dir, tmp_path_factory):
    """The seed_0/source directory of a digits run of SOURCE_EPOCHS source epochs, trained once for the session.
    A test copies it into its own run directory (start_from), and the runner skips the finished stage."""
    from cycada_tf.config import experiment_config as config_lib
    from cycada_tf.experiments import runner

    def build(root):
        runner.run(config_lib.DigitsConfig(data_dir=embedded_data_dir, run_dir=str(root), seeds=(0,),
                                           stages=("source",), source_epochs=SOURCE_EPOCHS,
                                           summary_every_epochs=0, verbose=0))
    return str(built_once(tmp_path_factory, "source_stage", build) / "seed_0" / "source")


def start_from(stage_dir, run_dir):
    """A copy of a finished stage's directory (a fixture's) in run_dir's seed_0, where the runner finds it."""
    shutil.copytree(stage_dir, os.path.join(str(run_dir), "seed_0", os.path.basename(stage_dir)))


def copy_run(run, destination):
    """Copies of a run fixture's run and export directories under `destination`, as a dict like the fixture's.
    Each exported version's record names the copy as its run, as if the run had been made there."""
    from cycada_tf.serving import export_directory as export_layout
    from cycada_tf.train import atomic_files as files
    copied = dict(run)
    for key in ("run_dir", "export_dir"):
        copied[key] = os.path.join(str(destination), os.path.basename(run[key]))
        if os.path.exists(run[key]):
            shutil.copytree(run[key], copied[key])
    for version in glob.glob(os.path.join(copied["export_dir"], "*", "*", "assets", export_layout.RUN_FILE)):
        record = files.read_json(version)
        if record.get("run_dir") == os.path.realpath(run["run_dir"]):
            with open(version, "w") as handle:
                json.dump({**record, "run_dir": os.path.realpath(copied["run_dir"])}, handle)
    return copied
