"""Each flagfile of experiments/ parses into the paper's protocol for its row of Table 2 (appendix 6.1.1)."""

import os

import pytest
from absl import flags

from cycada_tf import config as config_lib, paper
from cycada_tf.experiments.flags import config_from_flags, define_from

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROWS = {"mnist_usps.flags": ("mnist", "usps", 28, 1), "usps_mnist.flags": ("usps", "mnist", 28, 1),
        "svhn_mnist.flags": ("svhn", "mnist", 32, 3)}


def parse(*argv):
    flag_values = flags.FlagValues()
    define_from(config_lib.DigitsConfig, flag_values)
    flag_values(["digits", *argv])
    return config_from_flags(config_lib.DigitsConfig, flag_values)


# Segmentation flagfiles (Tables 3 and 4): source, target, model, evaluation split.
SEGMENTATION_ROWS = {"gta5_cityscapes.flags": ("gta5", "cityscapes", "fcn8s", "val"),
                     "synthia_fall_winter.flags": ("synthia_fall", "synthia_winter", "fcn8s", "train")}


def parse_segmentation(*argv):
    flag_values = flags.FlagValues()
    define_from(config_lib.SegmentationConfig, flag_values)
    flag_values(["segmentation", *argv])
    return config_from_flags(config_lib.SegmentationConfig, flag_values)


# Shifts the paper has no row for: flagfile -> (source, target, published anchors its comments must carry).
ANCHOR_ROWS = {"mnist_mnistm.flags": ("mnist", "mnist_m", ("52.25", "76.66", "98.2"))}


def test_every_flagfile_is_a_row_of_the_papers_tables_or_names_its_anchors():
    assert sorted(os.listdir(os.path.join(REPO, "experiments"))) == sorted({**ROWS, **SEGMENTATION_ROWS,
                                                                           **ANCHOR_ROWS})


@pytest.mark.parametrize("name", sorted(ANCHOR_ROWS))
def test_a_flagfile_outside_the_paper_keeps_its_protocol_and_anchors(name):
    from cycada_tf.data import registry
    source, target, anchors = ANCHOR_ROWS[name]
    path = os.path.join(REPO, "experiments", name)
    config = parse(f"--flagfile={path}")
    assert (config.source, config.target) == (source, target) and not paper.reported(source, target)
    assert registry.get(source).classes == registry.get(target).classes
    comments = "".join(line for line in open(path) if line.startswith("#"))
    assert all(anchor in comments for anchor in anchors)
    reference = parse(f"--flagfile={os.path.join(REPO, 'experiments', 'svhn_mnist.flags')}")
    same = {k: v for k, v in vars(config).items() if k not in ("source", "target", "run_dir")}
    assert same == {k: v for k, v in vars(reference).items() if k in same}  # the paper's digit protocol
    assert config.run_dir == f"runs/{name[:-len('.flags')]}"


@pytest.mark.parametrize("name", sorted(SEGMENTATION_ROWS))
def test_segmentation_flagfile_pins_the_papers_protocol(name):
    from cycada_tf.data import registry
    source, target, model, split = SEGMENTATION_ROWS[name]
    config = parse_segmentation(f"--flagfile={os.path.join(REPO, 'experiments', name)}")
    assert (config.source, config.target, config.model, config.eval_split) == (source, target, model, split)
    assert registry.get(source).classes == registry.get(target).classes
    assert split in registry.get(target).splits
    assert config.width == 1024 and config.crop_size == (400, 400)  # appendix 6.1.2
    assert (config.task_optimizer, config.source_lr, config.momentum, config.source_batch_size) == ("sgd", 1e-3, 0.9, 1)
    assert config.pixel_epochs == 20 and config.semantic_weight == config.semantic_t2s_weight == 0.0
    assert (config.generator_width, config.generator_blocks, config.discriminator_width) == (64, 9, 64)
    assert (config.gan_mode, config.cycle_weight, config.pixel_lr, config.pixel_batch_size) == ("lsgan", 10.0, 2e-4, 1)
    assert (config.feature_optimizer, config.feature_lr, config.feature_momentum) == ("sgd", 1e-5, 0.99)
    assert config.gate_window == 100 and config.pixel_direction == "s2t" and config.feature_crop_size == (768, 768)
    assert config.run_dir == f"runs/{name[:-len('.flags')]}"


@pytest.mark.parametrize("name", sorted(ROWS))
def test_flagfile_pins_the_papers_protocol(name):
    source, target, size, channels = ROWS[name]
    config = parse(f"--flagfile={os.path.join(REPO, 'experiments', name)}")
    assert (config.source, config.target, config.image_size, config.channels) == (source, target, size, channels)
    assert paper.reported(config.source, config.target)  # the table prints the paper's numbers beside ours
    assert config.seeds == (0, 1, 2, 3)  # the paper's 4 runs
    assert config.stages == ("source", "pixel", "target", "feature", "oracle")
    assert (config.source_epochs, config.source_batch_size, config.source_lr) == (100, 128, 1e-4)
    assert (config.pixel_epochs, config.pixel_batch_size, config.pixel_lr) == (50, 100, 2e-4)
    assert (config.feature_epochs, config.feature_lr) == (200, 1e-5)
    # the paper's method, not the embedded recipe of config.py's defaults
    assert config.pixel_direction == "s2t" and config.noise_channels == 0 and not config.minibatch_std
    assert config.semantic_weight == config.semantic_t2s_weight == config.gan_weight == config.cycle_weight == 1
    assert config.translations_per_image == 1 and config.feature_min_steps_per_epoch == 500
    assert config.run_dir == f"runs/{name[:-len('.flags')]}"


def test_a_flag_given_after_the_flagfile_overrides_it():
    config = parse(f"--flagfile={os.path.join(REPO, 'experiments', 'svhn_mnist.flags')}", "--seeds=7",
                   "--data_dir=/elsewhere")
    assert config.seeds == (7,) and config.data_dir == "/elsewhere" and config.source == "svhn"


def test_an_unknown_flag_in_a_flagfile_is_refused(tmp_path):
    path = tmp_path / "bad.flags"
    path.write_text("--source=svhn\n--pixel_epoch=5\n")
    with pytest.raises(flags.UnrecognizedFlagError, match="pixel_epoch"):
        parse(f"--flagfile={path}")


@pytest.mark.slow
def test_paper_flagfile_feature_stage_updates_f_t_on_small_data(embedded_data_dir, tmp_path):
    """experiments/mnist_usps.flags as given, on small embedded grey digits (900 target training images, 7
    iterations a pass) and with fewer epochs for the CPU: the gate opens (appendix 6.1) and f_T changes (with
    an epoch of 100 iterations it did not: D_feat stayed under 60% and the stage ended after epoch 1)."""
    import h5py
    import numpy as np

    from cycada_tf import train
    config = parse(f"--flagfile={os.path.join(REPO, 'experiments', 'mnist_usps.flags')}", "--source=fonts",
                   "--target=uci", f"--data_dir={embedded_data_dir}", f"--run_dir={tmp_path / 'run'}", "--seeds=0",
                   "--stages=source,pixel,target,feature", "--source_epochs=5", "--pixel_epochs=1",
                   "--target_epochs=5", "--feature_epochs=2", "--summary_every_epochs=0", "--verbose=0")
    assert config.feature_lr == 1e-5 and config.feature_min_steps_per_epoch == 500
    feature = train.run(config)["per_seed"]["0"]["feature"]
    assert feature["gated_updates"] > 0, feature

    def weights(stage):
        with h5py.File(tmp_path / "run" / "seed_0" / stage / "f.weights.h5") as handle:
            arrays = []
            handle.visititems(lambda n, o: arrays.append(o[()]) if hasattr(o, "shape") else None)
        return arrays
    assert any(not np.array_equal(a, b) for a, b in zip(weights("target"), weights("feature")))
