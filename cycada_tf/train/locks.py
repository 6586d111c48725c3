"""One process at a time per directory: an exclusive lock (fcntl.flock) on a file in it, held for the life of
a run (--run_dir) or of an export (--export_dir). Another process is refused in one line naming the holder's
PID. The kernel drops a lock when its holder dies, however it dies: the lock file a kill -9 leaves behind
(still naming the dead holder) is taken over by the next process, which says so; a holder that ends removes it."""

import contextlib
import errno
import fcntl
import os
import socket

RUN_LOCK = ".cycada-run.lock"  # in --run_dir
EXPORT_LOCK = ".cycada-export.lock"  # in --export_dir (which may be the run directory itself)


class Busy(ValueError):
    """The directory is held by another process; the message names the flag, the directory and the holder."""


@contextlib.contextmanager
def held(directory, flag, name=RUN_LOCK, log=None):
    """Hold the lock `name` in `directory` (created if needed) while the block runs; Busy if another process
    holds it. `log` hears of a lock taken over from a holder that died without releasing it. The lock file is
    removed when the block ends: a finished run or export leaves none."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    descriptor = _acquire(path, directory, flag)
    try:
        previous = _holder(descriptor)
        if previous and log is not None:
            log(f"{path}: taking over the lock of {previous}, which ended without releasing it (killed)")
        _write(descriptor, f"{os.getpid()} {socket.gethostname()}\n")
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):
                os.remove(path)  # while still held: a process that opens it now locks a new file
    finally:
        os.close(descriptor)  # releases the lock


def _acquire(path, directory, flag):
    """A descriptor of `path` holding its lock; Busy if another process holds it. A file removed by its holder
    between our open and our lock is opened again (the lock must be on the file the path names)."""
    while True:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            holder = _holder(descriptor) or "another process"
            os.close(descriptor)
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise Busy(f"{flag}={directory} is in use by {holder} (its lock: {path}); wait for it to end, or "
                       f"give another {flag}") from None
        try:
            same = os.path.samestat(os.fstat(descriptor), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            return descriptor
        os.close(descriptor)


def _holder(descriptor):
    """'process <pid> on <host>' as the lock file names its holder, or None if it names none."""
    os.lseek(descriptor, 0, os.SEEK_SET)
    parts = os.read(descriptor, 256).decode("utf-8", "replace").split()
    if not parts or not parts[0].isdigit():
        return None
    return f"process {parts[0]}" + (f" on {parts[1]}" if len(parts) > 1 and parts[1] != socket.gethostname()
                                    else "")


def _write(descriptor, text):
    with contextlib.suppress(OSError):  # a full disk: the lock holds all the same, its file names no one
        os.ftruncate(descriptor, 0)
        os.lseek(descriptor, 0, os.SEEK_SET)
        os.write(descriptor, text.encode())
