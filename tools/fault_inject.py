"""Fault injection: kill -9 a tiny embedded run at random moments across all its stages (the embedded data
build, source, pixel, the translated records, target, feature, oracle), rerun it each time, and check that
every rerun finishes, writes results.json and leaves no partial directory behind.

    python tools/fault_inject.py --kills=20 [--work_dir=/tmp/fault_inject] [--seed=0] [--horizon_s=0]

One uninterrupted run first measures how long a run takes; each trial then starts a fresh run (its own
data and run directories), kills it after a moment drawn uniformly from that time, and reruns the same
command to the end. Prints one line per trial and a summary; exit status 0 only if every trial passed.
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
# Every stage, one epoch each, small networks: a run of one to a few minutes on two (shared) CPU cores.
TINY_RUN = ["--seeds=0", "--source_epochs=1", "--pixel_epochs=1", "--target_epochs=1", "--feature_epochs=1",
            "--oracle_epochs=1", "--pixel_batch_size=64", "--generator_width=4", "--discriminator_width=4",
            "--noise_channels=2", "--feature_min_steps_per_epoch=5", "--translations_per_image=1",
            "--summary_every_epochs=0", "--verbose=0", "--self_train_epochs=1", "--self_train_steps_per_epoch=5"]
LEFTOVER = re.compile(r"\.partial-|\.partial\.|_temp$|\.tmp$")  # names only an unfinished write has
RUN_TIMEOUT_S = 900


def command(trial_dir):
    return [sys.executable, "-m", "cycada_tf.experiments.digits", f"--data_dir={trial_dir}/data",
            f"--run_dir={trial_dir}/run", *TINY_RUN]


def environment():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=REPO)


def leftovers(trial_dir):
    """Paths under trial_dir whose names only an unfinished write leaves."""
    found = []
    for root, dirs, files in os.walk(trial_dir):
        found += [os.path.join(root, name) for name in dirs + files if LEFTOVER.search(name)]
    return sorted(found)


def last_stage(output):
    """Where the killed run was: the last stage it started, or the data build before the first."""
    started = re.findall(r"stage '(\w+)' starting", output)
    return started[-1] if started else "data"


def run_to_end(trial_dir):
    start = time.time()
    done = subprocess.run(command(trial_dir), cwd=REPO, env=environment(), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)
    return done, time.time() - start


def kill_at(trial_dir, moment):
    """Start the run, SIGKILL it `moment` seconds later; (stage it was in, or None if it had ended)."""
    log_path = os.path.join(trial_dir, "killed.log")
    with open(log_path, "w") as log:
        process = subprocess.Popen(command(trial_dir), cwd=REPO, env=environment(), stdout=log,
                                   stderr=subprocess.STDOUT)
        try:
            process.wait(timeout=moment)
            return None
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
            process.wait()
    with open(log_path) as handle:
        return last_stage(handle.read())


def trial(trial_dir, rng, horizon):
    """One kill (redrawn while the run ends before it) and the rerun; returns a dict of what happened."""
    while True:
        shutil.rmtree(trial_dir, ignore_errors=True)
        os.makedirs(trial_dir)
        moment = rng.uniform(0.0, horizon)
        stage = kill_at(trial_dir, moment)
        if stage is not None:
            break
    left_by_kill = leftovers(trial_dir)
    done, seconds = run_to_end(trial_dir)
    results = os.path.exists(os.path.join(trial_dir, "run", "results.json"))
    left = leftovers(trial_dir)
    ok = done.returncode == 0 and results and not left
    return {"moment": moment, "stage": stage, "left_by_kill": len(left_by_kill), "rc": done.returncode,
            "results": results, "left": left, "seconds": seconds, "ok": ok,
            "tail": "" if ok else (done.stdout[-2000:] + done.stderr[-2000:])}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="fault_inject", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20, help="trials: one kill -9 and one rerun each")
    parser.add_argument("--work_dir", default="/tmp/fault_inject", help="scratch directory (emptied)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--horizon_s", type=float, default=0.0,
                        help="draw kill moments from [0, this] seconds; 0: measure an uninterrupted run first")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    shutil.rmtree(args.work_dir, ignore_errors=True)
    horizon = args.horizon_s
    if not horizon:
        calibration, horizon = run_to_end(os.path.join(args.work_dir, "calibration"))
        if calibration.returncode != 0:
            print(f"fault_inject: the uninterrupted run failed:\n{calibration.stderr[-3000:]}", file=sys.stderr)
            return 1
    print(f"kill moments drawn from [0, {horizon:.0f}] s"
          + ("" if args.horizon_s else " (the time an uninterrupted run took)"), flush=True)
    passed, stages = 0, {}
    for index in range(args.kills):
        outcome = trial(os.path.join(args.work_dir, f"trial_{index:02d}"), rng, horizon)
        passed += outcome["ok"]
        stages[outcome["stage"]] = stages.get(outcome["stage"], 0) + 1
        print(f"kill {index + 1}: at {outcome['moment']:.1f} s, in {outcome['stage']}; partial files left by "
              f"the kill: {outcome['left_by_kill']}; rerun rc {outcome['rc']} in {outcome['seconds']:.0f} s, "
              f"results.json {'yes' if outcome['results'] else 'NO'}, left after it: {outcome['left'] or 'none'}"
              + ("" if outcome["ok"] else f"\n{outcome['tail']}"), flush=True)
    print(f"fault_inject: {args.kills} kills ({', '.join(f'{s} {n}' for s, n in sorted(stages.items()))}); "
          f"{passed} of {args.kills} reruns finished with results.json and no partial file", flush=True)
    return 0 if passed == args.kills else 1


if __name__ == "__main__":
    sys.exit(main())
