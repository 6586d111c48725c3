"""absl flags generated from a config dataclass, so each flag's default, help and accepted values live in one
place; every flag is checked (flag_checks.py) before TensorFlow loads and before anything is written."""

import dataclasses
import functools
import importlib
import sys

from absl import app, flags, logging

from cycada_tf.config import flag_checks as accepts
from cycada_tf.train import failures, interrupts, quiet_tensorflow as quiet
from cycada_tf.experiments import usage


def define_from(cls, flag_values=flags.FLAGS):
    """Define one absl flag per field of `cls` (in `flag_values`, absl's global FLAGS unless given), with the
    default and help of `cls`'s task (config.Config's help and the task's note); a text field with choices is
    an enum flag."""
    defaults = cls()
    for field in dataclasses.fields(cls):
        default = getattr(defaults, field.name)
        help_text = field.metadata.get("help", field.name)
        choices = field.metadata.get("accepts", {}).get("choices")
        if isinstance(default, bool):
            flags.DEFINE_bool(field.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, int):
            flags.DEFINE_integer(field.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, float):
            flags.DEFINE_float(field.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, tuple):
            flags.DEFINE_list(field.name, [str(v) for v in default], help_text,
                              flag_values=flag_values)
        elif choices:
            flags.DEFINE_enum(field.name, default, choices, help_text, flag_values=flag_values)
        else:
            flags.DEFINE_string(field.name, default, help_text, flag_values=flag_values)


def config_from_flags(cls, flag_values=flags.FLAGS):
    """Build `cls` from the parsed flags; accepts.FlagError (a ValueError) names a flag whose value it does
    not accept."""
    values, defaults = {}, cls()
    for field in dataclasses.fields(cls):
        value = getattr(flag_values, field.name)
        default = getattr(defaults, field.name)
        if isinstance(default, tuple):
            if default and isinstance(default[0], int):
                try:
                    value = tuple(int(v) for v in value)
                except ValueError:
                    value = tuple(value)  # accepts.check names the flag and what it takes
            else:
                value = tuple(value)
        values[field.name] = value
    return cls(**values)


def parse_flags(argv, flag_values=flags.FLAGS, help_text=None):
    """absl's flag parsing for app.run (its flags_parser), but a bad flag (unknown, not a number, not one of an
    enum's values) ends with one line on stderr and exit status 2 rather than absl's usage text and 1; --help
    (or -h) prints `help_text` on stdout and ends with status 0."""
    if help_text is not None and usage.wants_help(argv):
        print(help_text, end="")
        sys.exit(0)
    try:
        return flag_values(argv)
    except flags.Error as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def run(main, cls, doc):
    """app.run(main) with parse_flags, as the experiment modules' __main__ runs it: --help lists the flags of
    `cls` under `doc` (usage.py); an interrupt that comes before `main` has started (while the modules load) is
    the same one line as one in it."""
    try:
        app.run(main, flags_parser=functools.partial(parse_flags, help_text=usage.text(cls, doc)))
    except (KeyboardInterrupt, interrupts.Terminated) as error:
        interrupts.end(error)


def experiment_main(cls, runner):
    """The absl main of an experiment: flags -> `cls` -> `runner`.run(config), `runner` a module's name
    (imported only then: --help answers without loading TensorFlow). A flag's wrong value ends at once, before
    TensorFlow loads and anything is written, with one line naming it and exit status 2. So do bad data,
    a directory that cannot be written, a full disk and a corrupt TFRecord shard met while training
    (cycada_tf.train.failures); SIGINT and SIGTERM end with one line and 130 or 143 (cycada_tf.train.interrupts).
    TensorFlow's own lines are hidden unless --verbosity is given (cycada_tf.train.quiet_tensorflow)."""
    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        try:
            config = config_from_flags(cls)
        except accepts.FlagError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        interrupts.install()
        try:
            _run(config, runner, verbose=flags.FLAGS["verbosity"].present)
            interrupts.finished()
        except (KeyboardInterrupt, interrupts.Terminated) as error:
            interrupts.end(error)
    return main


def _run(config, runner, verbose):
    if not verbose:
        # app.run logs at INFO, and TensorFlow's checkpoint saver logs a line per save there; progress is
        # ours to print. --verbosity=0 brings TensorFlow's INFO lines back.
        logging.set_verbosity(logging.WARNING)
    try:  # a file where a directory is named ends here, before TensorFlow loads
        for flag in ("data_dir", "run_dir"):
            failures.check_directory(getattr(config, flag), f"--{flag}")
    except failures.StorageError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    quiet.import_tensorflow(verbose)  # before anything imports it: its start-up lines (quiet_tensorflow.py)
    from cycada_tf.data.tfrecord import DataError
    try:
        importlib.import_module(runner).run(config)
    except (DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except Exception as error:  # noqa: BLE001 - only a disk's or a shard's error is turned into one line
        line = failures.one_line(error, config)
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
