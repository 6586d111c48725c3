"""The GPU check: one prepared command for a device machine with no network, bounded in time, whose whole
result is a few JSON files in one folder.

    bash tools/device_check.sh [--out=DIR] [--budget_s=480] [--cpu] [--dry_run]

Steps, each under its own time limit and all within --budget_s:
  1. `nvidia-smi` (the GPUs, their memory, driver and compute capability);
  2. TensorFlow: its version, the GPUs it sees, the CUDA and cuDNN it was built with (the check stops here,
     exit status 3, if TensorFlow does not import: the rest needs it);
  3. a one-seed run of the default digits command on the embedded data with the GPU defaults
     (--precision=auto, --jit_compile=auto);
  4. tools/benchmark.py, every stage, under mixed_float16 and mixed_bfloat16, with and without XLA;
  5. with two GPUs or more, a short --strategy=mirrored run.
Written to --out (default $OUT, else ./device_check): summary.json (the machine, and each step's command,
exit status, seconds and output tail), bench.json (each benchmark's report by name), run_results.json (the
digits run's results.json) and mirrored_results.json: at most 4 files, one folder.

--cpu runs the same steps on this machine, small (float32 without XLA, a tiny source-stage run): it checks the
script itself. --dry_run writes summary.json with the steps it would run and runs none of them."""

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUDGET_S = 480  # 8 minutes: the check must fit one command on a lent machine
TAIL = 1500  # characters of each step's output kept in summary.json
GPU_PRECISIONS = ("mixed_float16", "mixed_bfloat16")
TF_PROBE = ("import json, tensorflow as tf; b = tf.sysconfig.get_build_info(); "
            "print(json.dumps({'tensorflow': tf.__version__, "
            "'gpus': [d.name for d in tf.config.list_physical_devices('GPU')], "
            "'cuda': b.get('cuda_version'), 'cudnn': b.get('cudnn_version')}))")
# The CPU path: the smallest run of each step that still goes through it.
CPU_BENCH = ["--steps=2", "--warmup_steps=0", "--batch_size=8", "--stages=source,pipeline"]
CPU_RUN = ["--stages=source", "--source_epochs=1", "--summary_every_epochs=0", "--final_reverse_steps=20"]
MIRRORED_RUN = ["--stages=source,pixel", "--source_epochs=1", "--pixel_epochs=1", "--summary_every_epochs=0"]


def python():
    """The interpreter of the checkout (.venv) where there is one, else this one (a lent machine's)."""
    venv = os.path.join(REPO, ".venv", "bin", "python")
    return venv if os.path.exists(venv) else sys.executable


def plan(gpus, work):
    """[(name, command, time limit in seconds, file it writes or None)] for `gpus` GPUs (0: the CPU path)."""
    py = python()
    data = os.path.join(work, "data")  # the embedded domains, built there by the first step that reads them
    steps = [("nvidia_smi", ["nvidia-smi", "--query-gpu=name,memory.total,driver_version,compute_cap",
                             "--format=csv"], 30, None)] if gpus else []
    steps.append(("tensorflow", [py, "-c", TF_PROBE], 120, None))
    run = [py, "-m", "cycada_tf.experiments.digits", "--seeds=0", f"--data_dir={data}", "--precision=auto",
           "--jit_compile=auto"]
    steps.append(("digits_run", run + [f"--run_dir={os.path.join(work, 'run')}"] + ([] if gpus else CPU_RUN),
                  240, os.path.join(work, "run", "results.json")))
    combos = [(p, xla) for p in GPU_PRECISIONS for xla in ("true", "false")] if gpus else [("float32", "false")]
    for precision, xla in combos:
        output = os.path.join(work, f"bench_{precision}_xla_{xla}.json")
        steps.append((f"bench_{precision}_xla_{xla}",
                      [py, os.path.join(REPO, "tools", "benchmark.py"), f"--precisions={precision}",
                       f"--jit_compile={xla}", f"--data_dir={data}", f"--output={output}"]
                      + (["--steps=10"] if gpus else CPU_BENCH), 60, output))
    if gpus >= 2:
        steps.append(("mirrored", run + [f"--run_dir={os.path.join(work, 'mirrored')}", "--strategy=mirrored"]
                      + MIRRORED_RUN, 90, os.path.join(work, "mirrored", "results.json")))
    return steps


def run_step(name, command, limit, deadline):
    """Runs `command` under min(`limit`, the time left); returns its record for summary.json."""
    limit = max(1, min(limit, int(deadline - time.monotonic())))
    start = time.monotonic()
    try:
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=limit,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"})
        rc, output, timed_out = done.returncode, done.stderr + done.stdout, False
    except subprocess.TimeoutExpired as expired:
        rc, timed_out = None, True
        output = "".join(part.decode(errors="replace") if isinstance(part, bytes) else (part or "")
                         for part in (expired.stdout, expired.stderr))
    except OSError as error:  # the program is missing
        rc, output, timed_out = 127, str(error), False
    return {"name": name, "command": command, "limit_s": limit, "rc": rc, "timed_out": timed_out,
            "seconds": round(time.monotonic() - start, 1), "tail": output[-TAIL:]}


def count_gpus(force_cpu):
    """GPUs nvidia-smi lists (0 with --cpu, or without nvidia-smi)."""
    if force_cpu or not shutil.which("nvidia-smi"):
        return 0
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in listed.splitlines())


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="device_check", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "device_check",
                        help="folder of the JSON files (default: $OUT, else ./device_check)")
    parser.add_argument("--budget_s", type=int, default=BUDGET_S, help="time for every step together")
    parser.add_argument("--cpu", action="store_true", help="the small CPU path, even where there is a GPU")
    parser.add_argument("--dry_run", action="store_true", help="write the plan to summary.json, run nothing")
    parser.add_argument("--gpus", type=int, default=None,
                        help="plan for this many GPUs instead of those nvidia-smi lists (to read a GPU plan here)")
    args = parser.parse_args(argv)
    if args.budget_s < 60:
        parser.error(f"--budget_s must be at least 60, got {args.budget_s}")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as error:
        print(f"error: --out={args.out}: cannot create it ({error.strerror})", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.budget_s
    gpus = count_gpus(args.cpu) if args.gpus is None else args.gpus
    work = os.path.join(tempfile.gettempdir(), "device_check_plan") if args.dry_run else tempfile.mkdtemp(
        prefix="device_check_")
    steps = plan(gpus, work)
    summary = {"mode": "gpu" if gpus else "cpu", "gpus": gpus, "budget_s": args.budget_s,
               "started": time.strftime("%Y-%m-%d %H:%M:%S"), "python": python(), "steps": []}
    if args.dry_run:
        summary["steps"] = [{"name": n, "command": c, "limit_s": t} for n, c, t, _ in steps]
        _write(args.out, "summary.json", summary)
        print(f"device_check: plan of {len(steps)} steps in {os.path.join(args.out, 'summary.json')}")
        return 0
    bench, status = {}, 0
    for name, command, limit, output in steps:
        if time.monotonic() > deadline - 5:
            summary["steps"].append({"name": name, "command": command, "skipped": "out of time"})
            status = 1
            continue
        print(f"device_check: {name} (at most {min(limit, int(deadline - time.monotonic()))} s)", flush=True)
        record = run_step(name, command, limit, deadline)
        summary["steps"].append(record)
        print(f"device_check: {name}: rc {record['rc']} in {record['seconds']} s", flush=True)
        if record["rc"] != 0:
            status = 1
        if name == "tensorflow":
            if record["rc"] != 0:
                summary["stopped"] = f"TensorFlow does not import with {python()}: the other steps need it"
                _write(args.out, "summary.json", summary)
                print(f"error: {summary['stopped']} (docs/speed.md)", file=sys.stderr)
                return 3
            summary["tensorflow"] = json.loads(record["tail"].strip().splitlines()[-1])  # stdout comes last
        if output and os.path.exists(output):
            with open(output) as handle:
                value = json.load(handle)
            if name.startswith("bench_"):
                bench[name] = value
            else:
                _write(args.out, f"{'run' if name == 'digits_run' else name}_results.json", value)
    if bench:
        _write(args.out, "bench.json", bench)
    summary["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    _write(args.out, "summary.json", summary)
    shutil.rmtree(work, ignore_errors=True)
    written = sorted(os.path.basename(p) for p in glob.glob(os.path.join(args.out, "*.json")))
    print(f"device_check: {'every step passed' if status == 0 else 'a step failed (summary.json)'}; "
          f"{args.out}: {', '.join(written)}")
    return status


def _write(folder, name, value):
    with open(os.path.join(folder, name), "w") as handle:
        json.dump(value, handle, indent=1)


if __name__ == "__main__":
    sys.exit(main())
