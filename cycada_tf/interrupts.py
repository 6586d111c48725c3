"""SIGINT (Ctrl-C) and SIGTERM end a run with one line saying where it was, "interrupted in stage 'pixel' (seed
0); the same command resumes", and exit status 130 or 143 (128 + the signal), not a traceback. Both unwind as
exceptions that no `except Exception` catches, so every write in progress cleans up after itself (files.py,
tfrecord.py, export.py) and the run directory's lock is released. The runner says where it is (entering)."""

import signal

_WHERE = ["start-up"]


class Terminated(BaseException):
    """SIGTERM, raised where the process is, as Python raises KeyboardInterrupt for SIGINT."""

    signum = signal.SIGTERM


def _terminate(signum, frame):
    raise Terminated()


def install():
    """SIGTERM raises Terminated from now on (SIGINT raises KeyboardInterrupt already)."""
    signal.signal(signal.SIGTERM, _terminate)


def entering(where):
    """The run is now in `where` (e.g. "stage 'pixel' (seed 0)"): what the interrupt line names."""
    _WHERE[0] = where


def status_and_line(error):
    """(exit status, the one line) of a KeyboardInterrupt or Terminated."""
    signum = getattr(error, "signum", signal.SIGINT)
    return 128 + signum, f"interrupted in {_WHERE[0]}; the same command resumes"
