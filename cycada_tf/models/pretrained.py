"""Pretrained weights files the segmenters start from: where Keras' cache keeps them, and the error a missing or
unreadable one ends a run with (a ValueError: an experiment prints it as one line and exits with status 2)."""

import os

import keras


class WeightsFileError(ValueError):
    """A weights file a network needs is missing or holds something else; the message names the file and what
    to do about it."""


def keras_cache_dir():
    """The directory keras.utils.get_file keeps downloaded weights in (cache_subdir "models"): $KERAS_HOME/models,
    else ~/.keras/models. Read at each call (Keras reads KERAS_HOME once, when imported), so that the
    environment of the run, or of a test, decides."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "models")


def check_file(path, what, name):
    """`path` if it is a file, else WeightsFileError '<name>: <what> <path> does not exist'."""
    if not os.path.isfile(path):
        raise WeightsFileError(f"{name}: {what} {path} does not exist")
    return path


def cached_or_downloaded(filename, url, md5, what, name):
    """The path of `filename` in Keras' cache: there already (used as it is, as Keras does), or downloaded from
    `url` by keras.utils.get_file (checked against `md5`). When neither works, one WeightsFileError that names
    the file, why the download failed, and where to put it by hand."""
    path = os.path.join(keras_cache_dir(), filename)
    if os.path.isfile(path):
        return path
    try:
        return keras.utils.get_file(filename, url, cache_dir=os.path.dirname(keras_cache_dir()),
                                    cache_subdir="models", file_hash=md5)
    except Exception as error:  # noqa: BLE001 - offline, refused, a bad hash: each is the same missing file
        reason = (str(error).strip().splitlines() or [""])[0]
        raise WeightsFileError(f"{name}: {what} {path} is not there and could not be downloaded "
                               f"({type(error).__name__}: {reason}); download {url} into "
                               f"{os.path.dirname(path)}") from None
