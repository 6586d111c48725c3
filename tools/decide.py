"""Recompute every decision of a finished run from its saved weights, with every label-free criterion, beside
what the target test labels would have picked: no training of the run's models, no target label read to decide.

    python tools/decide.py runs/uci_to_uci_m [--seeds=0,1] [--criteria=reverse_validation,information_maximisation]

Prints, per seed, each candidate's target test score (the oracle's view, reporting only) and its value under
each criterion, which candidate each criterion picks, and the run's own recorded choice: the criterion the run
used, recomputed here, must give the run's values (checked; exit status 1 if not). --json writes it all.
"""

import argparse
import dataclasses
import os
import sys

if __package__ in (None, ""):  # run as `python tools/decide.py`: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cycada_tf.train import quiet_tensorflow as quiet  # noqa: E402

TOLERANCE = 1e-4  # recomputed criterion values against the recorded ones (rounded to 6 decimals)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="decide", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", help="a run's directory (config.json, seed_<k>/)")
    parser.add_argument("--seeds", default="", help="comma-separated seeds (default: every seed_<k> of the run)")
    parser.add_argument("--criteria", default="", help="comma-separated criteria (default: all)")
    parser.add_argument("--json", default="", help="also write the results to this JSON file")
    parser.add_argument("--final_reverse_steps", type=int, default=0,
                        help="reverse validation's steps (default: the run's, as its final.json records them)")
    quiet.add_verbosity_flag(parser)
    return parser.parse_args(argv)


def decide_seed(trial, criteria, candidates):
    """{"candidates": {stage: {"score": target test score or None, criterion: value}}, "picks": {criterion:
    stage}, "recorded": final.json or None, "reproduced": bool or None} of one seed."""
    from cycada_tf.selection.final import Candidates, pick
    key = trial.task.score_key
    stages = [stage for stage in candidates if trial.done(stage) is not None]
    scored = Candidates(trial, stages, candidates[0])
    table = {stage: {"score": trial.done(stage).get(key)} for stage in stages}
    for name in criteria:
        for stage in stages:
            table[stage][name] = scored.criterion(name, stage)
    picks = {}
    for name in criteria:
        values = {stage: row[name] for stage, row in table.items() if row[name] is not None}
        if values:
            picks[name] = pick(name, values, candidates[0])
    recorded, reproduced = trial.final(), None
    if recorded and recorded.get("criterion_name", "information_maximisation") in criteria:
        name = recorded.get("criterion_name", "information_maximisation")
        reproduced = all(abs(table[stage][name] - value) <= TOLERANCE
                         for stage, value in recorded["criterion"].items() if stage in table)
    return {"candidates": table, "picks": picks, "recorded": recorded, "reproduced": reproduced}


def print_seed(seed, result, criteria, out=sys.stdout):
    table = result["candidates"]
    width = max(len(name) for name in criteria)
    print(f"seed {seed}", file=out)
    print(f"  {'candidate':<12}{'target test':>12}" + "".join(f"{name:>{width + 2}}" for name in criteria), file=out)
    best = max((s for s in table if table[s]["score"] is not None), key=lambda s: table[s]["score"], default=None)
    for stage, row in table.items():
        score = "-" if row["score"] is None else f"{100 * row['score']:.1f}"
        cells = "".join(f"{'-' if row[n] is None else format(row[n], '.4f'):>{width + 2}}" for n in criteria)
        print(f"  {stage:<12}{score:>12}{cells}" + ("   <- oracle" if stage == best else ""), file=out)
    print("  picks: " + ", ".join(f"{name} -> {stage}" for name, stage in result["picks"].items()), file=out)
    recorded = result["recorded"]
    if recorded:
        print(f"  the run chose '{recorded['choice']}' by {recorded.get('criterion_name', 'information_maximisation')}"
              + ("" if result["reproduced"] is None else
                 ", reproduced here" if result["reproduced"] else ", NOT reproduced here"), file=out)


def _seeds_of(run_dir):
    """Every seed the run directory holds (seed_<k>/), in order: --seeds is not recorded in config.json."""
    names = [name for name in os.listdir(run_dir) if name.startswith("seed_") and name[5:].isdigit()]
    return sorted(int(name[5:]) for name in names)


def _recorded_reverse_steps(run_dir, seeds):
    """The reverse validation steps a seed's final.json records (None if none does)."""
    from cycada_tf.train import atomic_files as files
    for seed in seeds:
        recorded = files.read_json(os.path.join(run_dir, f"seed_{seed}", "final.json")) or {}
        if recorded.get("reverse_steps"):
            return int(recorded["reverse_steps"])
    return None


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    quiet.import_tensorflow(args.verbosity is not None)
    from cycada_tf.config import experiment_config as config_lib
    from cycada_tf.train import atomic_files as files
    from cycada_tf.experiments import runner
    from cycada_tf import tasks
    from cycada_tf.selection.final import CRITERIA
    from cycada_tf.stages.trial import Trial
    try:
        recorded = files.read_json(os.path.join(args.run_dir, "config.json"))
        if recorded is None:
            raise ValueError(f"{args.run_dir} has no config.json: give the directory of a run")
        recorded.pop("history", None)
        config = config_lib.from_json(recorded)
        criteria = [c for c in args.criteria.split(",") if c] or list(CRITERIA)
        unknown = sorted(set(criteria) - set(CRITERIA))
        if unknown:
            raise ValueError(f"--criteria: unknown {', '.join(unknown)}; choose from {', '.join(CRITERIA)}")
        seeds = [int(s) for s in args.seeds.split(",") if s] or _seeds_of(args.run_dir)
        steps = args.final_reverse_steps or _recorded_reverse_steps(args.run_dir, seeds)
        if steps:
            config = dataclasses.replace(config, final_reverse_steps=steps)
        task = tasks.for_config(config)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    results, ok = {}, True
    for seed in seeds:
        trial = Trial(task, seed, args.run_dir)
        if not os.path.isdir(trial.dir):
            print(f"error: --seeds: {trial.dir} does not exist", file=sys.stderr)
            return 2
        results[seed] = decide_seed(trial, criteria, runner.CANDIDATES)
        print_seed(seed, results[seed], criteria)
        ok = ok and results[seed]["reproduced"] is not False
    if args.json:
        files.write_json(args.json, {str(seed): result for seed, result in results.items()})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
