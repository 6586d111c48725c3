"""Writes that never leave a half-written file behind: a crash (kill -9) during a write leaves the old file or
none, never a truncated one that a rerun would read; an error (a full disk, an interrupt) removes what the
write had begun and closes every file it opened."""

import contextlib
import errno
import json
import os

PARTIAL_WEIGHTS = ".partial.weights.h5"  # beside <name>.weights.h5 while it is written


@contextlib.contextmanager
def replacing(path, tmp=None):
    """Yields a temporary path beside `path` to write; renamed over `path` when the block ends, removed if it
    raises (whatever it raises: a full disk, an interrupt)."""
    tmp = tmp or path + ".tmp"
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_text(path, text):
    """`text` at `path`, atomically."""
    with replacing(path) as tmp:
        with open(tmp, "w") as handle:
            handle.write(text)


def write_json(path, value, indent=1):
    """`value` as JSON at `path`, atomically (written beside it, then renamed over it)."""
    write_text(path, json.dumps(value, indent=indent, sort_keys=True))


def read_json(path, default=None):
    """The JSON at `path`, or `default` if there is no such file."""
    if not os.path.exists(path):
        return default
    with open(path) as handle:
        return json.load(handle)


def save_weights(model, path):
    """model.save_weights to `path` (a .weights.h5 file), atomically; its directory is created. On an error
    the HDF5 file Keras left open is closed (left open, h5py flushes it at exit, and a full disk then crashes
    the interpreter) and removed; a disk's error comes back as a one-line OSError naming `path`."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path[: -len(".weights.h5")] + PARTIAL_WEIGHTS
    try:
        with replacing(path, tmp):
            try:
                model.save_weights(tmp)
            except BaseException:
                _close_hdf5(tmp)
                raise
    except OSError as error:
        code = error.errno if error.errno is not None else _errno_in(str(error))
        if code is None:
            raise
        raise OSError(code, os.strerror(code), path) from None


def _close_hdf5(path):
    """Close every HDF5 file id open on `path` (Keras does not close its store when a write fails)."""
    import h5py
    target = os.fsencode(os.path.abspath(path))
    for file_id in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
        with contextlib.suppress(Exception):  # a full disk fails the flush; the id is released all the same
            if os.fsencode(os.path.abspath(os.fsdecode(file_id.name))) == target:
                h5py.File(file_id).close()


def _errno_in(text):
    """The errno an HDF5 message carries as text ('errno = 28'), or None."""
    marker = "errno = "
    at = text.find(marker)
    if at < 0:
        return None
    digits = "".join(c for c in text[at + len(marker):at + len(marker) + 4] if c.isdigit())
    return int(digits) if digits and int(digits) in errno.errorcode else None
