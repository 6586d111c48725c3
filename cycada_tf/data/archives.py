"""Segmentation datasets as their archives arrive (.zip): extracted once into a cache beside the records, so
`tools/prepare_data.py --raw_dir` may point at the downloaded archives as well as at an extracted tree.

.7z and .rar (SYNTHIA's) need a reader this project does not install (py7zr, unrar): such an archive is
refused with the command that extracts it. Members are extracted only inside the target directory.
"""

import errno
import hashlib
import os
import shutil
import stat
import tempfile
import zipfile

from cycada_tf.data.tfrecord import DataError

READABLE = (".zip",)
STORAGE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES)  # the disk's, not the archive's
UNREADABLE = (".7z", ".rar")


def _check_member(archive, info, path, staging, raw_dir):
    """DataError naming `path` for a member that would land outside `staging`, or that is a symbolic link
    (zipfile would write the link's target path as a file: a linked directory then breaks the members under it)."""
    member = info.filename
    destination = os.path.realpath(os.path.join(staging, member))
    if not destination.startswith(os.path.realpath(staging) + os.sep):
        raise DataError(f"{path}: member {member!r} would be written outside the extraction directory; refused")
    if stat.S_ISLNK(info.external_attr >> 16):
        target = archive.read(info).decode("utf-8", "replace")
        raise DataError(f"{path}: member {member!r} is a symbolic link (to {target!r}), which is not extracted "
                        f"from an archive; extract it yourself (unzip {os.path.basename(path)}) in {raw_dir}, "
                        "check where its links point, move the archive away and run again")


def archives_in(raw_dir):
    return sorted(n for n in os.listdir(raw_dir) if n.lower().endswith(READABLE + UNREADABLE)
                  and os.path.isfile(os.path.join(raw_dir, n)))


def unpacked(raw_dir, cache_dir, say=print):
    """raw_dir when it holds no archive; else the directory its archives are extracted into (once per set of
    archives, identified by their names and sizes), written under a temporary name and renamed into place."""
    names = archives_in(raw_dir)
    if not names:
        return raw_dir
    for name in names:
        if name.lower().endswith(UNREADABLE):
            tool = "7z x" if name.lower().endswith(".7z") else "unrar x"
            raise DataError(f"{os.path.join(raw_dir, name)}: no reader for {os.path.splitext(name)[1]} archives "
                            f"is installed; extract it ({tool} {name}) in {raw_dir}, move the archive away and "
                            "run again")
    key = hashlib.sha256("".join(f"{n}:{os.path.getsize(os.path.join(raw_dir, n))};" for n in names).encode())
    target = os.path.join(cache_dir, f"extracted-{key.hexdigest()[:12]}")
    if os.path.isdir(target):
        say(f"using {target}, extracted earlier from {', '.join(names)}")
        return target
    os.makedirs(cache_dir, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".extracting-", dir=cache_dir)
    try:
        for name in names:
            path = os.path.join(raw_dir, name)
            say(f"extracting {path}")
            try:
                with zipfile.ZipFile(path) as archive:
                    for info in archive.infolist():
                        _check_member(archive, info, path, staging, raw_dir)
                    archive.extractall(staging)
            except (zipfile.BadZipFile, EOFError) as error:
                raise DataError(f"{path}: unreadable or truncated zip archive ({error}); download it "
                                "again") from None
            except OSError as error:
                if error.errno in STORAGE_ERRNOS:  # a full disk, an unwritable cache: the disk's line
                    raise
                raise DataError(f"{path}: unreadable or truncated zip archive ({error}); download it "
                                "again") from None
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
