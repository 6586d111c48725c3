"""Downloads against a file server on 127.0.0.1: resume after a dropped connection, checksum refusal, mirror
fallback, no network, and the headline command fetching and preparing SVHN and MNIST on first use."""

import hashlib
import json
import os
import socket
import time

import numpy as np
import pytest

import local_http
import official_files
from conftest import child_env, run_experiment
from cycada_tf.data import download, public, registry, tfrecord

DATA = np.random.RandomState(0).bytes(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


def test_a_dropped_download_resumes_with_range_and_shows_progress(tmp_path):
    state = local_http.Files({"/f.bin": DATA})
    state.drop_after["/f.bin"] = 100_000
    lines = []
    with local_http.serve(state) as base:
        path = download.fetch("f.bin", [base + "/f.bin"], str(tmp_path), SHA, len(DATA), say=lines.append)
    assert open(path, "rb").read() == DATA
    assert state.requests == [("/f.bin", None), ("/f.bin", "bytes=100000-")]
    text = "\n".join(lines)
    assert "connection dropped at 100.0 kB" in text and "resuming at 100.0 kB" in text
    assert "300.0 kB of 300.0 kB (100%) at" in text and "/s" in text
    assert os.listdir(tmp_path) == ["f.bin"]  # the partial file became the file


def test_a_partial_file_left_by_a_killed_process_is_resumed(tmp_path):
    (tmp_path / ".f.bin.partial").write_bytes(DATA[:123_456])
    state = local_http.Files({"/f.bin": DATA})
    with local_http.serve(state) as base:
        path = download.fetch("f.bin", [base + "/f.bin"], str(tmp_path), SHA, say=lambda m: None)
    assert open(path, "rb").read() == DATA
    assert state.requests == [("/f.bin", "bytes=123456-")]


def test_a_checksum_mismatch_is_refused_and_nothing_stays(tmp_path):
    state = local_http.Files({"/f.bin": DATA[:-1] + b"x"})
    with local_http.serve(state) as base, pytest.raises(tfrecord.DataError) as error:
        download.fetch("f.bin", [base + "/f.bin"], str(tmp_path), SHA, say=lambda m: None)
    message = str(error.value)
    assert message.startswith("f.bin: checksum mismatch, refused") and SHA in message
    assert os.listdir(tmp_path) == []


def test_mirrors_are_tried_in_order(tmp_path):
    good, broken = local_http.Files({"/m2/f.bin": DATA}), local_http.Files({})
    with local_http.serve(broken) as first, local_http.serve(good) as second:
        urls = [local_http.closed_port_url() + "/f.bin", first + "/m1/f.bin", second + "/m2/f.bin"]
        lines = []
        path = download.fetch("f.bin", urls, str(tmp_path), SHA, say=lines.append)
    assert open(path, "rb").read() == DATA
    assert broken.requests == [("/m1/f.bin", None)] and good.requests == [("/m2/f.bin", None)]
    assert [line for line in lines if line.startswith("downloading")] == [f"downloading f.bin from {u}"
                                                                          for u in urls]


def test_checksums_match_the_ones_tensorflow_datasets_publishes():
    import tensorflow_datasets
    root = os.path.dirname(tensorflow_datasets.__file__)
    published = {}
    for path in ("url_checksums/mnist.txt", "datasets/svhn_cropped/checksums.tsv"):
        for line in open(os.path.join(root, path)):
            url, size, sha, name = line.split()
            published[name] = (sha, int(size))
    for remote in public.MNIST + public.SVHN:
        assert published[remote.name] == (remote.sha256, remote.size), remote.name


@pytest.fixture
def blackhole():
    """A port that accepts connections and never answers (a network that hangs, not one that refuses)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


@pytest.mark.parametrize("network", ["refused", "hanging"])
def test_no_network_gives_one_line_with_the_urls_within_10_s(tmp_path, monkeypatch, blackhole, network):
    mirror = local_http.closed_port_url() if network == "refused" else blackhole
    monkeypatch.setenv(public.MIRRORS_ENV, mirror)
    start = time.monotonic()
    with pytest.raises(tfrecord.DataError) as error:
        registry.ensure("mnist", str(tmp_path), download=True)
    assert time.monotonic() - start < 10
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"dataset 'mnist' is not prepared in {tmp_path}/mnist.")
    assert "Download failed" in message and f"Place by hand in {tmp_path}/raw" in message
    for remote in public.MNIST:
        assert f"{remote.name} from {mirror}/mnist/{remote.name}" in message
    assert not os.path.exists(tmp_path / "mnist")


def test_nodownload_names_the_official_files_and_urls(tmp_path, monkeypatch):
    monkeypatch.delenv(public.MIRRORS_ENV, raising=False)
    with pytest.raises(tfrecord.DataError) as error:
        registry.ensure("svhn", str(tmp_path), download=False)
    message = str(error.value)
    assert "(--nodownload)" in message and "python tools/prepare_data.py --dataset=svhn" in message
    assert "train_32x32.mat from http://ufldl.stanford.edu/housenumbers/train_32x32.mat" in message
    assert "test_32x32.mat from http://ufldl.stanford.edu/housenumbers/test_32x32.mat" in message


def test_files_placed_by_hand_are_prepared_without_network(tmp_path, monkeypatch):
    files = official_files.usps_files()
    official_files.write(str(tmp_path / "raw"), files)
    monkeypatch.setenv(public.MIRRORS_ENV, local_http.closed_port_url())
    directory = registry.ensure("usps", str(tmp_path), download=False)
    assert tfrecord.read_manifest(directory)["splits"]["train"]["count"] == 30


def test_a_wrong_checksum_file_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "sums"
    path.write_text("not-a-checksum  zip.train.gz\n")
    monkeypatch.setenv(public.CHECKSUMS_ENV, str(path))
    with pytest.raises(tfrecord.DataError, match=f"{path} \\({public.CHECKSUMS_ENV}\\)"):
        public.remotes("usps")


@pytest.mark.slow
def test_the_headline_command_downloads_prepares_and_starts_the_source_stage(tmp_path):
    svhn, mnist = official_files.svhn_files(), official_files.mnist_files()
    state = local_http.Files({f"/svhn/{k}": v for k, v in svhn.items()})
    state.files.update({f"/mnist/{k}": v for k, v in mnist.items()})
    state.drop_after["/svhn/train_32x32.mat"] = 5000
    (tmp_path / "sums").write_text(official_files.sha256sums({**svhn, **mnist}))
    data_dir, run_dir = tmp_path / "data", tmp_path / "run"
    with local_http.serve(state) as base:
        env = child_env(CYCADA_DATA_MIRRORS=base, CYCADA_DATA_CHECKSUMS=str(tmp_path / "sums"))
        result = run_experiment("digits", "--source=svhn", "--target=mnist", f"--data_dir={data_dir}",
                                f"--run_dir={run_dir}", "--stages=source", "--source_epochs=1",
                                "--source_batch_size=16", "--verbose=0", "--summary_every_epochs=0", check=False,
                                env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resuming at 5.0 kB" in result.stderr  # the dropped SVHN transfer went on where it stopped
    for name in ("svhn", "mnist"):
        manifest = tfrecord.read_manifest(str(data_dir / name))
        assert manifest["splits"]["train"]["count"] == 60 and manifest["splits"]["test"]["count"] == 20
    assert sorted(os.listdir(data_dir / "raw")) == sorted({**svhn, **mnist})
    assert "stage 'source' starting" in result.stderr and "stage 'source' done" in result.stderr
    assert "source_test_accuracy" in json.load(open(run_dir / "seed_0" / "source" / "done.json"))
