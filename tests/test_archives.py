"""Segmentation datasets prepared from their archives as downloaded (.zip), and the pages they come from."""

import io
import os
import zipfile

import numpy as np
import pytest

import official_files
from cycada_tf.data import registry, tfrecord
from tools import prepare_data


def gta5_zips(raw_dir, count=3):
    """01_images.zip (images/NNNNN.png) and 01_labels.zip (labels/NNNNN.png, Cityscapes ids 7 road, 26 car)."""
    rng = np.random.RandomState(0)
    os.makedirs(raw_dir, exist_ok=True)
    with zipfile.ZipFile(os.path.join(raw_dir, "01_images.zip"), "w") as images, \
            zipfile.ZipFile(os.path.join(raw_dir, "01_labels.zip"), "w") as labels:
        for i in range(1, count + 1):
            images.writestr(f"images/{i:05d}.png",
                            official_files.png_bytes(rng.randint(0, 256, (6, 10, 3)).astype(np.uint8)))
            labels.writestr(f"labels/{i:05d}.png",
                            official_files.png_bytes(rng.choice([7, 26], (6, 10)).astype(np.uint8)))


def test_gta5_is_prepared_from_its_zip_archives_extracted_once(tmp_path, capsys):
    gta5_zips(str(tmp_path / "downloads"))
    args = ["--dataset=gta5", f"--raw_dir={tmp_path / 'downloads'}", f"--data_dir={tmp_path / 'data'}", "--width=0"]
    assert prepare_data.main(args) == 0
    manifest = tfrecord.read_manifest(registry.dataset_dir(str(tmp_path / "data"), "gta5"))
    assert manifest["splits"]["train"]["count"] == 3
    assert "extracting" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path / "downloads")) == ["01_images.zip", "01_labels.zip"]  # left as they were
    assert prepare_data.main(args) == 0
    assert "extracted earlier" in capsys.readouterr().out


def test_a_7z_archive_is_refused_with_the_command_that_extracts_it(tmp_path, capsys):
    os.makedirs(tmp_path / "raw")
    (tmp_path / "raw" / "leftImg8bit.7z").write_bytes(b"7z\xbc\xaf\x27\x1c")
    status = prepare_data.cli(["--dataset=cityscapes", f"--raw_dir={tmp_path / 'raw'}",
                               f"--data_dir={tmp_path / 'data'}"])
    err = capsys.readouterr().err
    assert status != 0 and f"{tmp_path}/raw/leftImg8bit.7z: no reader for .7z" in err and "7z x" in err


def test_a_zip_member_outside_the_target_is_refused(tmp_path, capsys):
    os.makedirs(tmp_path / "raw")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../escape.png", b"x")
    (tmp_path / "raw" / "evil.zip").write_bytes(buffer.getvalue())
    status = prepare_data.cli(["--dataset=gta5", f"--raw_dir={tmp_path / 'raw'}", f"--data_dir={tmp_path / 'data'}"])
    assert status != 0 and "would be written outside" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "data" / "raw" / "escape.png")


@pytest.mark.parametrize("name, page", [("cityscapes", "gtFine_trainvaltest.zip"), ("gta5", "01_labels.zip"),
                                        ("synthia_fall", "synthia-dataset.net")])
def test_an_unprepared_segmentation_dataset_names_its_page_and_archives(tmp_path, name, page):
    with pytest.raises(tfrecord.DataError) as error:
        registry.ensure(name, str(tmp_path), download=True)
    assert page in str(error.value) and "\n" not in str(error.value)


def test_a_symlinked_directory_in_a_zip_is_named_as_a_link_not_as_a_truncated_zip(tmp_path, capsys):
    os.makedirs(tmp_path / "raw")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        link = zipfile.ZipInfo("images/latest")
        link.external_attr = (0o120777 << 16)  # a symbolic link, as `zip --symlinks` stores one
        archive.writestr(link, "01_images")
        archive.writestr("images/latest/00001.png", b"x")
    (tmp_path / "raw" / "linked.zip").write_bytes(buffer.getvalue())
    status = prepare_data.cli(["--dataset=gta5", f"--raw_dir={tmp_path / 'raw'}", f"--data_dir={tmp_path / 'data'}"])
    err = capsys.readouterr().err
    assert status == 2 and err.splitlines() == [
        f"prepare_data: error: {tmp_path}/raw/linked.zip: member 'images/latest' is a symbolic link (to '01_images'), "
        "which is not "
        f"extracted from an archive; extract it yourself (unzip linked.zip) in {tmp_path}/raw, check where its "
        "links point, move the archive away and run again"], err
