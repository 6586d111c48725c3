"""MNIST-M: its distribution layout, and the build route from MNIST and BSDS500 (--build_mnist_m), on tiny
files; both prepared by tools/prepare_data.py, the build also on first use through the downloader."""

import os

import numpy as np
import pytest
import tensorflow as tf

import local_http
import official_files
from cycada_tf.data import public, registry, schema, tfrecord
from tools import prepare_data


def records(directory, split):
    out = []
    for serialized in tf.data.TFRecordDataset(tfrecord.split_files(directory, split)):
        example = schema.parse(serialized)
        out.append((tf.io.decode_png(example[schema.IMAGE]).numpy(), int(example[schema.LABEL]),
                    example[schema.KEY].numpy().decode()))
    return out


def test_distribution_layout_gives_its_pngs_and_labels(tmp_path):
    labels = official_files.write_mnist_m_layout(str(tmp_path / "raw" / "mnist_m"))
    data = str(tmp_path / "data")
    assert prepare_data.main(["--dataset=mnist_m", f"--raw_dir={tmp_path / 'raw'}", f"--data_dir={data}"]) == 0
    directory = registry.dataset_dir(data, "mnist_m")
    for split in ("train", "test"):
        stored = records(directory, split)
        assert [label for _, label, _ in stored] == list(labels[split])
        image, _, key = stored[3]
        assert key == f"mnist_m_{split}/00000003.png" and image.shape == (28, 28, 3)
        png = os.path.join(tmp_path, "raw", "mnist_m", f"mnist_m_{split}", "00000003.png")
        assert np.array_equal(image, np.asarray(tf.io.decode_png(open(png, "rb").read())))


def test_a_label_line_naming_a_missing_image_stops_with_the_file(tmp_path, capsys):
    root = tmp_path / "raw"
    official_files.write_mnist_m_layout(str(root))
    os.remove(root / "mnist_m_test" / "00000004.png")
    status = prepare_data.cli(["--dataset=mnist_m", f"--raw_dir={root}", f"--data_dir={tmp_path / 'data'}"])
    assert status != 0 and not os.path.exists(tmp_path / "data")
    err = capsys.readouterr().err
    assert f"{root}/mnist_m_test/00000004.png: missing, listed on line 5" in err and err.count("\n") == 1


def _expected_blend(digit, colour):
    """|photo - digit| per channel for a flat photo of `colour` (what Ganin & Lempitsky's recipe gives)."""
    return np.round(np.abs(np.array(colour, np.float32) / 255.0
                           - digit[..., None].astype(np.float32) / 255.0) * 255.0).astype(np.uint8)


@pytest.mark.parametrize("bsds", ["archive", "extracted"])
def test_build_route_blends_each_mnist_digit_with_a_bsds500_training_photo(tmp_path, bsds):
    raw = tmp_path / "raw"
    mnist = official_files.mnist_files({"train": 20, "test": 10})
    official_files.write(str(raw), mnist)
    archive = official_files.bsds_tgz()
    official_files.write(str(raw), {"BSR_bsds500.tgz": archive})
    if bsds == "extracted":
        import tarfile
        with tarfile.open(raw / "BSR_bsds500.tgz") as handle:
            handle.extractall(tmp_path / "bsds")
        os.remove(raw / "BSR_bsds500.tgz")
    data = str(tmp_path / "data")
    args = ["--dataset=mnist_m", "--build_mnist_m", f"--raw_dir={raw}", f"--data_dir={data}"]
    if bsds == "extracted":
        args.append(f"--bsds500={tmp_path / 'bsds' / 'BSR'}")
    assert prepare_data.main(args) == 0
    digits = official_files.digits(20, 28, 0)
    stored = records(registry.dataset_dir(data, "mnist_m"), "train")
    assert [label for _, label, _ in stored] == list(digits[1])
    for (image, _, _), digit in zip(stored, digits[0]):
        assert np.abs(image.astype(int) - _expected_blend(digit, official_files.BSDS_COLOURS["train"])).max() <= 1


def test_build_without_bsds500_names_what_is_missing(tmp_path, capsys):
    official_files.write(str(tmp_path), official_files.mnist_files())
    status = prepare_data.cli(["--dataset=mnist_m", "--build_mnist_m", f"--raw_dir={tmp_path}",
                               f"--data_dir={tmp_path / 'data'}"])
    assert status != 0
    assert f"{tmp_path}/BSR_bsds500.tgz: missing. --build_mnist_m needs BSDS500" in capsys.readouterr().err


def test_first_use_downloads_mnist_and_bsds500_and_builds_it(tmp_path, monkeypatch):
    files = {**official_files.mnist_files(), "BSR_bsds500.tgz": official_files.bsds_tgz()}
    state = local_http.Files({f"/mnist_m/{name}": data for name, data in files.items()})
    (tmp_path / "sums").write_text(official_files.sha256sums(files))
    monkeypatch.setenv(public.CHECKSUMS_ENV, str(tmp_path / "sums"))
    with local_http.serve(state) as base:
        monkeypatch.setenv(public.MIRRORS_ENV, base)
        directory = registry.ensure("mnist_m", str(tmp_path / "data"), download=True)
    manifest = tfrecord.read_manifest(directory)
    assert manifest["splits"]["train"]["count"] == 60 and manifest["inputs"]["converter"] == "mnist_m-v1-built"
    assert sorted(os.listdir(tmp_path / "data" / "raw")) == sorted(files)
