"""The embedded domains (uci, uci_m, fonts): documented sizes, deterministic bytes, disjoint digit splits,
every class present, and images that reach the models in [-1, 1] with the requested channels."""

import os
import re

import numpy as np
import pytest
import tensorflow as tf

from cycada_tf.data import pipeline, registry, schema, tfrecord
from cycada_tf.data.sources import embedded

NUM_UCI = 1797
SIZES = {
    ("uci", "train"): embedded.SOURCE_HALF,
    ("uci", "test"): NUM_UCI - embedded.SOURCE_HALF - embedded.TARGET_TRAIN,
    ("uci_m", "train"): embedded.TARGET_TRAIN * embedded.UCI_M_BLENDS_PER_TRAIN_DIGIT,
    ("uci_m", "test"): NUM_UCI - embedded.SOURCE_HALF - embedded.TARGET_TRAIN,
    ("fonts", "train"): embedded.FONTS_TRAIN,
    ("fonts", "test"): embedded.FONTS_TEST,
}


@pytest.fixture(scope="module")
def records(embedded_data_dir):
    """{(name, split): (keys, labels)} read back from the TFRecords."""
    out = {}
    for name, split in SIZES:
        parsed = pipeline.records(name, split, embedded_data_dir).map(schema.parse).batch(100_000)
        batch = next(iter(parsed))
        out[name, split] = ([k.decode() for k in batch[schema.KEY].numpy()],
                            batch[schema.LABEL].numpy().astype(int))
    return out


def _digit_indices(keys):
    """'uci:<index>' or 'uci:<index>/crop<k>' -> index into scikit-learn's 1,797 digits."""
    indices = []
    for key in keys:
        match = re.fullmatch(r"uci:(\d+)(/crop\d+)?", key)
        assert match, key
        indices.append(int(match.group(1)))
    return indices


def test_split_sizes_are_the_documented_ones(records, embedded_data_dir):
    assert SIZES[("uci", "train")] == 900 and SIZES[("uci_m", "test")] == 297
    for (name, split), size in SIZES.items():
        keys, labels = records[name, split]
        assert len(keys) == len(labels) == size, (name, split)
        manifest = tfrecord.read_manifest(registry.dataset_dir(embedded_data_dir, name))
        assert manifest["splits"][split]["count"] == size
    assert embedded.SOURCE_HALF + embedded.TARGET_TRAIN < NUM_UCI  # the target half keeps test digits


@pytest.mark.parametrize("name", ["uci", "uci_m", "fonts"])
def test_two_builds_give_identical_bytes(name, embedded_data_dir, tmp_path):
    first = registry.dataset_dir(embedded_data_dir, name)
    second = registry.ensure(name, str(tmp_path))
    manifest = tfrecord.read_manifest(first)
    assert manifest == tfrecord.read_manifest(second)
    for split in manifest["splits"].values():
        for file_name in split["files"]:
            with open(os.path.join(first, file_name), "rb") as a, open(os.path.join(second, file_name), "rb") as b:
                assert a.read() == b.read(), file_name


def test_source_and_target_digits_are_disjoint(records):
    uci_train = set(_digit_indices(records["uci", "train"][0]))
    uci_m_train = set(_digit_indices(records["uci_m", "train"][0]))
    uci_m_test = set(_digit_indices(records["uci_m", "test"][0]))
    uci_test = set(_digit_indices(records["uci", "test"][0]))
    assert len(uci_train) == embedded.SOURCE_HALF
    assert len(uci_m_train) == embedded.TARGET_TRAIN and len(uci_m_test) == SIZES[("uci_m", "test")]
    assert not uci_train & uci_m_train
    assert not uci_train & uci_m_test
    assert not uci_m_train & uci_m_test  # target test digits are never blended into training images
    # uci's test digits are the target half's test digits, which no training split holds
    assert uci_test == uci_m_test
    assert uci_train | uci_m_train | uci_m_test == set(range(NUM_UCI))


def test_each_target_training_digit_is_blended_with_several_crops(records):
    keys = records["uci_m", "train"][0]
    assert len(set(keys)) == len(keys)
    counts = np.bincount(_digit_indices(keys))
    assert set(counts[counts > 0]) == {embedded.UCI_M_BLENDS_PER_TRAIN_DIGIT}


def test_labels_are_the_digits_labels_and_cover_every_class(records):
    from sklearn.datasets import load_digits
    target = load_digits().target
    for (name, split), (keys, labels) in records.items():
        assert sorted(set(labels.tolist())) == list(range(10)), (name, split)
        if name != "fonts":
            np.testing.assert_array_equal(labels, target[_digit_indices(keys)])
        else:
            # fonts cycles through the digits: example i shows digit i % 10
            np.testing.assert_array_equal(labels, np.arange(len(labels)) % 10)


@pytest.mark.parametrize("name,stored_channels", [("uci", 1), ("uci_m", 3), ("fonts", 1)])
@pytest.mark.parametrize("channels", [1, 3])
def test_images_decode_to_minus_one_one_with_the_requested_channels(name, stored_channels, channels,
                                                                    embedded_data_dir):
    assert registry.get(name).channels == stored_channels
    ds = pipeline.load(name, "test", embedded_data_dir, image_size=32, channels=channels, batch_size=8,
                       cache=False)
    images, labels = next(iter(ds))
    images = images.numpy()
    assert images.shape == (8, 32, 32, channels) and images.dtype == np.float32
    assert labels.shape == (8,) and labels.dtype == tf.int32
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert images.min() < -0.9 and images.max() > 0.5  # the range is used, not a sliver of it
    if channels == 3 and stored_channels == 1:
        np.testing.assert_array_equal(images[..., 0], images[..., 1])  # grey repeated in each channel
    if name == "uci_m" and channels == 3:
        assert np.abs(images[..., 0] - images[..., 1]).max() > 0.1  # real colour


def test_pipeline_pixels_are_the_stored_pixels_scaled(records, embedded_data_dir):
    stored = [tf.io.decode_png(schema.parse(r)[schema.IMAGE]).numpy()
              for r in pipeline.records("uci_m", "test", embedded_data_dir).take(4)]
    loaded = next(iter(pipeline.load("uci_m", "test", embedded_data_dir, image_size=32, channels=3,
                                     batch_size=4, cache=False)))[0].numpy()
    np.testing.assert_allclose(loaded, np.stack(stored).astype("float32") / 127.5 - 1.0, atol=1e-5)


def _labels_in_order(data_dir, seed, epochs=2, cache=True):
    ds = pipeline.load("uci", "train", data_dir, shuffle=True, seed=seed, repeat=True, batch_size=300,
                       cache=cache)
    count = pipeline.count("uci", "train", data_dir)
    return np.concatenate([y.numpy() for _, y in ds.take(epochs * count // 300)])


def test_shuffled_order_is_fixed_by_the_seed_and_new_each_epoch(embedded_data_dir):
    """Parallel decoding and the cache keep the order a function of the seed alone: two pipelines built
    alike give the same sequence (cached or not), another seed another, and each epoch is a new permutation
    of the whole split."""
    first = _labels_in_order(embedded_data_dir, seed=5)
    np.testing.assert_array_equal(first, _labels_in_order(embedded_data_dir, seed=5))
    np.testing.assert_array_equal(first, _labels_in_order(embedded_data_dir, seed=5, cache=False))
    assert not np.array_equal(first, _labels_in_order(embedded_data_dir, seed=6))
    count = pipeline.count("uci", "train", embedded_data_dir)
    epoch_1, epoch_2 = first[:count], first[count:]
    assert not np.array_equal(epoch_1, epoch_2)
    np.testing.assert_array_equal(np.bincount(epoch_1, minlength=10), np.bincount(epoch_2, minlength=10))


def test_pipelines_have_no_autotuning_thread_and_the_same_elements(embedded_data_dir):
    """Every pipeline the stages read is untuned (fit's end would otherwise wait on tf.data's optimisation
    thread), and it gives element for element what the autotuned pipeline gives."""
    ds = pipeline.load("uci", "train", embedded_data_dir, shuffle=True, seed=3, repeat=True, batch_size=64)
    assert ds.options().autotune.enabled is False
    zipped = tf.data.Dataset.zip(ds, pipeline.load("fonts", "train", embedded_data_dir, labels=False,
                                                   shuffle=True, seed=3, repeat=True, batch_size=64)).prefetch(2)
    assert zipped.options().autotune.enabled is False
    tuned_options = tf.data.Options()
    tuned_options.autotune.enabled = True
    tuned = pipeline.load("uci", "train", embedded_data_dir, shuffle=True, seed=3, repeat=True,
                          batch_size=64).with_options(tuned_options)  # a new one: each iterator reshuffles
    assert tuned.options().autotune.enabled is True
    count = pipeline.count("uci", "train", embedded_data_dir)
    for (x, y), (tx, ty) in zip(ds.take(2 * count // 64 + 1), tuned.take(2 * count // 64 + 1)):
        np.testing.assert_array_equal(x.numpy(), tx.numpy())
        np.testing.assert_array_equal(y.numpy(), ty.numpy())


def test_uci_s_renders_the_target_half_only_and_is_deterministic():
    first, again = embedded.uci_s_splits(), embedded.uci_s_splits()
    assert len(first["train"]) == embedded.TARGET_TRAIN * embedded.UCI_S_RENDERS_PER_TRAIN_DIGIT
    assert len(first["test"]) == SIZES[("uci_m", "test")]
    for split in ("train", "test"):
        assert all(np.array_equal(a[0], b[0]) and a[1:] == b[1:] for a, b in zip(first[split], again[split]))
    digit = {split: {int(key.split(":")[1].split("/")[0]) for _, _, key in items} for split, items in first.items()}
    source, target_train, target_test = embedded._index_split()
    assert digit["train"] == set(target_train) and digit["test"] == set(target_test)
    image = first["test"][0][0]
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and image.std() > 10  # coloured, not blank
