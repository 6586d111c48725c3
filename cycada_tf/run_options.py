"""The fields of every experiment that say how a run runs and what it writes besides its results, not what it
computes (but --precision), and the field helpers of config.py: each field declared once with its flag's
help; task classes override defaults only."""

import dataclasses
import typing


class _PerTask:
    """The base default of a field whose default each task sets (there is no value common to both)."""

    def __repr__(self):
        return "PER_TASK"


PER_TASK = _PerTask()


def _field(default, metadata):
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default_factory=lambda: tuple(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _f(default, help, rerun=False):  # noqa: A002 - the flag's help text
    """A field and its flag. `rerun`: the field does not change what a run computes, so a run directory may be
    continued with another value of it (resume.check_run_config)."""
    return _field(default, {"help": help, "rerun": rerun})


@dataclasses.dataclass(frozen=True)
class _Override:
    value: typing.Any
    note: str = ""


def _override(value, note=""):
    """In a task class: this task's default of a field of `Config` (assigned without an annotation: the type,
    help and metadata stay Config's). `note`, if given, is appended to the help in this task's flags."""
    return _Override(value, note)


def _note(note):
    """In a task class: keep Config's default of a field and append `note` to its help for this task."""
    return _Override(dataclasses.MISSING, note)


@dataclasses.dataclass
class RunOptions:
    """How a run runs: strategy, precision, XLA, downloads, export, what a rerun may change."""

    strategy: str = _f(
        "auto", "tf.distribute strategy: auto (multi_worker when the TF_CONFIG environment variable names 2 or "
                "more workers, else MirroredStrategy on a host with several GPUs, else one device), one_device, "
                "mirrored (every GPU of the host, else every logical CPU), or multi_worker "
                "(MultiWorkerMirroredStrategy over the cluster in TF_CONFIG; every worker runs the same command, "
                "only the chief writes --run_dir). Batch-size flags are global: each replica takes its share.",
        rerun=True)  # a strategy changes only float rounding
    worker_dir: str = _f(
        "", "--strategy=multi_worker only: where a worker other than the chief writes its own copies of each "
            "stage's files (checkpoints, summaries, weights), under <worker_dir>/<task>/, kept for inspection; "
            "default: a temporary directory, deleted when the run ends.", rerun=True)
    precision: str = _f(
        "auto", "Numeric precision of the networks: auto (mixed_bfloat16 on CPUs with AVX512-BF16 or AMX and on "
                "GPUs of compute capability 8.0+, float32 elsewhere; the choice is logged), float32, "
                "mixed_bfloat16 or mixed_float16 (GPUs, with loss scaling); variables, checkpoints, losses and "
                "the feature gate stay float32. One value for every stage, then optional exceptions: "
                "mixed_bfloat16,source=float32.")
    jit_compile: str = _f(
        "auto", "XLA compilation of the train steps: auto (on a single GPU, off on CPUs, where it measured "
                "slower), true or false; per-stage exceptions as for --precision (auto,pixel=true).",
        rerun=True)  # XLA changes only float rounding
    download: bool = _f(
        True, "Download a public dataset (mnist, usps, svhn, mnist_m) that is not prepared in --data_dir into "
              "<data_dir>/raw, check its SHA-256 and prepare it; --nodownload only prepares files placed there "
              "by hand (the error names them and their URLs). Segmentation datasets are never downloaded.",
        rerun=True)
    export_dir: str = _f(
        "", "If set, the first seed's adapted model (the digit classifier, or the segmenter) and both "
            "translators are exported there after the run, as TF Serving models <export_dir>/<model>/<version>/ "
            "(tools/export.py exports an existing run).", rerun=True)
    accept_lr_change: bool = _f(
        False, "Continue a run directory with other learning rates (--*_lr) than it was made with, e.g. a "
               "lower one after a non-finite loss: the unfinished stage resumes from its last good checkpoint "
               "at the new rate; <run_dir>/config.json records the change in its history. Other changed "
               "flags are still refused.", rerun=True)
    deterministic: bool = _f(
        False, "TensorFlow op determinism for the whole run (determinism.py): the same command and seed on the "
               "same machine, software and device count gives bit-identical weights and results (but each "
               "stage's seconds); not across machines, CPU or GPU types or TensorFlow versions, and not promised "
               "under --strategy=multi_worker. Costs: kernels that add in thread order (GPUs mostly) take a "
               "slower deterministic algorithm, no XLA (Keras compiles no step under it; --jit_compile=true is "
               "refused), a tf.data map with a stateful op runs serially; the numbers differ in rounding from "
               "a run without it (e.g. its cross-entropy is log_softmax then gather), so a run directory keeps "
               "the value it was made with.")
