"""PyTorch checkpoints (.pth) read without PyTorch: the tensors of a state dict as numpy arrays, so that the
authors' ImageNet weights need no torch in requirements.txt.

Both layouts torch.save writes are read: the zip archive of PyTorch 1.6 and later (<archive>/data.pkl, a pickle
whose persistent ids name raw storages <archive>/data/<key>) and the stream of pickles before it (the magic
number, the protocol version, system information, the object, the list of storage keys, then each storage as
its element count, int64, and its bytes), with the tensors of either rebuild function (_rebuild_tensor of
PyTorch 0.3 and before, _rebuild_tensor_v2 since). The tar layout of PyTorch 0.1 is not read (the error says
so). Only dicts, tensors and their storages are unpickled: a file that holds any other object is refused, so
reading a checkpoint runs none of its code.
"""

import collections
import io
import math
import os
import pickle
import pickletools
import struct
import tarfile
import zipfile

import numpy as np

from cycada_tf.data import limits

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER: the first pickle of the old layout
LEGACY_PROTOCOL = 1001                  # torch.serialization.PROTOCOL_VERSION
# Storage classes (torch.<X>Storage, torch.cuda.<X>Storage when saved from a GPU) -> little-endian dtypes.
STORAGE_DTYPES = {"DoubleStorage": "<f8", "FloatStorage": "<f4", "HalfStorage": "<f2", "LongStorage": "<i8",
                  "IntStorage": "<i4", "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1",
                  "BoolStorage": "?"}


class CheckpointError(ValueError):
    """The file is not a PyTorch checkpoint of tensors in a layout read here; the message names the file."""


class _Storage:
    """A storage a persistent id names (a view of `base` from `start` for the old layout's views); its
    elements are read after the pickle (old layout) or from the archive's entry (zip)."""

    def __init__(self, dtype, key, numel, base=None, start=0):
        self.dtype, self.key, self.numel, self.base, self.start = dtype, key, numel, base, start
        self.array = None

    def elements(self):
        if self.base is None:
            return self.array
        base = self.base.elements()
        return None if base is None else base[self.start:self.start + self.numel]


class _Tensor:
    """What torch._utils._rebuild_tensor(_v2) builds: `size` elements of a storage from `offset` by `stride`."""

    def __init__(self, storage, offset, size, stride, *unused):  # v2 adds requires_grad, hooks (and metadata)
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def numpy(self, path, name):
        elements = self.storage.elements()
        if elements is None:
            raise CheckpointError(f"{path}: the storage of {name} is missing from the file")
        if math.prod(self.size) == 0:
            return np.zeros(self.size, elements.dtype)
        if math.prod(self.size) > len(elements) - max(self.offset, 0):
            raise CheckpointError(f"{path}: {name} of shape {self.size} has {math.prod(self.size)} elements, its "
                                  f"storage holds {max(len(elements) - max(self.offset, 0), 0)}: refused (a file "
                                  "never sets an allocation larger than its own storage)")
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if self.offset < 0 or min(self.stride, default=0) < 0 or last >= len(elements):
            raise CheckpointError(f"{path}: {name} reaches past the end of its storage (a truncated file?)")
        strides = tuple(s * elements.itemsize for s in self.stride)
        return np.lib.stride_tricks.as_strided(elements[self.offset:], self.size, strides).copy()


def _rebuild_parameter(data, *unused):  # torch._utils._rebuild_parameter: a Parameter saved as such
    return data


_GLOBALS = {("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor"): _Tensor,
            ("torch._utils", "_rebuild_tensor_v2"): _Tensor,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter}


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, path, storages):
        super().__init__(file, encoding="utf-8")  # torch.load's: a Python 2 checkpoint's strings come as str
        self.path, self.storages = path, storages

    def find_class(self, module, name):
        if (module, name) in _GLOBALS:
            return _GLOBALS[(module, name)]
        if module in ("torch", "torch.cuda") and name in STORAGE_DTYPES:
            return np.dtype(STORAGE_DTYPES[name])
        if module in ("torch", "torch.cuda") and name.endswith("Storage"):
            raise CheckpointError(f"{self.path}: holds tensors of {module}.{name}, a type not read here")
        raise CheckpointError(f"{self.path}: holds a {module}.{name}, not only tensors: refused (a state dict of "
                              "tensors is read, never code)")

    def persistent_load(self, pid):
        # ("storage", type, key, location, numel) in the zip layout; the old one adds a view: None or
        # (view key, offset, numel) into the storage `key`.
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], np.dtype)):
            raise CheckpointError(f"{self.path}: an unknown reference {pid!r} in its pickle")
        dtype, key, numel = pid[1], str(pid[2]), int(pid[4])
        storage = self.storages.setdefault(key, _Storage(dtype, key, numel))
        if len(pid) == 6 and pid[5] is not None:
            view_key, start, view_numel = pid[5]
            return self.storages.setdefault(str(view_key), _Storage(dtype, view_key, view_numel, storage, start))
        return storage


def _tensors(obj, path):
    """{name: array} of a state dict (a checkpoint dict's "state_dict" entry if it has one), in file order."""
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict of tensors")
    state = collections.OrderedDict()
    for name, value in obj.items():
        if not isinstance(value, _Tensor):
            raise CheckpointError(f"{path}: {name} is a {type(value).__name__}, not a tensor")
        state[str(name)] = value.numpy(path, name)
    if all(name.startswith("module.") for name in state):  # saved from nn.DataParallel
        state = collections.OrderedDict((name[len("module."):], value) for name, value in state.items())
    return state


def _load(handle, path, storages):
    """The next pickle of `handle` (an io.BytesIO), unpickled only once every length it declares is checked
    against the bytes there (pickletools reads them without allocating): the unpickler allocates a declared
    length before it reads, so a short file could otherwise ask for any amount of memory."""
    start = handle.tell()
    for _ in pickletools.genops(handle):  # ValueError for a length past the end of the data
        pass
    handle.seek(start)
    return _Unpickler(handle, path, storages).load()


def _read_member(archive, name, path):
    """The bytes of zip member `name`, once its sizes are within what the zip file can hold."""
    info = archive.getinfo(name)
    room = info.compress_size if info.compress_type == zipfile.ZIP_STORED else limits.inflated_at_most(
        info.compress_size)
    if info.compress_size > os.path.getsize(path) or info.file_size > room:
        raise CheckpointError(f"{path}: its member {name} says {info.file_size} bytes, more than the file can "
                              "hold (a damaged or hostile file)")
    return archive.read(name)


def _read_zip(path):
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name == "data.pkl" or name.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise CheckpointError(f"{path}: a zip file but no PyTorch checkpoint (no single <archive>/data.pkl)")
        prefix, storages = pickles[0][:-len("data.pkl")], {}
        obj = _load(io.BytesIO(_read_member(archive, pickles[0], path)), path, storages)
        for storage in storages.values():
            if storage.base is None:
                try:
                    data = _read_member(archive, f"{prefix}data/{storage.key}", path)
                except KeyError:
                    raise CheckpointError(f"{path}: storage {prefix}data/{storage.key} is missing") from None
                storage.array = np.frombuffer(data, storage.dtype, count=len(data) // storage.dtype.itemsize)
    return _tensors(obj, path)


def _read_legacy(path, handle):
    storages = {}
    if _load(handle, path, storages) != LEGACY_PROTOCOL:
        raise CheckpointError(f"{path}: a PyTorch checkpoint of an unknown protocol version")
    info = _load(handle, path, storages)
    if isinstance(info, dict) and not info.get("little_endian", True):
        raise CheckpointError(f"{path}: saved on a big-endian machine, which is not read here")
    obj = _load(handle, path, storages)
    data = handle.getbuffer()
    for key in _load(handle, path, storages):
        storage = storages.get(str(key))
        header = handle.read(8)
        numel = struct.unpack("<q", header)[0] if len(header) == 8 else -1
        if storage is None or numel < 0:
            raise CheckpointError(f"{path}: storage {key} is missing or truncated")
        start, size = handle.tell(), numel * storage.dtype.itemsize
        if start + size > len(data):
            raise CheckpointError(f"{path}: storage {key} is truncated (it says {size} bytes, "
                                  f"{len(data) - start} are left)")
        storage.array = np.frombuffer(data, storage.dtype, count=numel, offset=start)
        handle.seek(start + size)
    return _tensors(obj, path)


def load_state_dict(path):
    """{name: numpy array} of the state dict in PyTorch checkpoint `path` (torch.save's zip or older layout),
    in the file's order, without PyTorch. CheckpointError (a ValueError) names the file when it is not one."""
    if not os.path.isfile(path):
        raise CheckpointError(f"{path}: no such file")
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        with open(path, "rb") as raw:
            handle = io.BytesIO(raw.read())  # the file's own size: what its storages are views of
        try:
            legacy = _load(handle, path, {}) == LEGACY_MAGIC
        except CheckpointError:
            raise
        except Exception:  # noqa: BLE001 - any byte string that is no pickle
            legacy = False
        if legacy:
            return _read_legacy(path, handle)
        if tarfile.is_tarfile(path):
            raise CheckpointError(f"{path}: the tar layout of PyTorch 0.1 is not read; load it with that PyTorch "
                                  "and torch.save it again")
    except (OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(error).__name__}: {error})") from None
    raise CheckpointError(f"{path}: not a PyTorch checkpoint (neither torch.save's zip nor its older layout)")
