"""The fields of every experiment that say how a run runs and what it writes besides its results, not what it
computes (but --precision), and the field helpers of experiment_config.py: each field declared once with its flag's
help and what it accepts (flag_checks.py checks it); task classes override defaults only. No TensorFlow here: the
experiment mains check every flag before it loads."""

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


def _f(default, help, rerun=False, **accepts):  # noqa: A002 - the flag's help text
    """A field and its flag. `rerun`: the field does not change what a run computes, so a run directory may be
    continued with another value of it (resume.check_run_config). `accepts`: what the flag takes (flag_checks.py):
    choices=(...), at_least/above/below/at_most=number, multiple_of=n; per_stage=choices (VALUE[,STAGE=VALUE]);
    for a list, count=n and distinct=True, its other rules applying to each item."""
    from cycada_tf.config.flag_checks import RULES
    unknown = sorted(set(accepts) - set(RULES))
    if unknown:
        raise TypeError(f"_f: {', '.join(unknown)} is no rule of flag_checks.py ({', '.join(RULES)})")
    return _field(default, {"help": help, "rerun": rerun, "accepts": accepts})


def per_stage(flag, text, stages, choices):
    """{stage: value} from "VALUE[,STAGE=VALUE...]" (a value for every stage, then exceptions); a ValueError
    names the flag and the bad part."""
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    if not parts:
        raise ValueError(f"--{flag} is empty; choose from {', '.join(choices)}")
    default, values = None, {}
    for part in parts:
        stage, _, value = part.rpartition("=")
        if value not in choices:
            raise ValueError(f"--{flag}: {value!r} is not one of {', '.join(choices)} (in {text!r})")
        if not stage:
            if default is not None:
                raise ValueError(f"--{flag}: two values for every stage ({default!r}, {value!r}) in {text!r}")
            default = value
        elif stage not in stages:
            raise ValueError(f"--{flag}: unknown stage {stage!r} in {text!r}; stages: {', '.join(stages)}")
        else:
            values[stage] = value
    default = default or choices[0]
    return {stage: values.get(stage, default) for stage in stages}


# What the flags of most fields accept (flag_checks.py): CROP is height,width.
POSITIVE, NON_NEGATIVE, RATE, WEIGHT = dict(at_least=1), dict(at_least=0), dict(above=0), dict(at_least=0)
FRACTION, CROP = dict(at_least=0, below=1), dict(count=2, at_least=1)
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
PRECISION_CHOICES = ("auto",) + PRECISIONS  # --precision: auto resolves to one of PRECISIONS on this machine
JIT_COMPILE = ("auto", "true", "false")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker")


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


def _task_config(cls):
    """Make `cls` (a subclass of config.Config) a dataclass, its `_override`/`_note` attributes fields whose type,
    help and metadata are Config's but for the default and the appended note. Its annotated fields are its own:
    a field of Config annotated again would be a second declaration, and is refused."""
    parent = cls.__bases__[0]
    base = {f.name: f for f in dataclasses.fields(parent)}
    own = cls.__dict__.get("__annotations__", {})
    again = sorted(set(own) & set(base))
    if again:
        raise TypeError(f"{cls.__name__} declares {', '.join(again)} again: set a task default with _override")
    annotations = dict(own)
    for name, value in list(vars(cls).items()):
        if not isinstance(value, _Override):
            continue
        if name not in base:
            raise TypeError(f"{cls.__name__} overrides {name}, which is no field of {parent.__name__}")
        field = base[name]
        default = value.value
        if default is dataclasses.MISSING:
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
        helped = f"{field.metadata['help']} {value.note}".strip()
        setattr(cls, name, _field(default, {**field.metadata, "help": helped, "note": value.note}))
        annotations[name] = field.type
    cls.__annotations__ = annotations
    return dataclasses.dataclass(cls)


@dataclasses.dataclass
class RunOptions:
    """How a run runs: strategy, precision, XLA, downloads, export, what a rerun may change."""

    strategy: str = _f(
        "auto", "tf.distribute strategy; batch sizes are global (docs/resuming_and_scaling.md).",
        rerun=True, choices=STRATEGIES)  # a strategy changes only float rounding
    worker_dir: str = _f(
        "", "multi_worker: where the other workers keep their copies of the chief's files; default: a "
            "temporary directory.", rerun=True)
    precision: str = _f(
        "auto", "auto, float32, mixed_bfloat16 or mixed_float16, then per-stage exceptions: "
                "mixed_bfloat16,source=float32 (docs/speed.md).", per_stage=PRECISION_CHOICES)
    jit_compile: str = _f(
        "auto", "XLA for the train steps: auto (on one GPU only), true or false; per-stage exceptions: "
                "auto,pixel=true.",
        rerun=True, per_stage=JIT_COMPILE)  # XLA changes only float rounding
    download: bool = _f(
        True, "Download and prepare a missing public digit dataset; --nodownload: only files placed by hand "
              "(docs/data.md).",
        rerun=True)
    export_dir: str = _f(
        "", "If set, the first seed's final model and both translators are exported there for TF Serving "
            "(docs/serving.md).", rerun=True)
    accept_lr_change: bool = _f(
        False, "Let a run directory continue with other --*_lr values, e.g. lower after a non-finite loss "
               "(docs/resuming_and_scaling.md).", rerun=True)
    deterministic: bool = _f(
        False, "Bit-identical reruns on the same machine and software; no XLA, some kernels slower "
               "(docs/resuming_and_scaling.md).")
