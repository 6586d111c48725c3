"""Runs the stages in order for each seed of an experiment, each stage checkpointed in the run directory, and
writes the results table and the report. It knows no stage and no task by name: STAGES are the stages'
records (stages/registry.py; stages/*.py wire each from a Trial into a Plan) and tasks/ builds everything that
differs between digits and road scenes.

<run_dir>/seed_<k>/<stage>/ holds the stage's weights, done.json (its numbers), its TensorBoard summaries
(the run seed_<k>/<stage>; tensorboard_views.py writes the seed's and the run's own) and ckpt/ its checkpoint
of the last finished epoch; a stage whose done.json exists is skipped when the command runs again, an unfinished one
continues from its checkpoint (resume.py). <run_dir>/config.json holds the flags the run was made with (written
when the first stage starts); other values of them are refused.
A run holds the run directory's lock for its life (locks.py): a second run there is refused. <run_dir>/results.json and
results.md hold the table, report.md the table with the figures.

Under --strategy=multi_worker every worker runs this same code, and --run_dir and --data_dir must name the
same directory on every worker (one host, or a shared filesystem). Only the chief writes there: run-level files
(config.json, results, report, export), each stage's files and the translated records. Every other worker
reads what the chief wrote (the earlier stages' weights and done.json, the translated records, a checkpoint to
resume from) after a barrier (distribute.barrier) that follows each of the chief's writes, and writes its own
copies of each stage's files (checkpoints, whose saves every worker must take part in; summaries; weights)
to a private directory: --worker_dir/<task> if given (kept, for inspection), else a temporary directory deleted
when the run ends. A worker computing its own translated records instead would train the target model on data
that differs between workers wherever the style code z draws differ; reading the chief's costs one wait.
"""

import contextlib
import os
import shutil
import sys
import tempfile
import time

import keras

from cycada_tf import selection, tasks
from cycada_tf.data import pipeline, registry
from cycada_tf.reporting import report, tensorboard_views as board
from cycada_tf.serving import export
from cycada_tf.stages import base as stage_base, registry as stage_registry
from cycada_tf.train import atomic_files as files, determinism, distribute, failures, interrupts, locks, progress
from cycada_tf.train import multi_worker_fit as loop, resume, summaries, timing
from cycada_tf.train import precision as precision_lib
from cycada_tf.train.summaries import log
from cycada_tf.stages.trial import Trial

STAGES = stage_registry.STAGES
STAGE_NAMES = tuple(stage.name for stage in STAGES)
CANDIDATES = stage_registry.CANDIDATES  # the final model is one of them
FINAL_CHOICE = "final choice"  # the run clock's unit after each seed's stages


def stage_settings(config):
    """({stage: precision}, {stage: jit_compile}) of --precision and --jit_compile (ValueError naming the
    flag); --precision=auto resolved for this machine."""
    precisions = precision_lib.per_stage("precision", config.precision, STAGE_NAMES, precision_lib.FLAG_CHOICES)
    if "auto" in precisions.values():
        resolved, _ = precision_lib.resolve_auto()
        precisions = {stage: resolved if value == "auto" else value for stage, value in precisions.items()}
    return (precisions,
            precision_lib.per_stage("jit_compile", config.jit_compile, STAGE_NAMES, precision_lib.JIT_COMPILE))


def run(config):
    """Run every requested stage for every seed; write and return the results."""
    run_dir = config.run_dir or os.path.join("runs", f"{config.source}_to_{config.target}")
    strategy = distribute.strategy_from_flag(config.strategy)
    _, jit_compile = stage_settings(config)  # a bad --precision or --jit_compile fails here, before anything
    determinism.apply(config, jit_compile, log)  # is written; and --deterministic before anything runs
    if "auto" in config.precision:
        resolved, why = precision_lib.resolve_auto()
        log(f"--precision=auto: {resolved} ({why})")
    if not distribute.is_chief(strategy):
        return _run_worker(config, run_dir, strategy)
    interrupts.entering("data preparation")
    times = timing.RunTiming(run_dir)
    with times.phase("data"):
        failures.check_directory(config.data_dir, "--data_dir")
        for name in (config.source, config.target):
            registry.ensure(name, config.data_dir, download=config.download)
        for note in data_notes(config):
            log(note)
        task = tasks.for_config(config)
        task.check_data()
    failures.check_writable(run_dir, "--run_dir")
    with locks.held(run_dir, "--run_dir", log=log):  # one run per directory, for the run's life
        return _run_chief(task, run_dir, strategy, times)


def _run_chief(task, run_dir, strategy, times):
    """The run of the chief (of the only process, but under multi_worker), its run directory locked: the stages,
    then results.json, results.md, report.md and the export. config.json is checked now and written when the
    first stage starts (_run_stages): a run refused before then leaves nothing that blocks the next command."""
    config = task.config
    resume.check_run_config(config, run_dir, write=False)
    distribute.barrier(strategy)  # the data is there for the other workers
    with distribute.peer_errors(strategy):
        summary = task.summarize(_run_stages(task, run_dir, strategy, times=times))
    with times.phase("report"):
        _write_outputs(task, run_dir, summary)
    times.write()
    distribute.barrier(strategy)  # no worker leaves the cluster before the chief has written everything
    return summary


def _write_outputs(task, run_dir, summary):
    """results.json, results.md (the table, also on stdout), TensorBoard's run summaries, report.md and the
    export of --export_dir."""
    config = task.config
    notes = data_notes(config)
    if notes:
        summary["data_notes"] = notes
    files.write_json(os.path.join(run_dir, "results.json"), summary)
    table = task.markdown_table(summary)
    files.write_text(os.path.join(run_dir, "results.md"), table + "\n")
    print(table, flush=True)  # stdout holds the table alone: every other line of the run goes to stderr
    if config.summary_every_epochs:
        board.write(run_dir, config, summary["per_seed"], task.score_key, STAGE_NAMES)
    interrupts.entering("the report")
    trials = [Trial(task, int(seed), run_dir) for seed in summary["seeds"]]
    data = ["## Data", "", *notes, ""] if notes else []
    log("report: " + report.write(run_dir, task.title(), table, data + task.report_sections(run_dir, summary, trials),
                                  labelled=task.target_spec.labelled))
    if config.export_dir:
        interrupts.entering("the export")
        export.export_seed(Trial(task, config.seeds[0], run_dir), config.export_dir, log)


def data_notes(config):
    """What the run says of its datasets in the log, results.json and report.md (registry.DatasetSpec.note):
    a test split the project held out of a folder: dataset, and how."""
    names = dict.fromkeys((config.source, config.target))
    return [registry.get(name).note for name in names if registry.get(name).note]


def _run_worker(config, run_dir, strategy):
    """A multi_worker task other than the chief: the same stages, reading the chief's run directory and
    writing to a private one (module docstring); the results are the chief's to write."""
    distribute.barrier(strategy)  # the chief has checked the data and written config.json
    for name in (config.source, config.target):
        registry.ensure(name, config.data_dir)
    resume.check_run_config(config, run_dir, write=False)
    worker = distribute.worker_index(strategy)
    private = os.path.join(config.worker_dir, worker) if config.worker_dir else tempfile.mkdtemp(
        prefix=f"cycada_{worker}_")
    log(f"{worker}: training with the chief; reading {run_dir}, writing this worker's copies to {private}")
    try:
        with distribute.peer_errors(strategy):
            per_seed = _run_stages(tasks.for_config(config), run_dir, strategy, write_dir=private)
        distribute.barrier(strategy)
    finally:
        if not config.worker_dir:
            shutil.rmtree(private, ignore_errors=True)
    return per_seed


def _run_stages(task, run_dir, strategy, write_dir=None, times=None):
    """{seed: {stage: results}} of every seed, running the requested stages that have not finished; their
    times in `times` (a timing.RunTiming; the chief's), written after each stage."""
    config = task.config
    precisions, jit_compile = stage_settings(config)
    per_seed = {}
    trials = {seed: Trial(task, seed, run_dir, strategy, write_dir) for seed in config.seeds}
    # The run's time left counts the stages to train and each seed's final model's choice, where it will have
    # an adapted candidate to weigh (with none, final_model returns at once).
    chooses = {seed: any(stage_registry.adapted(name) and (name in config.stages or trials[seed].done(name) is not None)
                         for name in CANDIDATES) for seed in config.seeds}
    clock = progress.RunClock([unit for seed in config.seeds for unit in
                               [(seed, stage.name) for stage in STAGES
                                if stage.name in config.stages and trials[seed].done(stage.name) is None]
                               + ([(seed, FINAL_CHOICE)] if chooses[seed] else [])],
                              {**progress.prior_costs(config, STAGES),
                               FINAL_CHOICE: selection.prior_cost(config.TASK, precisions[stage_registry.PRIOR_UNIT])
                               or progress.UNKNOWN_EPOCH_COST})
    for seed in config.seeds:
        trial = trials[seed]
        results = {}
        left_out = [stage.name for stage in STAGES
                    if stage.name not in config.stages and trial.done(stage.name) is None]
        if left_out:
            log(f"seed {seed}: {_stages(left_out)} skipped: not in --stages")
        for stage in STAGES:
            result = trial.done(stage.name)
            if stage.name in config.stages and result is None:
                missing = [n for n in stage.needs(config) if trial.done(n) is None]
                if missing:
                    raise ValueError(f"stage '{stage.name}' needs the '{missing[0]}' stage of seed {seed} in "
                                     f"{trial.dir}: add it to --stages")
                log(f"seed {seed}: stage '{stage.name}' starting")
                interrupts.entering(f"stage '{stage.name}' (seed {seed})")
                start = time.time()
                clock.start(seed, stage.name)
                # Every stage starts from the same global random state (TF's global seed also keys tf.data
                # shuffles), whatever ran before it in this process: a resumed run repeats an unbroken one.
                keras.utils.set_random_seed(seed)
                timer = times.stage(seed, stage.name) if times else timing.StageTimer()
                # Every network and optimizer of the stage is built under its strategy, in its precision: the
                # trial the stage is given builds its networks with that dtype policy.
                staged = trial.building_in(precisions[stage.name])
                with distribute.scope(strategy):
                    with timer.phase("wire"):
                        plan = stage.wire(staged)
                    if write_dir is None:  # the chief, and the run really starts: config.json holds its flags
                        resume.check_run_config(config, run_dir)
                    result = plan if isinstance(plan, dict) else fit(staged, stage.name, plan, precisions[stage.name],
                                                                      jit_compile[stage.name], clock, timer)
                result["seconds"] = round(time.time() - start, 1)
                timer.add("total", result["seconds"])
                trial.finish(stage.name, result)
                if times:
                    times.write()
                distribute.barrier(strategy)  # the chief's files of the stage are there for the next one
                clock.finish()
                log(f"seed {seed}: stage '{stage.name}' {ended(result)}; {clock.describe()}")
            elif result is not None and stage.name in config.stages:
                log(f"seed {seed}: stage '{stage.name}' already done, skipped")
            if result is not None:
                results[stage.name] = result
        interrupts.entering(f"the final model's choice (seed {seed})")
        if chooses[seed]:
            clock.start(seed, FINAL_CHOICE)
        with times.phase("final_choice", seed) if times else contextlib.nullcontext():
            final = selection.final_model(trial, results, CANDIDATES)
        if chooses[seed]:
            clock.finish()
        if final is not None:
            results["final"] = final
            if distribute.is_chief(strategy):  # what export reads (export.export_seed)
                trial.write_final(final)
        per_seed[str(seed)] = results
    return per_seed


def ended(result):
    """How a stage that has just run ended, for its log line: skipped and why (a stage with nothing to train
    returns {"skipped": why}), else its time and its scores, each named for the test split it is on
    (target_test_accuracy, source_test_accuracy; the epoch lines' train_accuracy is training's)."""
    if "skipped" in result:
        return f"skipped: {result['skipped']}"
    return (f"done in {result['seconds']:.0f}s: "
            + ", ".join(f"{k if k.startswith('source_') else 'target_test_' + k}={v:.4f}"
                        for k, v in result.items() if isinstance(v, float) and k != "seconds"))


def _stages(names):
    return f"stage{'s' if len(names) > 1 else ''} " + ", ".join(f"'{name}'" for name in names)


def fit(trial, stage, plan, precision, jit_compile, clock=None, timer=None):
    """Train `plan` (a stage's Plan) from the stage's last checkpoint (if any) to its last epoch, checkpointing
    the model, its optimizers and the plan's state after each epoch (resume.StageCheckpoint), then save its
    networks and return its results. The networks already compute in `precision` (built with its dtype policy);
    the optimizers get its loss scaling (mixed_float16), and the step `jit_compile`. The progress lines give
    the run's time left by `clock` (a progress.RunClock), if given; where the time goes in `timer` (a
    timing.StageTimer), if given."""
    model, config = plan.model, trial.config
    timer = timer or timing.StageTimer()
    with timer.phase("compile"):
        stage_base.compile(model, plan.optimizers, precision, jit_compile)
        # model.variables: every network's weights, the frozen ones too, and the random states of its layers
        # (dropout, style codes), which a tf.train.Checkpoint of a subclassed Keras 3 model misses.
        checkpoint = resume.StageCheckpoint(stage, os.path.join(trial.dir, stage, "ckpt"), log,
                                            write_directory=os.path.join(trial.stage_dir(stage), "ckpt"),
                                            variables=list(model.variables), **model.optimizers(), **plan.state)
        initial = checkpoint.restore()
    if plan.done and plan.done():
        initial = plan.epochs
    callbacks = plan.callbacks + [progress.Progress(stage, log, plan.may_stop_early, clock)]
    if config.summary_every_epochs:
        callbacks.append(summaries.TensorBoardSummaries(trial.stage_dir(stage), config.summary_every_epochs,
                                                        plan.scalars, plan.periodic, board.stage_text(config, stage)))
    callbacks.append(checkpoint)  # last: it saves what the others leave at the end of an epoch (the gate's stop)
    # Our progress lines are --verbose=0 and 2's; Keras' own (--verbose=1) would repeat them. Keras prints its
    # progress bar on stdout, which is the results table's: it goes to stderr with the run's other lines.
    verbose = 0 if config.verbose == 2 else config.verbose
    callbacks = timer.around(callbacks)
    dataset = pipeline.untuned(plan.dataset)  # fit's end waits on no autotuning thread
    fit_start = timer.fit_start = timer.now()
    with contextlib.redirect_stdout(sys.stderr):
        if distribute.is_multi_worker(trial.strategy):  # Keras 3.15's fit fails there; the same loop by hand
            history = loop.fit(model, dataset, plan.epochs, initial_epoch=initial, steps_per_epoch=plan.steps,
                               callbacks=callbacks, verbose=verbose, strategy=trial.strategy)
        else:  # shuffle=False: the stage's dataset is shuffled already (fit cannot shuffle a tf.data.Dataset)
            history = model.fit(dataset, epochs=plan.epochs, initial_epoch=initial, steps_per_epoch=plan.steps,
                                verbose=verbose, callbacks=callbacks, shuffle=False)
    timer.add("fit_other", timer.now() - fit_start - sum(
        seconds for name, seconds in timer.phases.items()
        if name in ("fit_setup", "first_step", "training") or name.startswith("callbacks.")))
    with timer.phase("save_weights"):
        for name, network in plan.outputs.items():
            files.save_weights(network, trial.weights(stage, name, written=True))
    logs = {k: float(v[-1]) for k, v in history.history.items()} or checkpoint.last_logs
    with timer.phase("result"):
        return plan.result(logs)
