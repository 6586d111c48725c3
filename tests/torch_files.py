"""PyTorch checkpoints written without PyTorch, for the tests: a state dict of numpy arrays in either layout
torch.save writes (the zip archive of PyTorch 1.6 and later; the stream of pickles before it), byte for byte in
the structure torch.load reads (checked once against torch 2.13's torch.load and torch.save, not a dependency).

The pickle names torch's rebuild functions and storage classes as globals without importing torch: a Global is
written as the GLOBAL opcode "module name", which pickle's own save_global would refuse for a module it cannot
import."""

import collections
import io
import pickle
import struct
import zipfile

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER
PROTOCOL = 1001                 # torch.serialization.PROTOCOL_VERSION
STORAGES = {"float32": "FloatStorage", "float64": "DoubleStorage", "float16": "HalfStorage", "int64": "LongStorage",
            "int32": "IntStorage", "uint8": "ByteStorage", "bool": "BoolStorage"}


class Global:
    """torch.<...> by name: pickled as GLOBAL "module name" (a callable, as pickle's REDUCE wants)."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):
        raise TypeError(f"{self.module}.{self.name} stands for PyTorch's, which is not imported here")


class Tensor:
    """A tensor of `array`'s values, in storage `key`: contiguous from element `offset` by default, or `size`
    and `stride` into the storage (several Tensors may share one key, as views of one storage do)."""

    def __init__(self, array, key, offset=0, size=None, stride=None, storage=None, rebuild="_rebuild_tensor_v2"):
        self.array = np.array(array, order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
        self.key, self.offset, self.rebuild = str(key), offset, rebuild
        self.size = tuple(int(n) for n in (self.array.shape if size is None else size))
        self.stride = tuple(int(s) for s in (np.array(self.array.strides, int) // self.array.itemsize
                                             if stride is None else stride))
        self.storage = self.array.ravel() if storage is None else np.asarray(storage)

    def __reduce__(self):
        args = (_StorageRef(self), self.offset, self.size, self.stride)
        if self.rebuild == "_rebuild_tensor_v2":  # requires_grad, backward hooks (an empty OrderedDict)
            args += (False, collections.OrderedDict())
        return Global("torch._utils", self.rebuild), args


class _StorageRef:
    def __init__(self, tensor):
        self.tensor = tensor


class _Pickler(pickle._Pickler):  # the Python pickler, whose dispatch table a subclass may extend
    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file, legacy, storages):
        super().__init__(file, protocol=2)  # torch.save's DEFAULT_PROTOCOL
        self.legacy, self.storages = legacy, storages

    def save_global_name(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
        self.memoize(obj)

    dispatch[Global] = save_global_name

    def persistent_id(self, obj):
        if not isinstance(obj, _StorageRef):
            return None
        tensor = obj.tensor
        self.storages[tensor.key] = tensor.storage
        kind = Global("torch", STORAGES[str(tensor.storage.dtype)])
        pid = ("storage", kind, tensor.key, "cpu", int(tensor.storage.size))
        return pid + (None,) if self.legacy else pid  # the old layout adds a view (None: the whole storage)


def _state(tensors):
    state = collections.OrderedDict((name, t if isinstance(t, Tensor) else Tensor(t, i))
                                    for i, (name, t) in enumerate(tensors.items()))
    state._metadata = collections.OrderedDict([("", {"version": 1})])  # as nn.Module.state_dict() carries
    return state


def _pickle(obj, legacy, storages):
    buffer = io.BytesIO()
    _Pickler(buffer, legacy, storages).dump(obj)
    return buffer.getvalue()


def save(tensors, path, layout="zip", archive="archive", checkpoint=None):
    """Write {name: numpy array or Tensor} as torch.save(state_dict, path) would: layout "zip" (the default of
    PyTorch 1.6+, entries under `archive`/) or "legacy" (_use_new_zipfile_serialization=False). With
    `checkpoint` (a dict), the state dict is saved as its "state_dict" entry, as training scripts save theirs."""
    storages, obj = {}, _state(tensors)
    if checkpoint is not None:
        obj = dict(checkpoint, state_dict=obj)
    if layout == "zip":
        data = _pickle(obj, False, storages)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as handle:
            handle.writestr(f"{archive}/data.pkl", data)
            handle.writestr(f"{archive}/byteorder", "little")
            for key, storage in storages.items():
                handle.writestr(f"{archive}/data/{key}", storage.astype(storage.dtype.newbyteorder("<")).tobytes())
            handle.writestr(f"{archive}/version", "3\n")
        return path
    with open(path, "wb") as handle:
        for header in (MAGIC, PROTOCOL, {"protocol_version": PROTOCOL, "little_endian": True,
                                         "type_sizes": {"short": 2, "int": 4, "long": 4}}):
            pickle.dump(header, handle, protocol=2)
        handle.write(_pickle(obj, True, storages))
        keys = sorted(storages)
        pickle.dump(keys, handle, protocol=2)
        for key in keys:
            handle.write(struct.pack("<q", storages[key].size) + storages[key].tobytes())
    return path
