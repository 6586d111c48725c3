"""GTA5, Cityscapes and SYNTHIA: tiny trees in the official layouts -> TFRecords of aligned images and train-id
label maps; the id tables, the resize, clean failures naming the file, no-op re-runs, the cropping pipeline."""

import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from cycada_tf.data import pipeline, registry, schema, tfrecord
from cycada_tf.data.sources import cityscapes, synthia
from tools import prepare_data

H, W = 16, 32  # raw frames: 32 wide, 16 high; labels constant on 2x2 blocks so a halving keeps them exact


def blocky(rng, values, height=H, width=W):
    """A (height, width) map of values drawn from `values`, constant on 2x2 blocks."""
    blocks = rng.choice(values, size=(height // 2, width // 2))
    return np.kron(blocks, np.ones((2, 2), blocks.dtype))


def image_for(train_ids, rng):
    """An RGB frame whose red channel encodes each pixel's train id (10 * id, 250 for ignore): alignment
    of image and label survives any crop or flip only if both moved together."""
    image = rng.randint(0, 256, size=train_ids.shape + (3,)).astype(np.uint8)
    image[..., 0] = np.where(train_ids == 255, 250, train_ids * 10)
    return image


def save_png(path, array, mode=None, palette=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image = Image.fromarray(array, mode) if mode else Image.fromarray(array)
    if palette:  # GTA5's labels: palette PNGs whose indices are the label ids
        image = image.convert("L").convert("P")
        image.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
        image.frombytes(array.astype(np.uint8).tobytes())
    image.save(path)


def save_png16(path, array):
    """A 16-bit PNG (TF writes uint16; PIL cannot write 16-bit RGB)."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(tf.io.encode_png(tf.constant(array.astype(np.uint16))).numpy())


CITYSCAPES_IDS = np.array([0, 1, 7, 8, 11, 21, 23, 24, 26, 33, 34])  # 34 is not in the table: ignored
CITYSCAPES = {"train": {"aachen": 2, "bochum": 1}, "val": {"frankfurt": 2}}


def write_cityscapes(raw_dir, seed=0, extra=True):
    """leftImg8bit + gtFine (labelIds, and decoys _color/_instanceIds that must not be read)."""
    rng = np.random.RandomState(seed)
    data = {}
    for split, cities in CITYSCAPES.items():
        for city, count in cities.items():
            for i in range(count):
                stem = f"{city}_{i:06d}_000019"
                ids = blocky(rng, CITYSCAPES_IDS).astype(np.uint8)
                image = image_for(cityscapes.TRAIN_IDS[ids], rng)
                key = f"leftImg8bit/{split}/{city}/{stem}_leftImg8bit.png"
                save_png(os.path.join(raw_dir, key), image)
                gt = os.path.join(raw_dir, "gtFine", split, city, stem + "_gtFine_")
                save_png(gt + "labelIds.png", ids)
                save_png(gt + "color.png", np.zeros((H, W, 3), np.uint8))
                save_png(gt + "instanceIds.png", np.full((H, W), 26, np.uint8))
                data[key] = (image, ids)
    if extra:
        save_png(os.path.join(raw_dir, "leftImg8bit/train_extra/zurich/zurich_000000_000019_leftImg8bit.png"),
                 rng.randint(0, 256, size=(H, W, 3)).astype(np.uint8))
    return data


def write_gta5(raw_dir, seed=0):
    """images/ and labels/ paired by name; 00003 has no label, 00009 no image; frame sizes differ."""
    rng = np.random.RandomState(seed)
    data = {}
    for name, (height, width) in {"00001": (H, W), "00002": (2 * H, W), "00003": (H, W)}.items():
        ids = blocky(rng, CITYSCAPES_IDS, height, width).astype(np.uint8)
        image = image_for(cityscapes.TRAIN_IDS[ids], rng)
        save_png(os.path.join(raw_dir, "images", name + ".png"), image)
        if name != "00003":
            save_png(os.path.join(raw_dir, "labels", name + ".png"), ids, palette=True)
            data[f"images/{name}.png"] = (image, ids)
    save_png(os.path.join(raw_dir, "labels", "00009.png"), np.zeros((H, W), np.uint8), palette=True)
    return data


SYNTHIA_IDS = np.arange(16)
SYNTHIA = {"SYNTHIA-SEQS-01-FALL": 2, "SYNTHIA-SEQS-04-FALL": 1, "SYNTHIA-SEQS-01-WINTER": 1}


def write_synthia(raw_dir, seed=0):
    """Sequences with 16-bit RGB labels: class id in channel 0, an instance id above 255 in channel 1."""
    rng = np.random.RandomState(seed)
    data = {}
    for sequence, count in SYNTHIA.items():
        for i in range(count):
            ids = blocky(rng, SYNTHIA_IDS)
            image = image_for(synthia.TRAIN_IDS[ids], rng)
            key = f"{sequence}/RGB/Stereo_Left/Omni_F/{i:06d}.png"
            save_png(os.path.join(raw_dir, key), image)
            label = np.stack([ids, np.full_like(ids, 300 + i), np.zeros_like(ids)], axis=-1)
            save_png16(os.path.join(raw_dir, sequence, f"GT/LABELS/Stereo_Left/Omni_F/{i:06d}.png"), label)
            # the other cameras sit beside the front one and are not read
            save_png(os.path.join(raw_dir, sequence, f"RGB/Stereo_Left/Omni_B/{i:06d}.png"), image)
            data[key] = (image, ids)
    return data


def prepare(dataset, raw_dir, data_dir, *extra):
    return prepare_data.main([f"--dataset={dataset}", f"--raw_dir={raw_dir}", f"--data_dir={data_dir}", *extra])


def read_records(dataset, split, data_dir):
    """{key: (image uint8, label map uint8 or None)} of a prepared split, read back through TFRecords."""
    out = {}
    for record in pipeline.records(dataset, split, data_dir):
        parsed = schema.parse(record)
        label = parsed[schema.LABEL_MAP].numpy()
        out[parsed[schema.KEY].numpy().decode()] = (
            tf.io.decode_png(parsed[schema.IMAGE]).numpy(),
            tf.io.decode_png(label).numpy()[..., 0] if label else None)
        assert int(parsed[schema.LABEL]) == -1
    return out


def test_cityscapes_label_ids_map_to_the_official_train_ids():
    table = cityscapes.TRAIN_IDS
    assert table[7] == 0 and table[8] == 1 and table[26] == 13 and table[24] == 11 and table[33] == 18
    assert table[0] == 255 and table[6] == 255 and table[34] == 255 and table[255] == 255
    assert len(cityscapes.CLASSES) == 19 and cityscapes.CLASSES[0] == "road" and cityscapes.CLASSES[13] == "car"
    assert sorted(set(table[:34]) - {255}) == list(range(19))
    assert registry.get("cityscapes").classes == registry.get("gta5").classes == cityscapes.CLASSES


def test_synthia_ids_map_to_the_papers_13_classes():
    table = synthia.TRAIN_IDS
    assert len(synthia.CLASSES) == 13 and registry.get("synthia_fall").num_classes == 13
    assert table[1] == synthia.CLASSES.index("sky") and table[3] == synthia.CLASSES.index("road")
    assert table[12] == synthia.CLASSES.index("lanemarking")
    assert table[15] == synthia.CLASSES.index("traffic light") == 12
    assert table[0] == table[13] == table[14] == 255


def test_cityscapes_native_size_records_are_aligned_and_mapped(tmp_path):
    raw_dir, data_dir = str(tmp_path / "raw"), str(tmp_path / "data")
    data = write_cityscapes(raw_dir)
    assert prepare("cityscapes", raw_dir, data_dir, "--width=0", "--verify") == 0
    got = {**read_records("cityscapes", "train", data_dir), **read_records("cityscapes", "val", data_dir)}
    assert sorted(got) == sorted(data)
    for key, (image, ids) in data.items():
        stored_image, stored_label = got[key]
        np.testing.assert_array_equal(stored_image, image)
        np.testing.assert_array_equal(stored_label, cityscapes.TRAIN_IDS[ids])
        assert stored_label[ids == 7].tolist() == [0] * int((ids == 7).sum())      # road
        assert stored_label[ids == 26].tolist() == [13] * int((ids == 26).sum())   # car
        assert set(stored_label[ids == 0].tolist()) <= {255}                       # unlabeled
    extra = read_records("cityscapes", "train_extra", data_dir)
    assert len(extra) == 1 and next(iter(extra.values()))[1] is None  # images only
    manifest = tfrecord.read_manifest(os.path.join(data_dir, "cityscapes"))
    assert manifest["splits"]["train"]["count"] == 3 and manifest["splits"]["val"]["count"] == 2
    assert manifest["info"]["ignore_label"] == 255 and len(manifest["info"]["classes"]) == 19


def test_gta5_pairs_by_name_reports_unpaired_files_and_resizes(tmp_path, capsys):
    raw_dir, data_dir = str(tmp_path / "raw"), str(tmp_path / "data")
    data = write_gta5(raw_dir)
    prepare("gta5", raw_dir, data_dir, f"--width={W // 2}")
    out = capsys.readouterr().out
    assert "left out 2 files" in out and "00003.png: no label" in out and "00009.png: no image" in out
    manifest = tfrecord.read_manifest(os.path.join(data_dir, "gta5"))
    assert manifest["info"]["skipped_count"] == 2 and manifest["info"]["width"] == W // 2
    got = read_records("gta5", "train", data_dir)
    assert sorted(got) == sorted(data) == ["images/00001.png", "images/00002.png"]
    for key, (image, ids) in data.items():
        stored_image, stored_label = got[key]
        height = image.shape[0] // 2  # aspect kept: 32x16 -> 16x8, 32x32 -> 16x16
        assert stored_image.shape == (height, W // 2, 3) and stored_label.shape == (height, W // 2)
        # nearest on 2x2-constant labels is exact: no blended ids
        np.testing.assert_array_equal(stored_label, cityscapes.TRAIN_IDS[ids[::2, ::2]])
        # bilinear on the image: each pixel near the mean of its 2x2 block
        block_mean = image.reshape(height, 2, W // 2, 2, 3).mean(axis=(1, 3))
        assert np.abs(stored_image[1:-1, 1:-1] - block_mean[1:-1, 1:-1]).mean() < 40
        assert stored_image.std() > 0


def test_synthia_reads_16_bit_channel_0_of_one_season(tmp_path):
    raw_dir = str(tmp_path / "raw")
    data = write_synthia(raw_dir)
    for dataset, season in (("synthia_fall", "FALL"), ("synthia_winter", "WINTER")):
        data_dir = str(tmp_path / "data")
        prepare(dataset, raw_dir, data_dir, "--width=0")
        got = read_records(dataset, "train", data_dir)
        want = {k: v for k, v in data.items() if k.split("/")[0].endswith("-" + season)}
        assert sorted(got) == sorted(want) and len(want) == (3 if season == "FALL" else 1)
        for key, (image, ids) in want.items():
            np.testing.assert_array_equal(got[key][0], image)
            np.testing.assert_array_equal(got[key][1], synthia.TRAIN_IDS[ids])
            assert set(got[key][1][ids == 15].tolist()) <= {12}  # traffic light, id 15 -> train id 12
    # one sequence folder given directly works too
    single = str(tmp_path / "single")
    prepare("synthia_fall", os.path.join(raw_dir, "SYNTHIA-SEQS-04-FALL"), single, "--width=0")
    assert len(read_records("synthia_fall", "train", single)) == 1


def _truncate(path, keep=60):
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[:keep])


def _replace(path, array, **kwargs):
    os.remove(path)
    save_png(path, array, **kwargs)


CITY_LABEL = "gtFine/val/frankfurt/frankfurt_000001_000019_gtFine_labelIds.png"
GTA_IMAGE = "images/00002.png"  # a mis-sized GTA5 pair is skipped, not an error: tests/test_failure_paths_data.py
SYN_LABEL = "SYNTHIA-SEQS-01-FALL/GT/LABELS/Stereo_Left/Omni_F/000001.png"


def _write_bytes(path, data):
    with open(path, "wb") as handle:
        handle.write(data)


def _rename(raw_dir, old, new):
    os.rename(os.path.join(raw_dir, old), os.path.join(raw_dir, new))


CORRUPTIONS = {
    # name: (dataset, writer, damage(path of a file in raw_dir or raw_dir), file the message must name,
    #        words it must hold)
    "cityscapes missing label": ("cityscapes", write_cityscapes, lambda d: os.remove(f"{d}/{CITY_LABEL}"),
                                 CITY_LABEL, "missing"),
    "cityscapes truncated label": ("cityscapes", write_cityscapes, lambda d: _truncate(f"{d}/{CITY_LABEL}"),
                                   CITY_LABEL, "truncated"),
    "cityscapes label not a png": ("cityscapes", write_cityscapes,
                                   lambda d: _write_bytes(f"{d}/{CITY_LABEL}", b"<html>"), CITY_LABEL, "not a PNG"),
    "cityscapes colour label": ("cityscapes", write_cityscapes,
                                lambda d: _replace(f"{d}/{CITY_LABEL}", np.zeros((H, W, 3), np.uint8)),
                                CITY_LABEL, "label PNG of class ids"),
    "gta5 truncated image": ("gta5", write_gta5, lambda d: _truncate(f"{d}/{GTA_IMAGE}", 200),
                             GTA_IMAGE, "truncated"),
    "gta5 no labels dir": ("gta5", write_gta5, lambda d: _rename(d, "labels", "labels_old"),
                           "labels", "prepare_data.py --dataset=gta5"),
    "synthia missing label": ("synthia_fall", write_synthia, lambda d: os.remove(f"{d}/{SYN_LABEL}"),
                              SYN_LABEL, "missing"),
    "synthia id beyond the table": ("synthia_fall", write_synthia,
                                    lambda d: save_png16(f"{d}/{SYN_LABEL}", np.full((H, W, 3), 20)),
                                    SYN_LABEL, "label id 20"),
    "synthia no sequence of the season": ("synthia_winter", write_synthia,
                                          lambda d: _rename(d, "SYNTHIA-SEQS-01-WINTER", "SYNTHIA-SEQS-01-SPRING"),
                                          "SYNTHIA-SEQS-NN-WINTER", "--dataset=synthia_winter"),
}


@pytest.mark.parametrize("corruption", sorted(CORRUPTIONS))
def test_bad_input_stops_with_the_file_name_and_leaves_nothing(tmp_path, corruption):
    dataset, write, damage, culprit, words = CORRUPTIONS[corruption]
    raw_dir = str(tmp_path / "raw")
    write(raw_dir)
    damage(raw_dir)
    data_dir = tmp_path / "out" / "data"
    with pytest.raises(tfrecord.DataError) as error:
        prepare(dataset, raw_dir, str(data_dir), "--width=0")
    assert culprit in str(error.value) and words in str(error.value), str(error.value)
    assert not (tmp_path / "out").exists()


def test_rerun_is_a_no_op_a_new_width_rewrites_and_a_failure_keeps_the_good_copy(tmp_path, capsys):
    raw_dir, data_dir = str(tmp_path / "raw"), str(tmp_path / "data")
    write_cityscapes(raw_dir, extra=False)
    prepare("cityscapes", raw_dir, data_dir, "--width=16")
    manifest_path = os.path.join(data_dir, "cityscapes", tfrecord.MANIFEST)
    mtime = os.stat(manifest_path).st_mtime_ns
    capsys.readouterr()
    prepare("cityscapes", raw_dir, data_dir, "--width=16")
    assert "up to date" in capsys.readouterr().out and os.stat(manifest_path).st_mtime_ns == mtime

    prepare("cityscapes", raw_dir, data_dir, "--width=8")
    image, label = next(iter(read_records("cityscapes", "val", data_dir).values()))
    assert image.shape == (4, 8, 3) and label.shape == (4, 8)

    _truncate(os.path.join(raw_dir, CITY_LABEL))
    with pytest.raises(tfrecord.DataError, match=CITY_LABEL):
        prepare("cityscapes", raw_dir, data_dir, "--width=8")
    assert tfrecord.verify(os.path.join(data_dir, "cityscapes")) == {"train": 3, "val": 2}
    assert sorted(os.listdir(data_dir)) == ["cityscapes"]


def test_unprepared_dataset_names_the_command(tmp_path):
    for name in ("gta5", "cityscapes", "synthia_fall", "synthia_winter"):
        with pytest.raises(tfrecord.DataError, match=f"tools/prepare_data.py --dataset={name} "):
            pipeline.load_segmentation(name, "train", str(tmp_path))


def _red_to_train_id(images):
    red = np.round((images[..., 0] + 1.0) * 127.5).astype(int)
    return np.where(red == 250, 255, red // 10)


def test_pipeline_crops_image_and_label_together_and_gives_full_images_for_evaluation(tmp_path):
    raw_dir, data_dir = str(tmp_path / "raw"), str(tmp_path / "data")
    data = write_cityscapes(raw_dir)
    prepare("cityscapes", raw_dir, data_dir, "--width=0")

    full = list(pipeline.load_segmentation("cityscapes", "val", data_dir, batch_size=2))
    (images, labels), = full
    assert images.shape == (2, H, W, 3) and labels.dtype == tf.int32 and labels.shape == (2, H, W)
    want = data["leftImg8bit/val/frankfurt/frankfurt_000000_000019_leftImg8bit.png"]
    np.testing.assert_allclose(images[0].numpy(), want[0] / 127.5 - 1.0, atol=1e-5)
    np.testing.assert_array_equal(labels[0].numpy(), cityscapes.TRAIN_IDS[want[1]])

    def crops(seed):
        ds = pipeline.load_segmentation("cityscapes", "train", data_dir, crop_size=(6, 10), flip=True,
                                        shuffle=True, seed=seed, batch_size=3)
        return [(x.numpy(), y.numpy()) for x, y in ds], [(x.numpy(), y.numpy()) for x, y in ds]

    first, second = crops(seed=1)
    (x, y), = first
    assert x.shape == (3, 6, 10, 3) and y.shape == (3, 6, 10)
    np.testing.assert_array_equal(_red_to_train_id(x), y)  # image and label cropped and flipped together
    assert not np.array_equal(first[0][1], second[0][1])   # a new draw each epoch
    again, _ = crops(seed=1)
    np.testing.assert_array_equal(again[0][0], first[0][0])  # the same seed, the same crops

    # a crop larger than the image pads the label with the ignore label
    (x, y), = pipeline.load_segmentation("cityscapes", "val", data_dir, crop_size=(H + 4, W), batch_size=2)
    assert x.shape == (2, H + 4, W, 3) and np.all(y.numpy()[:, H:] == 255) and np.all(x.numpy()[:, H:] == 0)
    np.testing.assert_array_equal(_red_to_train_id(x.numpy()[:, :H]), y.numpy()[:, :H])

    images_only = list(pipeline.load_segmentation("cityscapes", "train_extra", data_dir, labels=False,
                                                  crop_size=8))
    assert len(images_only) == 1 and images_only[0].shape == (8, 8, 3)
    with pytest.raises(tf.errors.InvalidArgumentError, match="no label map"):
        list(pipeline.load_segmentation("cityscapes", "train_extra", data_dir))


def test_verify_decodes_the_label_maps_too(tmp_path):
    example = schema.make_example(np.zeros((4, 4, 3), np.uint8), label_map=np.zeros((4, 4), np.uint8), key="a")
    example.features.feature[schema.LABEL_MAP].bytes_list.value[0] = b"\x89PNG not really"
    directory = str(tmp_path / "cityscapes")
    tfrecord.write_dataset(directory, {"val": [example]}, {"test": "1"})
    with pytest.raises(tfrecord.DataError, match="val-00000-of-00001.tfrecord"):
        tfrecord.verify(directory)


def _padding_fractions(images, crop, fit):
    """The fraction of each crop that is padding (exact pad value 0 in every channel, where the image's own
    pixels are drawn from (0.05, 1]), for crops of `images` (a list of (H, W, 3) arrays)."""
    fractions = []
    for k, image in enumerate(images):
        x, _ = pipeline.crop_and_flip(tf.constant(image), None, crop, True, tf.constant([k, 7], tf.int64), 255, fit)
        fractions.append(float(np.mean(np.all(x.numpy() == 0.0, axis=-1))))
    return np.array(fractions)


def test_d_feat_cannot_tell_two_domains_apart_by_padding_when_crops_fit_the_image():
    """Two domains of the same content but different image heights (Cityscapes 512, GTA5 563 high at width
    1024, here 40 and 48 against a 64-high crop): padded crops carry the height as grey rows, and one
    threshold on the padded fraction tells every crop's domain; fitted crops (fit=m) have no padding in
    either domain, so no function of it can."""
    rng = np.random.default_rng(0)
    short = [rng.uniform(0.05, 1, (40, 96, 3)).astype("float32") for _ in range(8)]
    tall = [rng.uniform(0.05, 1, (48, 96, 3)).astype("float32") for _ in range(8)]
    padded_short, padded_tall = (_padding_fractions(d, (64, 64), None) for d in (short, tall))
    assert padded_short.min() > padded_tall.max()  # padding alone separates the domains: accuracy 100%
    fitted_short, fitted_tall = (_padding_fractions(d, (64, 64), 8) for d in (short, tall))
    assert not fitted_short.any() and not fitted_tall.any()  # nothing to read: chance
    # each fitted crop is the image's whole height (rounded down to the multiple) and the crop's width
    x, y = pipeline.crop_and_flip(tf.constant(tall[0][:45]), tf.zeros((45, 96), tf.int32), (64, 64), False,
                                  tf.constant([1, 2], tf.int64), 255, 8)
    assert x.shape == (40, 64, 3) and y.shape == (40, 64) and not np.any(y.numpy() == 255)


def test_batches_of_fitted_crops_group_images_of_one_shape():
    sizes = [(40, 64), (48, 64), (40, 64), (48, 64), (40, 64), (40, 64), (48, 64)]
    ds = tf.data.Dataset.from_generator(lambda: (np.full(s + (3,), k, "float32") for k, s in enumerate(sizes)),
                                        output_signature=tf.TensorSpec((None, None, 3), tf.float32))
    batches = [b.numpy() for b in pipeline.batch(ds, 2)]
    assert [b.shape[1] for b in batches] == [40, 48, 40]  # in order of arrival; partial windows dropped
    assert [b[:, 0, 0, 0].tolist() for b in batches] == [[0, 2], [1, 3], [4, 5]]
    static = tf.data.Dataset.from_tensor_slices(np.zeros((5, 4, 4, 3), "float32"))
    assert [b.shape[0] for b in pipeline.batch(static, 2)] == [2, 2]  # one shape: a plain batch


def test_train_short_side_resizes_the_task_stages_images_and_the_pixel_stage_reads_them_at_width(tmp_path):
    """--train_short_side=8 on native 16x32 frames: the task and feature stages crop 8x16 images (label maps
    nearest, so the 2x2 blocks halve exactly), the pixel stage and its translations read 4x8 ones (--width=8),
    and the scored label maps are 8x16, or 16x32 as prepared under --eval_resolution=native."""
    from cycada_tf.config import experiment_config as config_lib
    from cycada_tf.tasks import segmentation
    raw_dir, data_dir = str(tmp_path / "raw"), str(tmp_path / "data")
    data = write_cityscapes(raw_dir)
    prepare("cityscapes", raw_dir, data_dir, "--width=0")
    native = {key.split("/")[1]: [] for key in data}
    for key in sorted(data):
        native[key.split("/")[1]].append(cityscapes.TRAIN_IDS[data[key][1]])

    (x, y), = pipeline.load_segmentation("cityscapes", "val", data_dir, batch_size=2, short_side=8)
    assert x.shape == (2, 8, 16, 3) and y.shape == (2, 8, 16)
    assert sorted(map(bytes, y.numpy())) == sorted(bytes(ids[::2, ::2].astype(np.int32)) for ids in native["val"])
    (x, y), = pipeline.load_segmentation("cityscapes", "val", data_dir, batch_size=2, short_side=8,
                                         resize_label=False)
    assert x.shape == (2, 8, 16, 3) and y.shape == (2, H, W)
    (x, y), = pipeline.load_segmentation("cityscapes", "val", data_dir, batch_size=2, width=8)
    assert x.shape == (2, 4, 8, 3) and y.shape == (2, 4, 8)

    def task(**flags):
        return segmentation.SegmentationTask(config_lib.SegmentationConfig(
            source="cityscapes", target="cityscapes", data_dir=data_dir, eval_split="val", train_short_side=8,
            width=8, crop_size=(8, 8), feature_crop_size=(8, 8), pixel_crop_size=(4, 4), **flags))

    train = task()
    halved = [ids[::2, ::2] for ids in native["train"]]
    (x, y), = train.inputs("source", "train", batch_size=3, shuffle=True, stage="source")
    assert x.shape == (3, 8, 8, 3) and y.shape == (3, 8, 8)
    for crop in y.numpy():  # each a window of a halved label map, mirrored or not
        assert any(np.array_equal(crop, view[:, left:left + 8]) for ids in halved for view in (ids, ids[:, ::-1])
                   for left in range(9))
    feature = next(iter(train.inputs("target", "unlabelled", labels=False, shuffle=True, stage="feature")))
    assert feature.shape == (8, 8, 3)
    (x, y), = train.inputs("source", "train", batch_size=3, stage="pixel")  # what the translators read
    assert x.shape == (3, 4, 8, 3) and y.shape == (3, 4, 8)
    (x, y), = train.inputs("target", "test", batch_size=2)
    assert x.shape == (2, 8, 16, 3) and y.shape == (2, 8, 16)
    (x, y), = task(eval_resolution="native").inputs("target", "test", batch_size=2)
    assert x.shape == (2, 8, 16, 3) and y.shape == (2, H, W)
