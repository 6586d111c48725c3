"""Sharded TFRecord files: atomic writing, a manifest per dataset, a reader and a record-by-record check.

Layout: <data_dir>/<dataset>/<split>-<i>-of-<n>.tfrecord and <data_dir>/<dataset>/manifest.json.
A dataset directory is written under a temporary name and renamed into place in one step, so a reader never
sees half a dataset, and the manifest (counts per split and class, checksums of the inputs) says which
inputs made it: writing again from the same inputs is a no-op. The temporary directory's name holds the
writer's process id and host: one left by a killed writer is removed by the next write of the same dataset.
Directories are made with the process's umask (a shared data directory stays readable by its group).
"""

import collections
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import tempfile

import tensorflow as tf

from cycada_tf.data import schema

MANIFEST = "manifest.json"
# A record on disk: its length (uint64) and the length's masked CRC-32C, the data, the data's masked CRC-32C.
RECORD_HEADER, RECORD_FOOTER = 12, 4
RECORDS_PER_SHARD = 10000


class DataError(Exception):
    """Missing or unreadable data; the message names the file and what to do."""


def sha256_of_file(path, chunk=1 << 20):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while True:
            block = handle.read(chunk)
            if not block:
                return digest.hexdigest()
            digest.update(block)


def shard_names(split, num_shards):
    return [f"{split}-{i:05d}-of-{num_shards:05d}.tfrecord" for i in range(num_shards)]


def read_manifest(dataset_dir):
    path = os.path.join(dataset_dir, MANIFEST)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise DataError(f"{path}: unreadable manifest ({error}); delete {dataset_dir} and prepare it again")


def is_current(dataset_dir, inputs):
    """True when dataset_dir holds a complete dataset written from exactly these inputs."""
    manifest = read_manifest(dataset_dir)
    if manifest is None or manifest.get("inputs") != inputs:
        return False
    return all(os.path.exists(os.path.join(dataset_dir, name))
               for split in manifest["splits"].values() for name in split["files"])


def write_dataset(dataset_dir, splits, inputs, info=None, records_per_shard=RECORDS_PER_SHARD):
    """Write every split of a dataset atomically.

    splits: {split name: iterable of tf.train.Example}. inputs: {name: checksum or description} identifying
    what the records were made from. info: extra JSON-able facts (image size, classes) for the manifest.
    Returns the manifest. If dataset_dir already holds the same inputs, nothing is written.
    """
    remove_stale_partials(dataset_dir)
    if is_current(dataset_dir, inputs):
        return read_manifest(dataset_dir)
    parent = os.path.dirname(os.path.abspath(dataset_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=_partial_prefix(dataset_dir) + f"{os.getpid()}@{socket.gethostname()}-",
                               dir=parent)
    try:
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700: others could not read the dataset
        manifest = {"inputs": inputs, "info": info or {}, "splits": {}}
        for split, examples in splits.items():
            manifest["splits"][split] = _write_split(staging, split, examples, records_per_shard)
        with open(os.path.join(staging, MANIFEST), "w") as handle:
            json.dump(manifest, handle, indent=1, sort_keys=True)
        if os.path.exists(dataset_dir):
            old = dataset_dir + ".old-" + os.path.basename(staging)
            os.replace(dataset_dir, old)
            os.replace(staging, dataset_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, dataset_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _partial_prefix(dataset_dir):
    return "." + os.path.basename(os.path.abspath(dataset_dir)) + ".partial-"


# <pid>@<host>-<mkdtemp's random suffix>, the part of a temporary name after its prefix
_WRITER = re.compile(r"(\d+)@(.+)-[A-Za-z0-9_]+$")


def writer_is_gone(suffix):
    """True when the writer named in a temporary directory's name (pid@host) is a process of this host that
    no longer runs, or the name has no writer (an older version made it)."""
    match = _WRITER.match(suffix)
    if match is None:
        return True
    if match.group(2) != socket.gethostname():
        return False  # another host's writer (a shared filesystem): it may still be running
    try:
        os.kill(int(match.group(1)), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


def remove_stale_partials(dataset_dir, log=print):
    """Remove what a killed write of dataset_dir left beside it: its temporary .<name>.partial-* directory
    and a replaced copy (<name>.old-*) not yet deleted; each one removed is said in the log. Returns them."""
    parent = os.path.dirname(os.path.abspath(dataset_dir))
    prefix = _partial_prefix(dataset_dir)
    old_prefix = os.path.basename(os.path.abspath(dataset_dir)) + ".old-" + prefix
    try:
        names = os.listdir(parent)
    except (FileNotFoundError, NotADirectoryError):
        return []
    removed = []
    for name in sorted(names):
        start = prefix if name.startswith(prefix) else old_prefix if name.startswith(old_prefix) else None
        path = os.path.join(parent, name)
        if start is None or not os.path.isdir(path) or not writer_is_gone(name[len(start):]):
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
        log(f"removed {path}: left by a write of {dataset_dir} that did not finish (a killed run)")
    return removed


def _write_split(directory, split, examples, records_per_shard):
    """Write records to provisional shards, then rename them to the final -i-of-n names."""
    provisional, counts, total = [], collections.Counter(), 0
    writer = None
    for example in examples:
        if writer is None or total % records_per_shard == 0:
            if writer is not None:
                writer.close()
            provisional.append(os.path.join(directory, f".{split}-{len(provisional):05d}.tmp"))
            writer = tf.io.TFRecordWriter(provisional[-1])
        writer.write(example.SerializeToString(deterministic=True))  # map fields in key order
        counts[int(example.features.feature[schema.LABEL].int64_list.value[0])] += 1
        total += 1
    if writer is not None:
        writer.close()
    names = shard_names(split, len(provisional))
    for path, name in zip(provisional, names):
        os.replace(path, os.path.join(directory, name))
    return {"count": total, "files": names,
            "classes": {str(k): v for k, v in sorted(counts.items())}}


def check_framing(path, hint=""):
    """DataError naming `path` unless every record's length fits in the file: TensorFlow's reader allocates the
    length a record's header gives before it reads the record (a damaged header asking for 256 GiB crashes
    the process). Reads 12 bytes a record and seeks past its data; CRCs are TensorFlow's to check."""
    size = os.path.getsize(path)
    with open(path, "rb") as handle:
        offset = 0
        while offset < size:
            header = handle.read(RECORD_HEADER)
            if len(header) < RECORD_HEADER:
                problem = f"is cut off at byte {size}: a truncated shard"
            else:
                (length,) = struct.unpack("<Q", header[:8])
                end = offset + RECORD_HEADER + length + RECORD_FOOTER
                if end <= size:
                    handle.seek(end)
                    offset = end
                    continue
                problem = f"says {length} bytes, past the end of the file at byte {size}"
            raise DataError(f"{path}: corrupt TFRecord shard (the record at byte {offset} {problem})"
                            + (f". {hint}" if hint else ""))


def split_files(dataset_dir, split, prepare_hint=""):
    """The shard paths of one split, checked against the manifest, each one's records against its size."""
    manifest = read_manifest(dataset_dir)
    if manifest is None:
        raise DataError(f"no prepared data in {dataset_dir} (missing {MANIFEST}). {prepare_hint}".strip())
    if split not in manifest["splits"]:
        raise DataError(f"{dataset_dir} has no split '{split}' (it has {sorted(manifest['splits'])}). "
                        f"{prepare_hint}".strip())
    paths = [os.path.join(dataset_dir, name) for name in manifest["splits"][split]["files"]]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise DataError(f"{missing[0]} is listed in the manifest but missing. {prepare_hint}".strip())
    for path in paths:
        check_framing(path, f"Delete {dataset_dir} and prepare it again. {prepare_hint}".strip())
    return paths


def verify(dataset_dir):
    """Re-read every record of every shard; raise DataError naming the first bad file. Returns counts."""
    manifest = read_manifest(dataset_dir)
    if manifest is None:
        raise DataError(f"no prepared data in {dataset_dir} (missing {MANIFEST})")
    counts = {}
    for split, entry in manifest["splits"].items():
        total = 0
        for name in entry["files"]:
            path = os.path.join(dataset_dir, name)
            check_framing(path, f"delete {dataset_dir} and prepare it again")
            try:
                for record in tf.data.TFRecordDataset(path):
                    parsed = schema.parse(record)
                    tf.io.decode_png(parsed[schema.IMAGE])
                    if parsed[schema.LABEL_MAP].numpy():  # segmentation records: the label map too
                        tf.io.decode_png(parsed[schema.LABEL_MAP])
                    total += 1
            except (tf.errors.DataLossError, tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
                raise DataError(f"{path}: corrupt or truncated shard ({e.message.splitlines()[0]}); "
                                f"delete {dataset_dir} and prepare it again") from None
        if total != entry["count"]:
            raise DataError(f"{dataset_dir}: split '{split}' has {total} records, manifest says "
                            f"{entry['count']}; delete it and prepare it again")
        counts[split] = total
    return counts
