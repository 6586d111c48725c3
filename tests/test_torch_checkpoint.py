"""models/torch_checkpoint.py: PyTorch checkpoints read without PyTorch. Both layouts torch.save writes (written
here by tests/torch_files.py), views into shared storages, the dtypes of a state dict, a training script's
checkpoint dict, and files that are none (each error names the file; a pickle that would run code is refused
without running it)."""

import collections
import io
import os
import pickle
import tarfile
import zipfile

import numpy as np
import pytest

import torch_files
from cycada_tf.models import torch_checkpoint
from cycada_tf.models.torch_checkpoint import CheckpointError

LAYOUTS = ["zip", "legacy"]


def _tensors():
    rng = np.random.default_rng(0)
    shared = rng.normal(size=24).astype("float32")
    return collections.OrderedDict([
        ("conv1.weight", rng.normal(size=(4, 3, 7, 7)).astype("float32")),
        ("bn1.running_var", rng.uniform(0.5, 2, 4).astype("float32")),
        ("bn1.num_batches_tracked", np.array(1234, "int64")),       # 0-d
        ("half", rng.normal(size=5).astype("float16")),
        ("mask", np.array([True, False, True])),
        ("bytes", np.arange(6, dtype="uint8").reshape(2, 3)),
        # Two views of one storage: rows 1-2 of a 4x6 matrix (an offset), and its transpose (strides 1, 6).
        ("rows", torch_files.Tensor(shared.reshape(4, 6)[1:3], "shared", offset=6, size=(2, 6), stride=(6, 1),
                                    storage=shared)),
        ("transposed", torch_files.Tensor(shared.reshape(4, 6).T, "shared", size=(6, 4), stride=(1, 6),
                                          storage=shared)),
        # PyTorch 0.3 and before rebuilt tensors with _rebuild_tensor (no requires_grad, no hooks).
        ("old", torch_files.Tensor(rng.normal(size=(2, 2)).astype("float32"), "old", rebuild="_rebuild_tensor")),
    ])


def _expected(value):
    return value.array if isinstance(value, torch_files.Tensor) else value


@pytest.mark.parametrize("layout", LAYOUTS)
def test_both_layouts_give_back_every_tensor_in_order(tmp_path, layout):
    tensors = _tensors()
    state = torch_checkpoint.load_state_dict(torch_files.save(tensors, str(tmp_path / "model.pth"), layout))
    assert list(state) == list(tensors)
    for name, value in tensors.items():
        expected = _expected(value)
        assert state[name].dtype == expected.dtype and state[name].shape == expected.shape, name
        np.testing.assert_array_equal(state[name], expected, err_msg=name)
    state["rows"][0, 0] = 99.0  # copies, not views of one buffer
    assert state["transposed"][0, 1] != 99.0


def test_a_training_checkpoint_gives_its_state_dict_without_data_parallel_prefixes(tmp_path):
    weight = np.arange(6, dtype="float32").reshape(2, 3)
    path = torch_files.save({"module.fc.weight": weight}, str(tmp_path / "checkpoint.pth"), archive="checkpoint",
                            checkpoint={"epoch": 90, "arch": "drn_c_26", "best_prec1": 75.1})
    state = torch_checkpoint.load_state_dict(path)
    assert list(state) == ["fc.weight"]
    np.testing.assert_array_equal(state["fc.weight"], weight)


def test_a_pickle_that_would_run_code_is_refused_unrun(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    path = str(tmp_path / "evil.pth")
    with zipfile.ZipFile(path, "w") as handle:
        handle.writestr("archive/data.pkl", pickle.dumps({"w": Payload()}, protocol=2))
    with pytest.raises(CheckpointError, match=f"{path}: holds a (posix|os).system, not only tensors: refused"):
        torch_checkpoint.load_state_dict(path)
    assert not marker.exists()


def test_files_that_are_no_checkpoint_raise_one_error_naming_them(tmp_path):
    missing = str(tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match=f"{missing}: no such file"):
        torch_checkpoint.load_state_dict(missing)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match=f"{garbage}: not a PyTorch checkpoint"):
        torch_checkpoint.load_state_dict(str(garbage))
    no_pickle = str(tmp_path / "other.zip")
    with zipfile.ZipFile(no_pickle, "w") as handle:
        handle.writestr("readme.txt", "hello")
    with pytest.raises(CheckpointError, match=f"{no_pickle}: a zip file but no PyTorch checkpoint"):
        torch_checkpoint.load_state_dict(no_pickle)
    tensors = {"w": np.ones((64, 64), "float32")}
    legacy = torch_files.save(tensors, str(tmp_path / "legacy.pth"), "legacy")
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(open(legacy, "rb").read()[:-100])
    with pytest.raises(CheckpointError, match=f"{truncated}: storage 0 is truncated"):
        torch_checkpoint.load_state_dict(str(truncated))
    zipped = torch_files.save(tensors, str(tmp_path / "zipped.pth"))
    lost = str(tmp_path / "lost_storage.pth")
    with zipfile.ZipFile(zipped) as source, zipfile.ZipFile(lost, "w") as target:
        for name in source.namelist():
            if name != "archive/data/0":
                target.writestr(name, source.read(name))
    with pytest.raises(CheckpointError, match=f"{lost}: storage archive/data/0 is missing"):
        torch_checkpoint.load_state_dict(lost)
    old = str(tmp_path / "torch_0.1.pth")
    with tarfile.open(old, "w") as handle:
        info = tarfile.TarInfo("pickle")
        info.size = 4
        handle.addfile(info, io.BytesIO(b"\x80\x02N."))
    with pytest.raises(CheckpointError, match=f"{old}: the tar layout of PyTorch 0.1 is not read"):
        torch_checkpoint.load_state_dict(old)
    not_tensors = str(tmp_path / "numbers.pth")
    with zipfile.ZipFile(not_tensors, "w") as handle:
        handle.writestr("archive/data.pkl", pickle.dumps({"lr": 0.1}, protocol=2))
    with pytest.raises(CheckpointError, match=f"{not_tensors}: lr is a float, not a tensor"):
        torch_checkpoint.load_state_dict(not_tensors)
