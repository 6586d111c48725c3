"""Writes that never leave a half-written file behind: a crash (kill -9, a full disk) during a write leaves
the old file or none, never a truncated one that a rerun would read."""

import json
import os


def write_json(path, value, indent=1):
    """`value` as JSON at `path`, atomically (written beside it, then renamed over it)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(value, handle, indent=indent, sort_keys=True)
    os.replace(tmp, path)


def read_json(path, default=None):
    """The JSON at `path`, or `default` if there is no such file."""
    if not os.path.exists(path):
        return default
    with open(path) as handle:
        return json.load(handle)


def save_weights(model, path):
    """model.save_weights to `path` (a .weights.h5 file), atomically; its directory is created."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path[: -len(".weights.h5")] + ".partial.weights.h5"
    model.save_weights(tmp)
    os.replace(tmp, path)
