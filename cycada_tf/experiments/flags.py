"""absl flags generated from a config dataclass, so each flag's default and help live in one place."""

import dataclasses
import importlib
import sys

from absl import app, flags, logging

from cycada_tf import quiet


def define_from(cls, flag_values=flags.FLAGS):
    """Define one absl flag per field of `cls` (in `flag_values`, absl's global FLAGS unless given), with the
    default and help of `cls`'s task (config.Config's help and the task's note)."""
    defaults = cls()
    for field in dataclasses.fields(cls):
        default = getattr(defaults, field.name)
        help_text = field.metadata.get("help", field.name)
        if isinstance(default, bool):
            flags.DEFINE_bool(field.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, int):
            flags.DEFINE_integer(field.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, float):
            flags.DEFINE_float(field.name, default, help_text, flag_values=flag_values)
        elif isinstance(default, tuple):
            flags.DEFINE_list(field.name, [str(v) for v in default], help_text,
                              flag_values=flag_values)
        else:
            flags.DEFINE_string(field.name, default, help_text, flag_values=flag_values)


def config_from_flags(cls, flag_values=flags.FLAGS):
    """Build `cls` from the parsed flags, with clear errors for bad values."""
    values, defaults = {}, cls()
    for field in dataclasses.fields(cls):
        value = getattr(flag_values, field.name)
        default = getattr(defaults, field.name)
        if isinstance(default, tuple):
            if default and isinstance(default[0], int):
                try:
                    value = tuple(int(v) for v in value)
                except ValueError:
                    raise flags.ValidationError(f"--{field.name} takes integers, got {','.join(value)}")
            else:
                value = tuple(value)
        values[field.name] = value
    return cls(**values)


def experiment_main(cls, runner):
    """The absl main of an experiment: flags -> `cls` -> `runner`.run(config), `runner` a module's name
    (imported only then: --help answers without loading TensorFlow). Bad data or flag values end with one
    line on stderr and exit status 2, and so do a directory that cannot be written, a full disk and a corrupt
    TFRecord shard met while training (cycada_tf.failures). TensorFlow's own lines are hidden unless
    --verbosity is given (cycada_tf.quiet)."""
    def main(argv):
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
        verbose = flags.FLAGS["verbosity"].present
        if not verbose:
            # app.run logs at INFO, and TensorFlow's checkpoint saver logs a line per save there; progress is
            # ours to print. --verbosity=0 brings TensorFlow's INFO lines back.
            logging.set_verbosity(logging.WARNING)
        quiet.import_tensorflow(verbose)  # before anything imports it: its start-up lines (quiet.py)
        from cycada_tf.data.tfrecord import DataError
        config = config_from_flags(cls)
        try:
            importlib.import_module(runner).run(config)
        except (DataError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except Exception as error:  # noqa: BLE001 - only a disk's or a shard's error is turned into one line
            from cycada_tf import failures
            line = failures.one_line(error, config)
            if line is None:
                raise
            print(f"error: {line}", file=sys.stderr)
            sys.exit(2)
    return main
