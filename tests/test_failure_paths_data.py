"""Preparation on real data and disks: mis-sized GTA5 pairs are skipped and reported (or kept by resizing the
label), a PNG with a bad CRC or zlib stream is refused by name with nothing written, a killed write's
temporary directories are removed by the next write, directories honour the umask, and a --data_dir that
is a file is one line."""

import os
import signal
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import REPO, child_env
from cycada_tf.data import png, schema, tfrecord
from cycada_tf.data.sources import cityscapes
from tools import prepare_data
H, W = 16, 32
IDS = np.array([7, 8, 11, 21, 23, 24, 26])  # Cityscapes label ids (GTA5 uses the same)


def save(path, array, palette=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(array.astype(np.uint8))
    if palette:  # GTA5's labels: palette PNGs whose indices are the label ids
        image = image.convert("P")
        image.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
        image.frombytes(array.astype(np.uint8).tobytes())
    image.save(path)


def write_gta5(raw_dir, label_sizes):
    """images/NNNNN.png (H x W) and labels/NNNNN.png of the given (height, width); returns {name: ids}."""
    rng = np.random.RandomState(0)
    labels = {}
    for i, (height, width) in enumerate(label_sizes, start=1):
        ids = rng.choice(IDS, size=(height, width))
        save(os.path.join(raw_dir, "images", f"{i:05d}.png"), rng.randint(0, 256, (H, W, 3)))
        save(os.path.join(raw_dir, "labels", f"{i:05d}.png"), ids, palette=True)
        labels[f"images/{i:05d}.png"] = ids
    return labels


def records(directory):
    out = {}
    for path in tfrecord.split_files(directory, "train"):
        for record in tf.data.TFRecordDataset(path):
            parsed = schema.parse(record)
            out[parsed[schema.KEY].numpy().decode()] = tf.io.decode_png(parsed[schema.LABEL_MAP]).numpy()[..., 0]
    return out


def test_gta5_mis_sized_pairs_are_skipped_reported_or_resized(tmp_path, capsys):
    raw_dir = str(tmp_path / "raw")
    labels = write_gta5(raw_dir, [(H, W), (H + 2, W), (H, W - 2), (H, W)])  # 00002, 00003 mis-sized
    data_dir = str(tmp_path / "data")
    # docs/data.md's command
    assert prepare_data.cli(["--dataset=gta5", f"--raw_dir={raw_dir}", f"--data_dir={data_dir}", "--width=1024",
                             "--verify"]) == 0
    out = capsys.readouterr().out
    assert "left out 2 pairs whose label is not the size of its image" in out, out
    assert "labels/00002.png: label is 32x18 but its image" in out and "labels/00003.png: label is 30x16" in out
    assert "--mismatched_labels=resize keeps them" in out
    assert "left out: 0 files without a partner, 2 pairs whose label is not the size of its image" in out
    manifest = tfrecord.read_manifest(os.path.join(data_dir, "gta5"))
    assert manifest["info"]["mismatched_count"] == 2 and len(manifest["info"]["mismatched"]) == 2
    assert sorted(records(os.path.join(data_dir, "gta5"))) == ["images/00001.png", "images/00004.png"]

    # opt in: kept, each label resized to its image by nearest neighbour (no blended ids)
    capsys.readouterr()
    assert prepare_data.cli(["--dataset=gta5", f"--raw_dir={raw_dir}", f"--data_dir={data_dir}", "--width=0",
                             "--mismatched_labels=resize"]) == 0
    out = capsys.readouterr().out
    assert "resized the labels of 2 pairs" in out and "up to date" not in out  # another conversion: rewritten
    got = records(os.path.join(data_dir, "gta5"))
    assert len(got) == 4
    for key in ("images/00002.png", "images/00003.png"):
        want = np.asarray(Image.fromarray(labels[key].astype(np.uint8)).resize((W, H), Image.NEAREST))
        np.testing.assert_array_equal(got[key], cityscapes.TRAIN_IDS[want])
    assert "2 such labels resized to their image" in out


def write_cityscapes(raw_dir):
    rng = np.random.RandomState(1)
    for split, city in (("train", "aachen"), ("val", "frankfurt")):
        stem = f"{city}_000000_000019"
        save(f"{raw_dir}/leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png", rng.randint(0, 256, (64, 128, 3)))
        save(f"{raw_dir}/gtFine/{split}/{city}/{stem}_gtFine_labelIds.png", rng.choice(IDS, size=(64, 128)))
    return f"{raw_dir}/gtFine/val/frankfurt/frankfurt_000000_000019_gtFine_labelIds.png"


def _idat(data):
    """(start, length) of the first IDAT chunk's body."""
    position = 8
    while True:
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        if kind == b"IDAT":
            return position + 8, length
        position += 12 + length


def flip_middle(path, recompute_crc=False):
    """Flip 8 bytes in the middle of a PNG's image data (and, if asked, fix the chunk's CRC after)."""
    data = bytearray(open(path, "rb").read())
    start, length = _idat(data)
    middle = start + length // 2
    data[middle:middle + 8] = bytes(b ^ 0xFF for b in data[middle:middle + 8])
    if recompute_crc:
        data[start + length:start + length + 4] = struct.pack(">I", zlib.crc32(bytes(data[start - 4:start + length])))
    open(path, "wb").write(bytes(data))


@pytest.mark.parametrize("recompute_crc, words", [(False, "CRC mismatch in its IDAT chunk"),
                                                  (True, "image data")])
def test_a_corrupt_png_is_refused_by_name_and_nothing_is_written(tmp_path, capsys, recompute_crc, words):
    raw_dir = str(tmp_path / "raw")
    label = write_cityscapes(raw_dir)
    flip_middle(label, recompute_crc)
    data_dir = tmp_path / "out" / "data"
    assert prepare_data.cli(["--dataset=cityscapes", f"--raw_dir={raw_dir}", f"--data_dir={data_dir}",
                             "--width=0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and label in err[0] and words in err[0], err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("mode", ["1", "L", "P", "LA", "RGB", "RGBA", "I;16"])
def test_png_check_accepts_intact_files_of_every_depth_and_colour_type(tmp_path, mode):
    rng = np.random.RandomState(2)
    path = str(tmp_path / "x.png")
    image = Image.fromarray(rng.randint(0, 256, (13, 7, 4)).astype(np.uint8), "RGBA").convert(
        mode if mode != "I;16" else "I")
    if mode == "I;16":
        image = Image.fromarray(rng.randint(0, 65536, (13, 7)).astype(np.uint16))
    image.save(path)
    png.check(open(path, "rb").read(), path)
    with pytest.raises(tfrecord.DataError, match="truncated PNG"):
        png.check(open(path, "rb").read()[:-20], path)


def _dead_pid():
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_stale_partial_directories_are_removed_by_the_next_write(tmp_path, capsys):
    import socket
    host = socket.gethostname()
    directory = str(tmp_path / "uci")
    dead = _dead_pid()
    stale = [tmp_path / f".uci.partial-{dead}@{host}-abc_12", tmp_path / f"uci.old-.uci.partial-{dead}@{host}-x9",
             tmp_path / ".uci.partial-k2j3h4"]  # the last from before writers were named
    kept = [tmp_path / f".uci.partial-{os.getpid()}@{host}-live1",  # a writer still running
            tmp_path / f".uci.partial-{dead}@another-host-zz1",  # another host's: cannot tell
            tmp_path / f".uci_m.partial-{dead}@{host}-abc"]  # another dataset's
    for path in stale + kept:
        path.mkdir()
    example = schema.make_example(np.zeros((4, 4, 1), np.uint8), 3)
    tfrecord.write_dataset(directory, {"train": [example]}, {"x": "1"})
    out = capsys.readouterr().out
    for path in stale:
        assert not path.exists() and f"removed {path}" in out
    assert all(path.exists() for path in kept) and out.count("removed") == len(stale)


WRITER = """
import sys, time
import numpy as np
from cycada_tf.data import schema, tfrecord
def examples():
    yield schema.make_example(np.zeros((4, 4, 1), np.uint8), 1)
    print("writing", flush=True)
    time.sleep(600)
tfrecord.write_dataset(sys.argv[1], {"train": examples()}, {"x": "1"})
"""


def test_a_killed_write_leaves_a_partial_directory_that_the_next_write_removes(tmp_path, capsys):
    directory = str(tmp_path / "data" / "uci")
    child = subprocess.Popen([sys.executable, "-c", WRITER, directory], cwd=REPO, stdout=subprocess.PIPE,
                             env=child_env(), text=True)
    assert child.stdout.readline().strip() == "writing"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=60)
    partial = [n for n in os.listdir(tmp_path / "data") if ".partial-" in n]
    assert len(partial) == 1 and not os.path.exists(directory)
    tfrecord.write_dataset(directory, {"train": [schema.make_example(np.zeros((4, 4, 1), np.uint8), 2)]},
                           {"x": "1"})
    assert os.listdir(tmp_path / "data") == ["uci"]
    assert f"removed {tmp_path / 'data' / partial[0]}" in capsys.readouterr().out


@pytest.mark.parametrize("umask, dir_mode, file_mode", [(0o022, 0o755, 0o644), (0o027, 0o750, 0o640)])
def test_dataset_directories_honour_the_umask(tmp_path, umask, dir_mode, file_mode):
    old = os.umask(umask)
    try:
        directory = str(tmp_path / "uci")
        tfrecord.write_dataset(directory, {"train": [schema.make_example(np.zeros((4, 4, 1), np.uint8), 1)]},
                               {"x": "1"})
    finally:
        os.umask(old)
    assert os.stat(directory).st_mode & 0o777 == dir_mode
    for name in os.listdir(directory):
        assert os.stat(os.path.join(directory, name)).st_mode & 0o777 == file_mode, name


def test_a_data_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    raw_dir = str(tmp_path / "raw")
    write_cityscapes(raw_dir)
    not_a_dir = tmp_path / "data"
    not_a_dir.write_text("")
    assert prepare_data.cli(["--dataset=cityscapes", f"--raw_dir={raw_dir}", f"--data_dir={not_a_dir}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"prepare_data: error: --data_dir={not_a_dir}: Not a directory; give a directory"]
