"""No file dictates an allocation larger than itself: a header's count (a PyTorch tensor's extent, a pickle's
length, an IDX count, a PNG's size, a .mat element, a TFRecord length) that its file cannot hold is refused in
one error naming the file, before anything is allocated from it; a compressed stream is never inflated past
what its header says (a few bytes of deflate can inflate to gigabytes)."""

import gzip
import os
import pickle
import struct
import tracemalloc
import zlib

import numpy as np
import pytest
import scipy.io

import torch_files
from conftest import REPO
from cycada_tf.data import png, tfrecord
from cycada_tf.data.sources import mnist, svhn
from cycada_tf.data.tfrecord import DataError
from cycada_tf.models import torch_checkpoint
from cycada_tf.models.torch_checkpoint import CheckpointError

BIG = 200 << 20  # bytes of zeros a bomb inflates to: far more than any check here may allocate
ALLOWED = 20 << 20


def peak_bytes(read):
    """The peak of Python allocations while `read()` runs (it must raise DataError or CheckpointError)."""
    tracemalloc.start()
    try:
        with pytest.raises((DataError, CheckpointError)) as caught:
            read()
        return tracemalloc.get_traced_memory()[1], str(caught.value)
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_a_stride_0_tensor_larger_than_its_storage_is_refused(tmp_path, layout):
    path = str(tmp_path / "hostile.pth")
    tensor = torch_files.Tensor(np.zeros(1, "float32"), "0", size=(100000, 100000, 10), stride=(0, 0, 0))
    torch_files.save({"weight": tensor}, path, layout=layout)
    assert os.path.getsize(path) < 2000
    peak, message = peak_bytes(lambda: torch_checkpoint.load_state_dict(path))
    assert peak < ALLOWED
    assert message.startswith(f"{path}: weight of shape (100000, 100000, 10) has 100000000000 elements, its storage "
                              "holds 1: refused"), message


def test_a_pickle_length_past_the_end_of_the_file_is_refused(tmp_path):
    path = str(tmp_path / "short.pth")
    with open(path, "wb") as handle:
        pickle.dump(torch_files.MAGIC, handle, protocol=2)
        handle.write(b"\x80\x04\x8e" + struct.pack("<Q", 1 << 40) + b"abc.")  # BINBYTES8 of 1 TiB, 3 bytes there
    peak, message = peak_bytes(lambda: torch_checkpoint.load_state_dict(path))
    assert peak < ALLOWED and message.startswith(f"{path}: not a readable PyTorch checkpoint"), message


def test_a_legacy_storage_longer_than_the_file_is_refused(tmp_path):
    path = str(tmp_path / "legacy.pth")
    torch_files.save({"w": np.zeros(4, "float32")}, path, layout="legacy")
    data = open(path, "rb").read()
    count = struct.pack("<q", 4)
    at = data.rindex(count)  # the storage's element count, just before its bytes
    open(path, "wb").write(data[:at] + struct.pack("<q", 1 << 40) + data[at + 8:])
    peak, message = peak_bytes(lambda: torch_checkpoint.load_state_dict(path))
    assert peak < ALLOWED and message == f"{path}: storage 0 is truncated (it says {4 << 40} bytes, 16 are left)"


def test_a_gzipped_idx_file_is_inflated_no_further_than_its_count(tmp_path):
    path = str(tmp_path / "t10k-images-idx3-ubyte.gz")
    with gzip.open(path, "wb", compresslevel=1) as handle:  # one image, then 200 MB of zeros
        handle.write(struct.pack(">IIII", mnist.IMAGE_MAGIC, 1, 28, 28) + bytes(784))
        for _ in range(BIG // (1 << 20)):
            handle.write(bytes(1 << 20))
    peak, message = peak_bytes(lambda: mnist.read_idx(path, mnist.IMAGE_MAGIC, (28, 28)))
    assert peak < ALLOWED and "has trailing bytes" in message


def test_an_idx_count_larger_than_the_file_is_refused(tmp_path):
    path = str(tmp_path / "t10k-images-idx3-ubyte.gz")
    with gzip.open(path, "wb") as handle:
        handle.write(struct.pack(">IIII", mnist.IMAGE_MAGIC, 4000000000, 28, 28) + bytes(784))
    peak, message = peak_bytes(lambda: mnist.read_idx(path, mnist.IMAGE_MAGIC, (28, 28)))
    assert peak < ALLOWED
    assert message.startswith(f"{path}: truncated: the header says 4000000000 items (3136000000000 bytes), more "
                              f"than a {os.path.getsize(path)}-byte gzip file can hold"), message


def _png(width, height, pixels):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return png.SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def test_a_png_is_inflated_no_further_than_its_header_says():
    bomb = zlib.compressobj(1)
    data = b"".join(bomb.compress(bytes(1 << 20)) for _ in range(BIG // (1 << 20))) + bomb.flush()
    peak, message = peak_bytes(lambda: png.check(_png(10, 10, data), "bomb.png"))
    assert peak < ALLOWED and message.startswith("bomb.png: corrupt PNG (its image data inflates to 111 bytes, the "
                                                 "stream unfinished"), message


def test_a_png_header_larger_than_its_data_can_hold_is_refused():
    peak, message = peak_bytes(lambda: png.check(_png(100000, 100000, zlib.compress(bytes(100))), "huge.png"))
    assert peak < ALLOWED and message.startswith("huge.png: corrupt PNG (its header says 100000x100000, "), message


def _mat(path, compress=False):
    x = np.random.RandomState(0).randint(0, 256, (32, 32, 3, 4)).astype(np.uint8)
    scipy.io.savemat(path, {"y": np.ones((4, 1), np.uint8), "X": x}, do_compression=compress)


def test_a_mat_element_or_part_past_its_end_is_refused(tmp_path):
    path = str(tmp_path / "train_32x32.mat")
    _mat(path)
    original = open(path, "rb").read()
    values = original.rindex(struct.pack("<II", 2, 32 * 32 * 3 * 4))  # X's values: miUINT8, 12288 bytes
    top = original.rindex(struct.pack("<I", svhn.MI_MATRIX), 0, values)  # X's own element, before its parts
    count = struct.unpack("<I", original[top + 4:top + 8])[0]
    for at, says, refusal in (
            (values, 0xFFFFFFF0, f"a part of the variable at byte {top} says 4294967280 bytes, more than the "
                                 f"variable's {count}"),
            (top, 0xFFFFFFF0, f"unreadable .mat file, truncated (its element at byte {top} says 4294967280 "
                              f"bytes, past the end of the {len(original)}-byte file)")):
        data = bytearray(original)
        data[at + 4:at + 8] = struct.pack("<I", says)
        open(path, "wb").write(bytes(data))
        with pytest.raises(DataError) as caught:
            svhn.read_labels(path)  # before scipy allocates what the tag says
        assert str(caught.value).startswith(f"{path}: {refusal}"), str(caught.value)


def test_a_compressed_mat_variable_larger_than_its_stream_is_refused(tmp_path):
    path = str(tmp_path / "test_32x32.mat")
    _mat(path, compress=True)
    data = open(path, "rb").read()
    position, end, found = svhn.MAT_HEADER, len(data), []
    while position < end:  # the compressed elements: inflate each, make its matrix say 1 TiB, deflate again
        kind, count = struct.unpack("<II", data[position:position + 8])
        inner = bytearray(zlib.decompress(data[position + 8:position + 8 + count]))
        inner[4:8] = struct.pack("<I", 0xFFFFFFF0)
        packed = zlib.compress(bytes(inner))
        found.append(struct.pack("<II", kind, len(packed)) + packed)
        position += 8 + count
    open(path, "wb").write(data[:svhn.MAT_HEADER] + b"".join(found))
    with pytest.raises(DataError, match=r"the variable at byte 128 says 4294967280 bytes, more than its file can "
                                        r"hold"):
        svhn.read_labels(path)


def test_a_tfrecord_length_past_the_end_of_its_shard_is_refused(tmp_path):
    directory = str(tmp_path / "uci")
    os.makedirs(directory)
    shard = os.path.join(directory, "train-00000-of-00001.tfrecord")
    record = struct.pack("<Q", 5) + bytes(4) + b"hello" + bytes(4)
    open(shard, "wb").write(record + struct.pack("<Q", 1 << 38) + bytes(4) + bytes(100))  # TF would ask 256 GiB
    with open(os.path.join(directory, tfrecord.MANIFEST), "w") as handle:
        handle.write('{"splits": {"train": {"count": 2, "files": ["train-00000-of-00001.tfrecord"]}}}')
    with pytest.raises(DataError, match=rf"^{shard}: corrupt TFRecord shard \(the record at byte 21 says "
                                        rf"{1 << 38} bytes, past the end of the file at byte 133\)\. Delete "):
        tfrecord.split_files(directory, "train")
    open(shard, "wb").write(record[:-2])
    with pytest.raises(DataError, match=r"the record at byte 0 says 5 bytes, past the end of the file at byte 19"):
        tfrecord.split_files(directory, "train")


def test_convert_drn_is_quiet_like_the_mains(tmp_path):
    """Its stderr is the project's one line: TensorFlow's start-up lines are held back
    (cycada_tf/train/quiet_tensorflow.py)."""
    import subprocess
    import sys
    garbage = tmp_path / "drn_c_26.pth"
    garbage.write_bytes(b"not a checkpoint")
    done = subprocess.run([sys.executable, "tools/convert_drn.py", str(garbage), f"--output={tmp_path}/o.weights.h5"],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    assert done.returncode == 2 and done.stderr.splitlines() == [
        f"error: {garbage}: not a PyTorch checkpoint (neither torch.save's zip nor its older layout)"], done.stderr
