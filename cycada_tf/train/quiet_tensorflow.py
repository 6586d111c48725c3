"""TensorFlow's own start-up lines kept off stderr, so that a command's stderr holds the project's lines only.
The experiment mains and the tools call import_tensorflow() before anything imports TensorFlow; --verbosity
(any value) brings every line back. No TensorFlow import here: this module runs before it.

What is silenced, and why it is not ours to fix:
- the lines TensorFlow's C++ libraries log while they load (oneDNN's notice, "Could not find cuda drivers",
  the CPU feature notice, absl's "All log messages before absl::InitializeLog()"): they are written before
  TF_CPP_MIN_LOG_LEVEL is read, so only stderr itself can hold them back, for the time of the import;
- "failed call to cuInit" on a machine without a GPU driver (TensorFlow probes for CUDA) and grappler's
  "remapper failed: INVALID_ARGUMENT" (once per run, in the pixel step: its message names the gradient of a
  LeakyReLU of D_s, which the remapper's fusion left dangling; grappler skips that pass, and training is the
  same with the line or without): C++ ERROR lines, which TF_CPP_MIN_LOG_LEVEL=3 hides. A value of it set by
  the user is kept."""

import contextlib
import os
import sys

LOG_LEVEL = "3"  # TF_CPP_MIN_LOG_LEVEL: FATAL only; errors that matter reach Python as exceptions


def verbosity_given(argv):
    """Whether a command line asks for --verbosity (absl's flag; the tools take it too), or its short -v."""
    return any(arg in ("-v", "--verbosity") or arg.startswith(("--verbosity=", "-v=")) for arg in argv[1:])


def add_verbosity_flag(parser):
    """The tools' --verbosity (an argparse parser's): given, TensorFlow's own lines are shown."""
    parser.add_argument("--verbosity", "-v", type=int, default=None,
                        help="any value shows TensorFlow's own log lines (start-up, C++ errors), hidden otherwise")


@contextlib.contextmanager
def stderr_discarded():
    """File descriptor 2 (stderr of Python and of C++ alike) goes to /dev/null inside the block."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow(verbose=False):
    """Import TensorFlow (and Keras) with its start-up lines discarded and its C++ log at LOG_LEVEL, unless
    `verbose` or it is imported already (then its lines came, or come, as they are). An import that fails
    raises after stderr is back, with its traceback."""
    if verbose or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", LOG_LEVEL)
    with stderr_discarded():
        import keras  # noqa: F401 - imports TensorFlow, its backend
        import tensorflow  # noqa: F401
