"""The embedded road-scene domains: deterministic, one label set, disjoint splits, records that the
segmentation pipeline reads, and a shift in appearance only (the layouts follow one distribution)."""

import numpy as np
import pytest

from cycada_tf.data import pipeline, registry, schema, tfrecord
from cycada_tf.data.sources import cityscapes, road_scenes


@pytest.fixture(scope="module")
def road_data_dir(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("road_data"))
    for name in road_scenes.DOMAINS:
        registry.ensure(name, data_dir)
    return data_dir


@pytest.mark.parametrize("name", road_scenes.DOMAINS)
def test_rendering_is_a_function_of_domain_split_and_index(name):
    first_image, first_label = road_scenes.render(name, "train", 7)
    again_image, again_label = road_scenes.render(name, "train", 7)
    assert np.array_equal(first_image, again_image) and np.array_equal(first_label, again_label)
    other_image, other_label = road_scenes.render(name, "test", 7)
    assert not np.array_equal(first_label, other_label)
    assert first_image.shape == (road_scenes.HEIGHT, road_scenes.WIDTH, 3) and first_image.dtype == np.uint8
    assert first_label.shape == (road_scenes.HEIGHT, road_scenes.WIDTH) and first_label.dtype == np.uint8


def test_the_label_set_is_a_subset_of_the_cityscapes_classes():
    assert all(name in cityscapes.CLASSES for name in road_scenes.CLASSES)
    assert road_scenes.CITYSCAPES_TRAIN_IDS == (0, 1, 2, 5, 8, 10, 11, 13)
    for name in road_scenes.DOMAINS:
        assert registry.get(name).classes == road_scenes.CLASSES
        assert registry.get(name).ignore_label == 255
    seen = set()
    for index in range(40):
        _, label = road_scenes.render("roads_game", "train", index)
        seen |= set(np.unique(label).tolist())
    assert seen == set(range(len(road_scenes.CLASSES)))  # every class occurs, nothing else (no 255)


def test_records_are_readable_by_the_segmentation_pipeline(road_data_dir):
    for name in road_scenes.DOMAINS:
        manifest = tfrecord.read_manifest(registry.dataset_dir(road_data_dir, name))
        assert {split: v["count"] for split, v in manifest["splits"].items()} == road_scenes.SPLIT_SIZES
        images, labels = next(iter(pipeline.load_segmentation(name, "test", road_data_dir, batch_size=5)))
        assert images.shape == (5, road_scenes.HEIGHT, road_scenes.WIDTH, 3)
        assert -1.0 <= float(np.min(images)) and float(np.max(images)) <= 1.0
        expected = np.stack([road_scenes.render(name, "test", i)[1] for i in range(5)])
        assert np.array_equal(labels.numpy(), expected)  # record order and label maps as rendered
        crops = next(iter(pipeline.load_segmentation(name, "train", road_data_dir, labels=False,
                                                     crop_size=(32, 64), flip=True, batch_size=3)))
        assert crops.shape == (3, 32, 64, 3)


def test_train_and_test_splits_and_the_two_domains_share_no_scene(road_data_dir):
    keys = set()
    digests = set()
    for name in road_scenes.DOMAINS:
        for split in ("train", "test"):
            for serialized in pipeline.records(name, split, road_data_dir):
                example = schema.parse(serialized)
                keys.add(example[schema.KEY].numpy())
                digests.add(example[schema.LABEL_MAP].numpy())
    total = 2 * sum(road_scenes.SPLIT_SIZES.values())
    assert len(keys) == total and len(digests) == total  # no label map occurs twice


def test_the_domains_differ_in_appearance_not_in_layout():
    def stats(name):
        frequencies, colours = [], []
        for index in range(60):
            image, label = road_scenes.render(name, "train", index)
            frequencies.append(np.bincount(label.ravel(), minlength=len(road_scenes.CLASSES)) / label.size)
            colours.append([image[label == k].mean(axis=0) if (label == k).any() else np.full(3, np.nan)
                            for k in range(len(road_scenes.CLASSES))])
        return np.mean(frequencies, axis=0), np.nanmean(np.array(colours), axis=0)

    game_frequency, game_colour = stats("roads_game")
    camera_frequency, camera_colour = stats("roads_camera")
    assert np.abs(game_frequency - camera_frequency).max() < 0.05  # the same layouts, in distribution
    # ... but each class looks different: its mean colour moves by more than 40 (of 255) in some channel
    assert (np.abs(game_colour - camera_colour).max(axis=1) > 40).sum() >= 6
