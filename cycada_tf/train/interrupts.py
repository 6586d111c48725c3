"""SIGINT (Ctrl-C) and SIGTERM end a run with one line saying where it was, "interrupted in stage 'pixel' (seed
0); the same command resumes", and exit status 130 or 143 (128 + the signal), not a traceback. Both unwind as
exceptions that no `except Exception` catches, so every write in progress cleans up after itself (atomic_files.py,
tfrecord.py, export.py) and the run directory's lock is released. The runner says where it is (entering)."""

import os
import signal
import sys

_WHERE = ["start-up"]


class Terminated(BaseException):
    """SIGTERM, raised where the process is, as Python raises KeyboardInterrupt for SIGINT."""

    signum = signal.SIGTERM


def _terminate(signum, frame):
    raise Terminated()


def _end_at_once(signum, frame):
    end(KeyboardInterrupt() if signum == signal.SIGINT else Terminated())


def starting():
    """The first thing an experiment's or a tool's __main__ does, before its modules load: from now until
    install(), SIGINT and SIGTERM print the one line ("interrupted in start-up; ...") and end the process at
    once with 130 or 143, as nothing has been written yet. A signal the process was started with ignored (a
    shell's background job ignores SIGINT) stays ignored."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _end_at_once)


def install():
    """From now on SIGTERM raises Terminated where the process is, and so does SIGINT KeyboardInterrupt (as
    Python's own handler; unless it was ignored at start), for the run's own handling to unwind."""
    if signal.getsignal(signal.SIGINT) is _end_at_once:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)


def entering(where):
    """The run is now in `where` (e.g. "stage 'pixel' (seed 0)"): what the interrupt line names."""
    _WHERE[0] = where


def status_and_line(error):
    """(exit status, the one line) of a KeyboardInterrupt or Terminated."""
    signum = getattr(error, "signum", signal.SIGINT)
    return 128 + signum, f"interrupted in {_WHERE[0]}; the same command resumes"


def end(error):
    """Print the one line of a KeyboardInterrupt or Terminated on stderr and end the process at once with its
    status (130 or 143). Every write in progress has cleaned up while the exception unwound to the caller; the
    interpreter's teardown is skipped (os._exit) because, with TensorFlow's objects left mid-operation by the
    signal, it can crash there (SIGSEGV) after the line was printed."""
    status, line = status_and_line(error)
    print(line, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(status)


def saved():
    """The process's SIGINT and SIGTERM handlers now, for restore()."""
    return {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}


def restore(handlers):
    """Put back the handlers saved() returned: a command's main called from Python leaves its caller's."""
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def finished():
    """The run has written everything: from now on SIGINT and SIGTERM are ignored, so that one arriving while
    the process exits (TensorFlow's teardown takes seconds) neither kills it by the signal's default action nor
    says that something was interrupted; the exit status stays 0."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
