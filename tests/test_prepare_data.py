"""tools/prepare_data.py: no-op re-runs, shards checked by --verify, clean failures, runnable as a script."""

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO
from cycada_tf.data import registry, tfrecord
from tools import prepare_data


def write_usps(raw_dir, count=7, seed=0):
    """zip.train.gz / zip.test.gz with `count` random digits each (labels 0..count-1 mod 10)."""
    os.makedirs(raw_dir, exist_ok=True)
    rng = np.random.RandomState(seed)
    for split in ("train", "test"):
        with gzip.open(os.path.join(raw_dir, f"zip.{split}.gz"), "wt") as handle:
            for i in range(count):
                values = rng.randint(0, 256, size=256) / 127.5 - 1.0
                handle.write(f"{i % 10:.4f} " + " ".join(f"{v:.4f}" for v in values) + "\n")


def _args(raw_dir, data_dir, *extra):
    return ["--dataset=usps", f"--raw_dir={raw_dir}", f"--data_dir={data_dir}", *extra]


def test_rerun_on_the_same_files_is_a_no_op(tmp_path, capsys):
    raw_dir, data_dir = str(tmp_path / "raw"), str(tmp_path / "data")
    write_usps(raw_dir)
    prepare_data.main(_args(raw_dir, data_dir))
    manifest_path = os.path.join(data_dir, "usps", tfrecord.MANIFEST)
    manifest = tfrecord.read_manifest(os.path.dirname(manifest_path))
    assert set(manifest["inputs"]) == {"zip.train.gz", "zip.test.gz", "converter"}
    assert manifest["inputs"]["zip.train.gz"] == tfrecord.sha256_of_file(f"{raw_dir}/zip.train.gz")
    assert manifest["splits"]["train"]["count"] == 7
    assert manifest["info"]["image_size"] == registry.get("usps").image_size == 16
    mtime = os.stat(manifest_path).st_mtime_ns
    capsys.readouterr()

    prepare_data.main(_args(raw_dir, data_dir))
    out = capsys.readouterr().out
    assert "up to date" in out and "train: 7 records" in out
    assert os.stat(manifest_path).st_mtime_ns == mtime

    write_usps(raw_dir, count=8, seed=1)  # new files: written again
    prepare_data.main(_args(raw_dir, data_dir))
    assert tfrecord.read_manifest(os.path.dirname(manifest_path))["splits"]["train"]["count"] == 8


def test_verify_names_a_truncated_shard(tmp_path, capsys):
    raw_dir, data_dir = str(tmp_path / "raw"), str(tmp_path / "data")
    write_usps(raw_dir)
    prepare_data.main(_args(raw_dir, data_dir, "--records_per_shard=3", "--verify"))
    out = capsys.readouterr().out
    assert "train: 7 records in 3 shards" in out and "verified: test 7, train 7" in out
    shard = os.path.join(data_dir, "usps", "train-00001-of-00003.tfrecord")
    with open(shard, "rb") as handle:
        data = handle.read()
    with open(shard, "wb") as handle:
        handle.write(data[:len(data) - 20])
    with pytest.raises(tfrecord.DataError, match="train-00001-of-00003.tfrecord"):
        prepare_data.main(["--dataset=usps", f"--data_dir={data_dir}", "--verify"])
    assert prepare_data.cli(["--dataset=usps", f"--data_dir={data_dir}", "--verify"]) == 2
    assert "train-00001-of-00003.tfrecord" in capsys.readouterr().err


def test_verify_of_an_unprepared_dataset_gives_the_command(tmp_path):
    with pytest.raises(tfrecord.DataError, match="tools/prepare_data.py --dataset=mnist"):
        prepare_data.main(["--dataset=mnist", f"--data_dir={tmp_path}", "--verify"])
    with pytest.raises(tfrecord.DataError, match="tools/prepare_data.py --dataset=svhn"):
        registry.ensure("svhn", str(tmp_path))


def test_failure_leaves_no_directories_and_keeps_a_good_copy(tmp_path):
    raw_dir = str(tmp_path / "raw")
    write_usps(raw_dir)
    with gzip.open(os.path.join(raw_dir, "zip.test.gz"), "at") as handle:
        handle.write("1.0 0.5\n")
    nested = tmp_path / "a" / "b" / "data"
    with pytest.raises(tfrecord.DataError, match="zip.test.gz"):
        prepare_data.main(_args(raw_dir, str(nested)))
    assert not (tmp_path / "a").exists()

    data_dir = str(tmp_path / "data")
    write_usps(raw_dir)
    prepare_data.main(_args(raw_dir, data_dir))
    os.remove(os.path.join(raw_dir, "zip.train.gz"))
    with open(os.path.join(raw_dir, "zip.train"), "w") as handle:  # uncompressed, and broken
        handle.write("3.0 " + "9 " * 256 + "\n")
    with pytest.raises(tfrecord.DataError, match="zip.train"):
        prepare_data.main(_args(raw_dir, data_dir))
    assert tfrecord.verify(os.path.join(data_dir, "usps")) == {"train": 7, "test": 7}
    assert sorted(os.listdir(data_dir)) == ["usps"]


def test_runs_as_a_script_and_as_a_module(tmp_path):
    raw_dir, data_dir = str(tmp_path / "raw"), str(tmp_path / "data")
    write_usps(raw_dir)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, os.path.join(REPO, "tools", "prepare_data.py"),
                           *_args(raw_dir, data_dir)], cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "test: 7 records" in done.stdout
    failed = subprocess.run([sys.executable, "-m", "tools.prepare_data", "--dataset=mnist",
                             f"--raw_dir={raw_dir}", f"--data_dir={data_dir}"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode == 2
    assert "prepare_data: error:" in failed.stderr and "train-images-idx3-ubyte" in failed.stderr
    assert "Traceback" not in failed.stderr
