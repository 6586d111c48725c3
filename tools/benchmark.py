"""Images per second of each stage's train step and of the input pipeline, written as JSON.

    python tools/benchmark.py --steps=20 --output=bench.json
    python -m tools.benchmark --stages=pixel --precisions=mixed_bfloat16 --compare=bench.json   # new / old

Each stage is timed at the paper's batch size (source 128, pixel and feature 100 and 128 per domain;
--batch_size: one for all) under each of --precisions (auto: float32 and mixed_bfloat16 on a CPU, and
mixed_float16 on a GPU), with --jit_compile as the experiments take it. Results, keyed "<stage>:<precision>",
have their peak memory: a GPU allocator's peak, or on a CPU the process's peak resident set (VmHWM, reset
before the stage; the TensorFlow runtime included).
A stage is built by the functions training wires it with (cycada_tf/stages/*.py build) and timed on one
in-memory batch repeated (random images in [-1, 1]): the cost of the train step alone. Warm-up: one `fit`
step, then --warmup_steps untimed calls; then --steps timed calls of `model.train_function`, ending when the
last step's metrics are read back. Input pipelines (cycada_tf.data.pipeline.load) are timed apart.

gflop_per_step counts a step's convolutions and matrix products (tools/flops.py); fraction_of_matmul_peak
divides gflop_per_second by the best 2048^3 matrix product's rate here (tools/machine.py)."""

import argparse
import json
import os
import sys
import tempfile
import time

if __package__ in (None, ""):  # run as `python tools/benchmark.py`: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cycada_tf.config import experiment_config as config_lib  # noqa: E402
from cycada_tf.config.run_fields import JIT_COMPILE, PRECISIONS  # noqa: E402
from cycada_tf.train import quiet_tensorflow as quiet  # noqa: E402

STAGES = ("source", "pixel", "feature", "pipeline")
PAPER_BATCH = {"source": 128, "pixel": 100, "feature": 128}  # appendix 6.1.1 (feature: DigitsConfig's)
# One "image" of each rate (an adaptation step reads a batch of each domain and counts one):
IMAGES = {
    "source": "labelled source images per second: one TaskStage step (Eq. 1) trains f on --batch_size images",
    "pixel": "source images per second: one PixelAdaptation step (Eq. 2-4) reads --batch_size source and as "
             "many target images, trains G_S->T, G_T->S, then D_S, D_T",
    "feature": "source images per second: one FeatureAdaptation step (Eq. 5) reads --batch_size translated "
               "source and as many target images, trains D_feat, then f_T (timed with the 60% gate held "
               "open, so every step updates f_T: the full step)",
    "pipeline": "images per second pipeline.load yields for the train split as training reads it (decoded once, "
                "cached, shuffled, repeated; after warm-up); decode_images_per_second: without the cache",
}
DEFAULTS = config_lib.DigitsConfig()


def _bool(text):
    if text.lower() in ("1", "true", "yes"):
        return True
    if text.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _network_flag(parser, name, type_):
    """A flag that shapes a network: its default and help are DigitsConfig's, so the numbers are a run's."""
    extra = {"nargs": "?", "const": True} if type_ is _bool else {}
    parser.add_argument(f"--{name}", type=type_, default=getattr(DEFAULTS, name),
                        help=config_lib.help_of(name), **extra)


def parse_args(argv, load_tensorflow=True):
    """The flags, checked; without `load_tensorflow`, only what can be checked before TensorFlow loads (the
    script checks that much first, so that a wrong flag ends at once): not --datasets, and not what
    --precisions=auto means on this machine."""
    parser = argparse.ArgumentParser(prog="benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated, from {', '.join(STAGES)}")
    parser.add_argument("--batch_size", type=int, default=0,
                        help="images per domain in one step of every stage and pipeline; 0: the paper's batch "
                             f"of each stage ({', '.join(f'{k} {v}' for k, v in PAPER_BATCH.items())}; "
                             "pipelines 128)")
    parser.add_argument("--precisions", default="auto",
                        help=f"comma-separated, from {', '.join(PRECISIONS)}; auto: float32 and "
                             "mixed_bfloat16, and mixed_float16 when a GPU is present")
    parser.add_argument("--jit_compile", default="auto", choices=JIT_COMPILE,
                        help=config_lib.help_of("jit_compile"))
    parser.add_argument("--steps", type=int, default=10, help="timed steps (batches, for the pipeline)")
    parser.add_argument("--warmup_steps", type=int, default=2,
                        help="untimed steps after the first (tracing) one")
    for name in ("image_size", "channels", "generator_width", "discriminator_width", "noise_channels"):
        _network_flag(parser, name, int)
    _network_flag(parser, "minibatch_std", _bool)
    parser.add_argument("--datasets", default=f"{DEFAULTS.source},{DEFAULTS.target}",
                        help="comma-separated datasets whose input pipeline is timed")
    parser.add_argument("--data_dir", default="",
                        help="prepared TFRecords; default: embedded datasets built in a temporary directory")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and the random batches")
    parser.add_argument("--output", default="", help="also write the JSON to this file")
    parser.add_argument("--compare", default="", help="an earlier --output: print new / old for each rate")
    quiet.add_verbosity_flag(parser)
    args = parser.parse_args(argv)
    args.stages = [s for s in args.stages.split(",") if s]
    unknown = [s for s in args.stages if s not in STAGES]
    if unknown or not args.stages:
        parser.error(f"--stages: unknown stage {unknown[0] if unknown else '(none)'}; choose from "
                     f"{', '.join(STAGES)}")
    args.datasets = [d for d in args.datasets.split(",") if d]
    if args.precisions != "auto":
        args.precisions = [p for p in args.precisions.split(",") if p]
        bad = [p for p in args.precisions if p not in PRECISIONS]
        if bad or not args.precisions:
            parser.error(f"--precisions: unknown precision {bad[0] if bad else '(none)'}; choose from "
                         f"{', '.join(PRECISIONS)}")
    for name, low in (("batch_size", 0), ("steps", 1), ("warmup_steps", 0)):
        if getattr(args, name) < low:
            parser.error(f"--{name} must be at least {low}, got {getattr(args, name)}")
    args.baseline = None
    if args.compare:
        try:
            with open(args.compare) as handle:
                args.baseline = json.load(handle)
        except (OSError, ValueError) as error:
            parser.error(f"--compare: cannot read {args.compare}: {error}")
    if not load_tensorflow:
        return args
    if "pipeline" in args.stages:
        for name in args.datasets:
            try:
                registry.get(name)
            except ValueError as error:
                parser.error(f"--datasets: {error}")
    if args.precisions == "auto":
        args.precisions = ["float32", "mixed_bfloat16"] + (
            ["mixed_float16"] if tf.config.list_physical_devices("GPU") else [])
    return args


if __name__ == "__main__":  # a wrong flag ends here; then TensorFlow, its start-up lines hidden (quiet_tensorflow.py)
    parse_args(sys.argv[1:], load_tensorflow=False)
    quiet.import_tensorflow(quiet.verbosity_given(sys.argv))

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from cycada_tf.data import pipeline, registry, tfrecord  # noqa: E402
from cycada_tf.stages import base as stage_base, feature, pixel, source  # noqa: E402
from cycada_tf.tasks.digits import DigitsTask  # noqa: E402
from tools import flops as flops_lib  # noqa: E402
from tools.benchmark_results import HEADROOM, compare, headroom, print_comparison, rates  # noqa: E402, F401
from tools.machine import COMPUTE_DTYPE, PeakMemory, machine_info, matmul_peaks  # noqa: E402


# --- stages ---------------------------------------------------------------------------------------------
def _config(args, batch_size):
    return config_lib.DigitsConfig(image_size=args.image_size, channels=args.channels,
                                   generator_width=args.generator_width,
                                   discriminator_width=args.discriminator_width,
                                   noise_channels=args.noise_channels, minibatch_std=args.minibatch_std,
                                   pixel_batch_size=batch_size, seeds=(args.seed,))


def build(stage, c, precision, jit_compile):
    """The stage built and compiled as training does (stages/*.py build), its networks computing in
    `precision`."""
    task = DigitsTask(c)
    if stage == "source":
        model, optimizers = source.build(task, task.network(dtype=precision))
    elif stage == "pixel":
        model, optimizers = pixel.build(task, c, c.seeds[0], task.network(dtype=precision), dtype=precision)
    else:
        f_ref, f_t = task.network(dtype=precision), task.network(dtype=precision)
        f_t.set_weights(f_ref.get_weights())  # f_T starts from the reference model, as in training
        # The gate held open: every timed step updates f_T (the full step's cost, whatever D_feat makes of it).
        model, optimizers = feature.build(task, c, f_ref, f_t, gate=-1.0, dtype=precision)
    return stage_base.compile(model, optimizers, precision, jit_compile)


def repeated_batch(stage, c, batch_size, num_classes, rng):
    """One batch in memory, repeated: what the stage's train_step unpacks."""
    def images():
        shape = (batch_size, c.image_size, c.image_size, c.channels)
        return tf.constant(rng.uniform(-1.0, 1.0, shape).astype(np.float32))

    if stage == "source":
        batch = (images(), tf.constant(rng.integers(0, num_classes, batch_size).astype(np.int32)))
    else:
        batch = (images(), images())
    return tf.data.Dataset.from_tensors(batch).repeat()


def time_stage(stage, args, precision):
    batch_size = args.batch_size or PAPER_BATCH[stage]
    c = _config(args, batch_size)
    keras.utils.set_random_seed(args.seed)
    num_classes = registry.get(c.source).num_classes
    with PeakMemory() as memory:
        model = build(stage, c, precision, args.jit_compile)
        ds = repeated_batch(stage, c, batch_size, num_classes, np.random.default_rng(args.seed))
        model.fit(ds, epochs=1, steps_per_epoch=1, shuffle=False, verbose=0)  # Keras's setup and first trace
        iterator = iter(ds)
        for _ in range(args.warmup_steps):
            logs = model.train_function(iterator)
        model.reset_metrics()
        start = time.perf_counter()
        for _ in range(args.steps):
            logs = model.train_function(iterator)
        metrics = {name: float(value) for name, value in logs.items()}  # waits for the last step to finish
        seconds = time.perf_counter() - start
    flops = step_flops(model, ds)  # traced after the peak is read: tracing is not the step's memory
    return {"images_per_second": batch_size * args.steps / seconds, "batch_size": batch_size,
            "precision": precision, "seconds_per_step": seconds / args.steps, "images": IMAGES[stage],
            "jit_compile": bool(model.jit_compile), "peak_memory_bytes": memory.bytes,
            "peak_memory": memory.kind, "metrics": metrics, "gflop_per_step": flops / 1e9,
            "gflop_per_second": flops / 1e9 / (seconds / args.steps)}


def step_flops(model, ds):
    """Floating-point operations of one train step (tools/flops.py: convolutions and matrix products, as
    they run), traced anew from the stage's train_step on the batch's shapes."""
    traced = tf.function(lambda batch: model.train_step(batch)).get_concrete_function(ds.element_spec)
    counted = flops_lib.step_flops(traced)
    if counted["uncounted"]:
        raise RuntimeError(f"unknown shapes in the traced step: {counted['uncounted'][:3]}")
    return counted["total"]


def _time_batches(ds, steps, warmup_steps):
    iterator = iter(ds)
    for _ in range(warmup_steps):
        next(iterator)
    start = time.perf_counter()
    images = 0
    for _ in range(steps):
        batch = next(iterator)
        images += int(tf.shape(batch[0])[0])  # reading the shape waits for the batch
    return images / (time.perf_counter() - start)


def time_pipeline(name, args, data_dir):
    def load(cache):
        return pipeline.load(name, "train", data_dir, args.image_size, args.channels,
                             batch_size=args.batch_size or PAPER_BATCH["source"], shuffle=True, seed=args.seed,
                             repeat=True, drop_remainder=True, cache=cache)

    return {"images_per_second": _time_batches(load(True), args.steps, args.warmup_steps),
            "decode_images_per_second": _time_batches(load(False), args.steps, args.warmup_steps),
            "images": IMAGES["pipeline"],
            "train_examples": pipeline.count(name, "train", data_dir)}


# --- report ---------------------------------------------------------------------------------------------
def run(args):
    results = {}
    for stage in args.stages:
        if stage != "pipeline":
            for precision in args.precisions:
                print(f"benchmark: timing the {stage} stage under {precision}", file=sys.stderr, flush=True)
                results[f"{stage}:{precision}"] = time_stage(stage, args, precision)
    if "pipeline" in args.stages:
        with tempfile.TemporaryDirectory(prefix="cycada_benchmark_") as scratch:
            data_dir = args.data_dir or scratch
            for name in args.datasets:
                print(f"benchmark: timing the input pipeline of {name}", file=sys.stderr, flush=True)
                registry.ensure(name, data_dir)
                results[f"pipeline:{name}"] = time_pipeline(name, args, data_dir)
    return results


def main(argv=None):
    """Time what --stages names; print the JSON, write it to --output; returns the report."""
    args = parse_args(argv)
    settings = {k: getattr(args, k) for k in ("stages", "batch_size", "precisions", "jit_compile", "steps",
                                              "warmup_steps", "image_size", "channels", "generator_width",
                                              "discriminator_width", "noise_channels", "minibatch_std",
                                              "datasets", "seed")}
    report = {"machine": machine_info(), "settings": settings, "results": run(args)}
    stages = {k: v for k, v in report["results"].items() if not k.startswith("pipeline:")}
    if stages:
        print("benchmark: timing a 2048^3 matrix product in each compute dtype", file=sys.stderr, flush=True)
        peaks = report["matmul_peak_gflop_per_second"] = matmul_peaks(args.precisions)
        for entry in stages.values():
            entry["fraction_of_matmul_peak"] = (entry["gflop_per_second"]
                                                / peaks[COMPUTE_DTYPE[entry["precision"]].name])
    report["pipeline_headroom"] = headroom(report["results"])
    if report["pipeline_headroom"] and report["pipeline_headroom"]["minimum"] < HEADROOM:
        h = report["pipeline_headroom"]
        print(f"benchmark: warning: an input pipeline delivers only {h['minimum']:.1f}x the images per second "
              f"of the fastest stage ({h['fastest_stage']}); the target is {HEADROOM}x", file=sys.stderr)
    if args.baseline is not None:
        baseline = args.baseline
        report["comparison"] = {"baseline": os.path.abspath(args.compare),
                                "ratios": compare(report["results"], baseline)}
        print_comparison(report["results"], baseline, report["comparison"]["ratios"], args.compare)
    text = json.dumps(report, indent=1, sort_keys=True)
    print(text, flush=True)
    if args.output:
        tmp = args.output + ".tmp"
        with open(tmp, "w") as handle:
            handle.write(text + "\n")
        os.replace(tmp, args.output)
    return report


def cli(argv=None):
    """The command line: a data error ends with its one-line message and exit status 1."""
    try:
        main(argv)
    except tfrecord.DataError as error:
        print(f"benchmark: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(cli())
