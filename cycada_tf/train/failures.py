"""What real disks and data do to a run, said in one line: a run or data directory that cannot be written
(a file, under /proc, read-only, a full disk) and a corrupt TFRecord met while training (its shard, the
record's offset and the command that checks it). experiment_main prints the line and exits with status 2."""

import errno
import glob
import os
import re

# The errno texts of errors a user's disk or paths cause (TensorFlow's file errors carry them as text).
STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                  errno.EISDIR, errno.ENOENT, errno.EIO)
PROBE = ".cycada-write-test"


class StorageError(ValueError):
    """A directory the run must write cannot be written; the message names the flag, the path and why."""


def check_writable(path, flag):
    """Create directory `path` if needed and write and remove a file in it, so that a run that cannot save
    fails before it trains; StorageError '--flag=path: errno text (file)' otherwise."""
    check_directory(path, flag)
    probe = os.path.join(path, PROBE)
    try:
        os.makedirs(path, exist_ok=True)
        with open(probe, "w") as handle:
            handle.write("ok")
        os.remove(probe)
    except OSError as error:
        if os.path.exists(probe):  # created, then the write failed (a full disk)
            os.remove(probe)
        raise StorageError(f"{flag}={path}: {error.strerror} ({error.filename}); give a directory this user "
                           f"can write, on a disk with free space") from None


def check_directory(path, flag):
    """StorageError if `path` exists and is not a directory (it is read, not necessarily written)."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise StorageError(f"{flag}={path}: {os.strerror(errno.ENOTDIR)}; give a directory")


def storage_line(error):
    """'<path>: <errno text>' of an OSError, or the first line of a TensorFlow file error that carries an
    errno text (a full disk while a checkpoint is saved); None for any other error."""
    if isinstance(error, OSError) and error.errno is not None:
        where = error.filename if error.filename is not None else "a file"
        return f"{where}: {error.strerror}"
    import tensorflow as tf
    if isinstance(error, tf.errors.OpError) and not isinstance(error, tf.errors.DataLossError):
        first = (error.message or "").strip().splitlines()[0] if error.message else ""
        if any(os.strerror(code) in first for code in STORAGE_ERRNOS):
            return re.sub(r"\s*\[Op:\w+\].*$", "", first)
    return None


def advice(line):
    if os.strerror(errno.ENOSPC) in line or os.strerror(errno.EDQUOT) in line:
        return ("free some space, then rerun the same command: it continues from the last complete "
                "checkpoint")
    return "fix the path or its permissions (--run_dir, --data_dir), then rerun the same command"


def corrupt_record_line(error, config):
    """The shard and record offset of a tf.errors.DataLossError met while reading TFRecords, found by
    re-reading the run's datasets (its --source and --target in --data_dir, its translated records), with
    the command that checks or rebuilds that shard."""
    import tensorflow as tf

    from cycada_tf.data import registry, tfrecord  # here: the directory checks above load no TensorFlow
    run_dir = config.run_dir or os.path.join("runs", f"{config.source}_to_{config.target}")
    candidates = [(registry.dataset_dir(config.data_dir, name), name) for name in (config.source, config.target)]
    candidates += [(path, None) for path in sorted(glob.glob(os.path.join(run_dir, "seed_*", "translated_*")))]
    for directory, name in candidates:
        manifest = tfrecord.read_manifest(directory) if os.path.isdir(directory) else None
        for split in (manifest or {}).get("splits", {}).values():
            for shard in (os.path.join(directory, f) for f in split["files"]):
                try:
                    tfrecord.check_framing(shard)
                except tfrecord.DataError as found:
                    return f"{found}. " + _rebuild(directory, name, config)
                try:
                    for _ in tf.data.TFRecordDataset(shard):
                        pass
                except tf.errors.DataLossError as found:
                    offset = re.search(r"corrupted record at (\d+)", found.message or "")
                    where = f"the record at byte {offset.group(1)}" if offset else "a record"
                    return (f"{shard}: corrupt TFRecord shard ({where} fails its CRC check). "
                            + _rebuild(directory, name, config))
    first = (error.message or str(error)).strip().splitlines()[0]
    return (f"a corrupt TFRecord record ({first}) in none of the run's shards once re-read; check them with "
            f"python tools/prepare_data.py --dataset=<name> --data_dir={config.data_dir} --verify")


def _rebuild(directory, name, config):
    from cycada_tf.data import registry
    if name is None:  # translated records of this run
        return (f"Delete {directory} and rerun the same command: the pixel stage's translations are "
                "written again")
    if registry.get(name).build is not None:
        return f"Delete {directory} and rerun the same command: the embedded dataset is built again"
    return (f"Check it with: python tools/prepare_data.py --dataset={name} --data_dir={config.data_dir} "
            f"--verify; then delete {directory} and prepare it again with --raw_dir")


def one_line(error, config):
    """The one line a user is shown for `error`, or None if it is not one of a disk's or a shard's."""
    import tensorflow as tf
    if isinstance(error, tf.errors.DataLossError):
        return corrupt_record_line(error, config)
    line = storage_line(error)
    return f"{line}; {advice(line)}" if line else None
