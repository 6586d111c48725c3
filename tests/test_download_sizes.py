"""A mirror that serves a file of another size than the published one: named as short (or longer) in one line,
its bytes not kept and never resumed from, the next mirror tried (against a file server on 127.0.0.1)."""

import hashlib
import os

import numpy as np
import pytest

import local_http
from cycada_tf.data import download, public

DATA = np.random.RandomState(1).bytes(300_000)
SHA = hashlib.sha256(DATA).hexdigest()


def test_a_short_file_is_named_and_the_next_mirror_gives_the_file(tmp_path):
    short, good = local_http.Files({"/f.bin": DATA[:200_000]}), local_http.Files({"/f.bin": DATA})
    lines = []
    with local_http.serve(short) as first, local_http.serve(good) as second:
        path = download.fetch("f.bin", [first + "/f.bin", second + "/f.bin"], str(tmp_path), SHA, len(DATA),
                              say=lines.append)
        assert open(path, "rb").read() == DATA and os.listdir(tmp_path) == ["f.bin"]
        assert short.requests == [("/f.bin", None)]  # asked once: not "the connection kept dropping"
        assert good.requests == [("/f.bin", None)]  # from byte 0: nothing of the short file resumed from
        assert f"  f.bin: refused: {first}/f.bin serves a short file (200000 bytes, the published size is " \
               f"300000)" in lines


def test_a_short_file_alone_is_one_error_and_nothing_is_kept(tmp_path):
    short = local_http.Files({"/f.bin": DATA[:200_000]})
    with local_http.serve(short) as base, pytest.raises(download.Unreachable) as caught:
        download.fetch("f.bin", [base + "/f.bin"], str(tmp_path), SHA, len(DATA), say=lambda _: None)
    assert str(caught.value) == (f"f.bin: could not be downloaded ({base}/f.bin: serves a short file (200000 "
                                 f"bytes, the published size is 300000); not kept)")
    assert os.listdir(tmp_path) == []


def test_a_partial_file_past_a_short_mirrors_end_is_not_resumed(tmp_path):
    (tmp_path / ".f.bin.partial").write_bytes(DATA[:250_000])  # left by a killed download
    short = local_http.Files({"/f.bin": DATA[:200_000]})
    with local_http.serve(short) as base, pytest.raises(download.Unreachable, match="serves a short file "
                                                                                  "\\(200000 bytes"):
        download.fetch("f.bin", [base + "/f.bin"], str(tmp_path), SHA, len(DATA), say=lambda _: None)
    assert os.listdir(tmp_path) == []


def test_bsds500_has_its_published_size():
    """tensorpack's BSDS500 loader publishes the archive's size (DATA_SIZE); a short download is caught by it."""
    assert public.BSDS500.size == 70763455
