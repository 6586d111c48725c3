"""Export one seed of an existing run as TF Serving models: the adapted classifier (or segmenter) and both
translators.

    cycada-export --run_dir=runs/uci_to_uci_m --seed=0 --export_dir=export
    python tools/export.py ...     # the same, from a checkout

writes <export_dir>/classifier/<version>/ (a segmentation run: segmenter/), <export_dir>/g_st/<version>/ and
<export_dir>/g_ts/<version>/, each the next integer version of its model (cycada_tf/serving/export.py says what the
signatures take and give), and <export_dir>/models.config naming every model there for
`tensorflow_model_server --model_config_file`. The networks are rebuilt from the configuration the run recorded
in <run_dir>/results.json. A model whose latest version came from another run is refused (exit status 2):
--model_prefix=roads_ exports this run as roads_segmenter, roads_g_st and roads_g_ts instead.
"""

import argparse
import json
import os
import re
import sys

from cycada_tf.config import experiment_config as config_lib
from cycada_tf.train import interrupts, quiet_tensorflow as quiet

MODEL_PREFIX = re.compile(r"[A-Za-z0-9_.-]*")  # it names directories and TF Serving models


def parse_args(argv, prog="export"):
    parser = argparse.ArgumentParser(prog=prog, description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--run_dir", required=True, help="the run's directory (holds results.json, seed_<k>/)")
    parser.add_argument("--seed", type=int, default=0, help="which seed's networks to export")
    parser.add_argument("--export_dir", required=True, help="where the models go: <export_dir>/<model>/<version>/")
    parser.add_argument("--model_prefix", default="", help="put before each model's name (roads_: roads_segmenter, "
                                                           "roads_g_st, roads_g_ts), for a run whose models would "
                                                           "otherwise become versions of another run's")
    quiet.add_verbosity_flag(parser)
    return parser.parse_args(argv)


def run_config(run_dir):
    """The DigitsConfig or SegmentationConfig a run was made with, from its results.json (fields added since
    take their default)."""
    path = os.path.join(run_dir, "results.json")
    if not os.path.exists(path):
        raise ValueError(f"{path} does not exist: --run_dir must be the directory of a run that finished "
                         f"(python -m cycada_tf.experiments.digits writes it at the end)")
    with open(path) as handle:
        recorded = json.load(handle).get("config", {})
    # Only a segmentation run records crop sizes.
    cls = config_lib.SegmentationConfig if "crop_size" in recorded else config_lib.DigitsConfig
    return config_lib.from_json(recorded, cls)


def main(argv=None, prog="export", command=False):
    """The export: 0 once exported (the versions written, as JSON, on stdout), 2 on a bad flag or run.

    Args:
        argv: the flags (default: sys.argv's).
        prog: the command's name in its usage line.
        command: whether this process is the command (its entry points say so): once exported it ignores
            SIGINT and SIGTERM while it exits (interrupts.finished). A call from Python (command=False) gets
            its own SIGINT and SIGTERM handlers back on return.
    Returns:
        The exit status."""
    saved = interrupts.saved()
    try:
        status = _export(argv, prog)
    finally:
        if not command:
            interrupts.restore(saved)
    if command and status == 0:
        interrupts.finished()
    return status


def _export(argv, prog):
    interrupts.starting()  # until install(): a Ctrl-C ends at once with the one line (nothing written yet)
    args = parse_args(sys.argv[1:] if argv is None else argv, prog)
    quiet.import_tensorflow(args.verbosity is not None)  # before it is imported: its start-up lines
    interrupts.install()
    interrupts.entering("the export")
    try:
        if not MODEL_PREFIX.fullmatch(args.model_prefix):
            raise ValueError(f"--model_prefix={args.model_prefix!r}: use letters, digits, '_', '.' and '-' only")
        config = run_config(args.run_dir)
        if not os.path.isdir(os.path.join(args.run_dir, f"seed_{args.seed}")):
            raise ValueError(f"--seed={args.seed}: {args.run_dir} has no seed_{args.seed}/ (the run's seeds: "
                             f"{', '.join(map(str, config.seeds))})")
        from cycada_tf.serving import export
        from cycada_tf import tasks
        from cycada_tf.stages.trial import Trial
        exported = export.export_seed(Trial(tasks.for_config(config), args.seed, args.run_dir), args.export_dir,
                                      log=lambda message: print(message, file=sys.stderr, flush=True),
                                      prefix=args.model_prefix)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, interrupts.Terminated) as error:  # the version being written is removed
        interrupts.end(error)
    except Exception as error:  # noqa: BLE001 - a full disk, a directory that cannot be written: one line
        from cycada_tf.train import failures
        line = failures.storage_line(error)
        if line is None:
            raise
        print(f"error: {line}; {failures.advice(line)}", file=sys.stderr)
        return 2
    print(json.dumps(exported, indent=1))  # {model: version directory}, the only thing on stdout
    return 0


if __name__ == "__main__":
    sys.exit(main(command=True))
