"""Fault injection: kill a tiny embedded run at random moments across all its stages (the embedded data build,
source, pixel, the translated records, target, feature, oracle), rerun it each time, and check that every
rerun finishes, writes results.json and leaves no partial directory behind.

    python tools/fault_inject.py --kills=20 [--mode=kill|sigint|export] [--work_dir=/tmp/fault_inject] [--seed=0]
                                 [--horizon_s=0] [--stages=source,pixel,...]

--mode=kill (default): kill -9. --mode=sigint: Ctrl-C, which must end the run with one line ("interrupted in
...; the same command resumes"), exit status 130 and nothing partial, before the rerun. --mode=export: one run
first, then each trial kills -9 tools/export.py exporting it and reruns the export, which must leave every
version whole (saved_model.pb, variables, assets/run.json), models.config, and nothing partial or locked.

One uninterrupted run (or export) first measures how long it takes; each trial then starts a fresh one (its
own data, run or export directories), interrupts it after a moment drawn uniformly from that time, and reruns
the same command to the end (a Ctrl-C that came before the project's first line ran, or after the run had
written everything, is drawn again). Prints one line per trial and a summary; exit status 0 only if every trial
passed.
"""

import argparse
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every stage, one epoch each, small networks: the shortest run that still passes through every stage.
TINY_RUN = ["--seeds=0", "--source_epochs=1", "--pixel_epochs=1", "--target_epochs=1", "--feature_epochs=1",
            "--oracle_epochs=1", "--pixel_batch_size=64", "--generator_width=4", "--discriminator_width=4",
            "--noise_channels=2", "--feature_min_steps_per_epoch=5", "--translations_per_image=1",
            "--summary_every_epochs=0", "--verbose=0", "--self_train_epochs=1", "--self_train_steps_per_epoch=5",
            "--final_reverse_steps=5"]
LEFTOVER = re.compile(r"\.partial-|\.partial\.|_temp$|\.tmp$")  # names only an unfinished write has
LOCK = re.compile(r"\.cycada-(run|export)\.lock$")  # cycada_tf/train/locks.py: left only by a holder that was killed
INTERRUPTED = re.compile(r"^interrupted in .+; the same command resumes$")  # cycada_tf/train/interrupts.py
# What runs before an experiment's first line (interrupts.starting): the interpreter's start, runpy and import
# machinery, the package __init__ files and interrupts.py, which the experiment imports first.
BEFORE_START = re.compile(r'^  File "(<frozen [^>]+>|.*/cycada_tf/(__init__|experiments/__init__|train/__init__'
                          r'|train/interrupts)\.py|.*/cycada_tf/experiments/(digits|segmentation)\.py)", line \d+')
RUN_TIMEOUT_S = 900
MODES = ("kill", "sigint", "export")
SIGNALS = {"kill": signal.SIGKILL, "sigint": signal.SIGINT, "export": signal.SIGKILL}


def command(trial_dir, mode="kill", run_dir=None, flags=TINY_RUN):
    """The command a trial interrupts: a tiny run in `trial_dir` with `flags`, or (mode export) tools/export.py
    exporting the finished `run_dir` into <trial_dir>/export."""
    if mode == "export":
        return [sys.executable, os.path.join(REPO, "tools", "export.py"), f"--run_dir={run_dir}", "--seed=0",
                f"--export_dir={trial_dir}/export"]
    return [sys.executable, "-m", "cycada_tf.experiments.digits", f"--data_dir={trial_dir}/data",
            f"--run_dir={trial_dir}/run", *flags]


def environment():
    # PYTHONFAULTHANDLER: a crash (SIGSEGV, SIGABRT) prints every thread's Python stack, kept with the trial
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO, PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1")


def ctrl_c_reaches():
    """In the child before it runs: SIGINT back to its default, as a terminal's foreground job has it (a shell's
    background job starts its commands with SIGINT ignored, and Python keeps it ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def leftovers(trial_dir, pattern=LEFTOVER):
    """Paths under trial_dir whose names only an unfinished write leaves (or `pattern` matches)."""
    found = []
    for root, dirs, files in os.walk(trial_dir):
        found += [os.path.join(root, name) for name in dirs + files if pattern.search(name)]
    return sorted(found)


def broken_versions(export_dir):
    """Exported versions that are not whole (a SavedModel, its variables and its run record), and a missing
    models.config; [] for a whole export directory."""
    if not os.path.isfile(os.path.join(export_dir, "models.config")):
        return [os.path.join(export_dir, "models.config")]
    broken = []
    for model in sorted(os.listdir(export_dir)):
        model_dir = os.path.join(export_dir, model)
        for version in sorted(os.listdir(model_dir)) if os.path.isdir(model_dir) else ():
            path = os.path.join(model_dir, version)
            if version.isdigit() and not all(os.path.exists(os.path.join(path, part)) for part in (
                    "saved_model.pb", "variables/variables.index", "assets/run.json")):
                broken.append(path)
    return broken


def last_stage(output):
    """Where the killed run was: the last stage it started, or the data build before the first."""
    started = re.findall(r"stage '(\w+)' starting", output)
    return started[-1] if started else "data"


def run_to_end(trial_dir, mode="kill", run_dir=None, flags=TINY_RUN):
    start = time.time()
    done = subprocess.run(command(trial_dir, mode, run_dir, flags), cwd=REPO, env=environment(), capture_output=True,
                          text=True, timeout=RUN_TIMEOUT_S)
    return done, time.time() - start


def interrupt_at(trial_dir, moment, mode="kill", run_dir=None, flags=TINY_RUN):
    """Start the command, send the mode's signal `moment` seconds later; (where it was, its exit status and
    output), or None if it had ended (or, given a Ctrl-C, finished its work and exited 0 all the same, or had
    not yet started its first line)."""
    log_path = os.path.join(trial_dir, "interrupted.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(command(trial_dir, mode, run_dir, flags), cwd=REPO, env=environment(), stdout=log,
                                   stderr=subprocess.STDOUT, preexec_fn=ctrl_c_reaches)
        try:
            process.wait(timeout=moment)
            return None
        except subprocess.TimeoutExpired:
            process.send_signal(SIGNALS[mode])
            process.wait(timeout=RUN_TIMEOUT_S)
    if process.returncode == 0:  # the Ctrl-C came after the run had written everything (interrupts.finished)
        os.remove(log_path)
        return None
    with open(log_path) as handle:
        output = handle.read()
    os.remove(log_path)
    if mode == "sigint" and before_the_project_started(process.returncode, output):
        return None  # too early for any program's code, as one after the run had finished is too late
    return ("export" if mode == "export" else last_stage(output)), process.returncode, output


def before_the_project_started(status, output):
    """Whether a Ctrl-C reached the interpreter before the project's first line had run (its first tens of
    milliseconds), with nothing written: killed by the signal before Python's handler was in place (no output),
    or Python's own KeyboardInterrupt through start-up frames only (the signal's status; 1 while `site` loads).
    No program's code can answer that early."""
    if status == -signal.SIGINT and not output.strip():
        return True
    frames = [line for line in output.splitlines() if line.startswith('  File "')]
    return (status in (-signal.SIGINT, 1) and output.rstrip().endswith("KeyboardInterrupt") and bool(frames)
            and all(BEFORE_START.match(line) for line in frames))


def kill_at(trial_dir, moment):
    """Start the run, SIGKILL it `moment` seconds later; (stage it was in, or None if it had ended)."""
    interrupted = interrupt_at(trial_dir, moment)
    return None if interrupted is None else interrupted[0]


def interrupt_ok(mode, status, output, left):
    """Whether an interrupt ended as it must: kill -9 in any way; Ctrl-C in one line, 130 and nothing partial."""
    if mode != "sigint":
        return True
    lines = output.strip().splitlines()
    return (status == 130 and bool(lines) and INTERRUPTED.match(lines[-1]) is not None
            and "Traceback" not in output and not left)


def trial(trial_dir, rng, horizon, mode="kill", run_dir=None, flags=TINY_RUN):
    """One interrupt (redrawn while the command ends before it) and the rerun; returns what happened."""
    while True:
        shutil.rmtree(trial_dir, ignore_errors=True)
        os.makedirs(trial_dir)
        moment = rng.uniform(0.0, horizon)
        interrupted = interrupt_at(trial_dir, moment, mode, run_dir, flags)
        if interrupted is not None:
            break
    stage, status, output = interrupted
    left_by_kill = leftovers(trial_dir)
    clean_interrupt = interrupt_ok(mode, status, output, left_by_kill)
    done, seconds = run_to_end(trial_dir, mode, run_dir, flags)
    if mode == "export":
        results = not broken_versions(os.path.join(trial_dir, "export"))
    else:
        results = os.path.exists(os.path.join(trial_dir, "run", "results.json"))
    left = leftovers(trial_dir) + leftovers(trial_dir, LOCK)
    ok = clean_interrupt and done.returncode == 0 and results and not left
    return {"moment": moment, "stage": stage, "left_by_kill": len(left_by_kill), "rc": done.returncode,
            "results": results, "left": left, "seconds": seconds, "ok": ok, "interrupt_rc": status,
            "tail": "" if ok else (_kept(trial_dir, output) + output[-1500:] + "\n--- rerun:\n" + done.stdout[-1500:]
                                   + done.stderr[-1500:])}


def _kept(trial_dir, output):
    """A failed trial's whole interrupted output, copied beside the trial directories (the next trial empties
    its own); the line that says where."""
    path = f"{trial_dir.rstrip(os.sep)}.failed.log"
    with open(path, "w") as handle:
        handle.write(output)
    return f"(its whole output: {path})\n"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fault_inject", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="trials: one interrupt and one rerun each")
    parser.add_argument("--mode", choices=MODES, default="kill",
                        help="kill: kill -9 a run; sigint: Ctrl-C a run; export: kill -9 tools/export.py")
    parser.add_argument("--work_dir", default="/tmp/fault_inject", help="scratch directory (emptied)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--horizon_s", type=float, default=0.0,
                        help="draw kill moments from [0, this] seconds; 0: measure an uninterrupted run first")
    parser.add_argument("--stages", default="",
                        help="the tiny run's --stages (default: every stage); the kill moments fall in these")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    flags = TINY_RUN + ([f"--stages={args.stages}"] if args.stages else [])
    shutil.rmtree(args.work_dir, ignore_errors=True)
    run_dir = None
    if args.mode == "export":  # the run every trial exports
        finished, _ = run_to_end(os.path.join(args.work_dir, "run_to_export"))
        if finished.returncode != 0:
            print(f"fault_inject: the run to export failed:\n{finished.stderr[-3000:]}", file=sys.stderr)
            return 1
        run_dir = os.path.join(args.work_dir, "run_to_export", "run")
    horizon = args.horizon_s
    if not horizon:
        calibration, horizon = run_to_end(os.path.join(args.work_dir, "calibration"), args.mode, run_dir, flags)
        if calibration.returncode != 0:
            print(f"fault_inject: the uninterrupted command failed:\n{calibration.stderr[-3000:]}", file=sys.stderr)
            return 1
    what = {"kill": "kill -9", "sigint": "Ctrl-C", "export": "kill -9 of the export"}[args.mode]
    print(f"{what}: moments drawn from [0, {horizon:.0f}] s"
          + ("" if args.horizon_s else " (the time an uninterrupted one took)"), flush=True)
    passed, stages = 0, {}
    for index in range(args.kills):
        outcome = trial(os.path.join(args.work_dir, f"trial_{index:02d}"), rng, horizon, args.mode, run_dir, flags)
        passed += outcome["ok"]
        stages[outcome["stage"]] = stages.get(outcome["stage"], 0) + 1
        print(f"{what} {index + 1}: at {outcome['moment']:.1f} s, in {outcome['stage']}, exit status "
              f"{outcome['interrupt_rc']}; partial files left by it: {outcome['left_by_kill']}; rerun rc "
              f"{outcome['rc']} in {outcome['seconds']:.0f} s, {'whole' if outcome['results'] else 'NOT whole'}, "
              f"left after it: {outcome['left'] or 'none'}" + ("" if outcome["ok"] else f"\n{outcome['tail']}"),
              flush=True)
    done = "every version whole" if args.mode == "export" else "results.json"
    print(f"fault_inject: {args.kills} x {what} ({', '.join(f'{s} {n}' for s, n in sorted(stages.items()))}); "
          f"{passed} of {args.kills} reruns finished with {done} and no partial file", flush=True)
    return 0 if passed == args.kills else 1


if __name__ == "__main__":
    sys.exit(main())
