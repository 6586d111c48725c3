"""Every flag is checked when the config is built (flag_checks.py): a wrong value ends the experiment main before
TensorFlow loads, in under 5 s, with one line naming the flag and what it accepts, exit status 2, and nothing
written. config.json is written only when the first stage really starts, so a run refused before then leaves
nothing that blocks the corrected command. The choices declared with the flags are the ones the code has."""

import dataclasses
import os
import time

import pytest
from absl import flags

from conftest import REPO, run_experiment
from cycada_tf.config import experiment_config as config_lib, flag_checks as accepts
from cycada_tf.train import resume
from cycada_tf.experiments.flags import config_from_flags, define_from

# flag -> the one line (the failures first: each gave rc 0, a traceback or a late Keras error)
REFUSED = {
    "--source_epochs=-1": "error: --source_epochs=-1: takes a whole number >= 1",
    "--source_epochs=0": "error: --source_epochs=0: takes a whole number >= 1",
    "--source_batch_size=0": "error: --source_batch_size=0: takes a whole number >= 1",
    "--pixel_batch_size=0": "error: --pixel_batch_size=0: takes a whole number >= 1",
    "--seeds=a": "error: --seeds=a: takes one or more whole numbers >= 0 and <= 4294967295, comma-separated, "
                 "each once",
    "--seeds=": "error: --seeds=: takes one or more whole numbers >= 0 and <= 4294967295, comma-separated, "
                "each once",
    "--image_size=30": "error: --image_size=30: takes a multiple of 4 (the translators' stride-2 convolutions and "
                       "deconvolutions: 30 would come back as 32)",
    "--pixel_lr_decay=lineer": "error: flag --pixel_lr_decay=lineer: value should be one of <none|linear>",
    "--feature_gan_mode=lsgna": "error: flag --feature_gan_mode=lsgna: value should be one of <log|lsgan>",
    "--self_train_view=targt": "error: flag --self_train_view=targt: value should be one of <target|init>",
    "--stages=source,pixle": "error: --stages=source,pixle: takes one or more of source, pixel, target, feature, "
                             "self_train, oracle, comma-separated, each once",
    "--precision=fp16": "error: --precision: 'fp16' is not one of auto, float32, mixed_bfloat16, mixed_float16 "
                        "(in 'fp16')",
    "--feature_lr=0": "error: --feature_lr=0.0: takes a number > 0",
    "--feature_task_weight=-1": "error: --feature_task_weight=-1.0: takes a number >= 0",
    "--momentum=1": "error: --momentum=1.0: takes a number >= 0 and < 1",
    "--verbose=3": "error: --verbose=3: takes one of 0, 1, 2",
    "--weight_decay=-1": "error: --weight_decay=-1.0: takes a number >= 0",
    "--source_steps=-5": "error: --source_steps=-5: takes a whole number >= 0",
    "--task_init=he": "error: flag --task_init=he: value should be one of <glorot_uniform|glorot_normal>",
    "--feature_trainable=head": "error: flag --feature_trainable=head: value should be one of <adapted|encoder|all>",
}


def digits(*argv, run_dir):
    start = time.monotonic()
    done = run_experiment("digits", f"--run_dir={run_dir}", f"--data_dir={run_dir}_data", *argv, check=False,
                          timeout=120)
    return done, time.monotonic() - start


@pytest.mark.parametrize("flag", ["--source_epochs=0", "--seeds=a", "--image_size=30", "--pixel_lr_decay=lineer",
                                  "--weight_decay=-1", "--feature_task_weight=-1", "--nosuch_flag=1"])
def test_a_wrong_flag_is_one_line_in_under_5_s_and_nothing_is_written(flag, tmp_path):
    run_dir = str(tmp_path / "run")
    done, seconds = digits(flag, run_dir=run_dir)
    expected = REFUSED.get(flag, "error: Unknown command line flag 'nosuch_flag'")
    assert done.returncode == 2 and done.stderr.splitlines() == [expected] and done.stdout == "", done.stderr
    assert seconds < 5 and os.listdir(tmp_path) == []


@pytest.mark.parametrize("flag", sorted(REFUSED))
def test_each_refusal_names_the_flag_and_what_it_accepts(flag):
    flag_values = flags.FlagValues()
    define_from(config_lib.DigitsConfig, flag_values)
    try:
        flag_values(["digits", flag])
        config_from_flags(config_lib.DigitsConfig, flag_values)
    except (flags.Error, accepts.FlagError) as error:
        assert f"error: {error}" == REFUSED[flag]
    else:
        pytest.fail(f"{flag} was accepted")


def test_every_flagfile_and_both_defaults_pass_the_checks(monkeypatch):
    monkeypatch.chdir(REPO)  # a release flagfile reads its row's from the repository root, as the commands do
    for cls in (config_lib.DigitsConfig, config_lib.SegmentationConfig):
        cls()
    for name in sorted(os.listdir(os.path.join(REPO, "experiments"))):
        cls = config_lib.SegmentationConfig if "cityscapes" in name or "synthia" in name else config_lib.DigitsConfig
        flag_values = flags.FlagValues()
        define_from(cls, flag_values)
        flag_values([cls.TASK, f"--flagfile={os.path.join(REPO, 'experiments', name)}"])
        config_from_flags(cls, flag_values)


def test_cross_field_rules_name_both_flags():
    with pytest.raises(accepts.FlagError, match=r"^--pixel_crop_size=30,30: takes sides that are multiples of 4 \(2 "
                                                r"to the power --generator_downsamplings=2\)$"):
        config_lib.SegmentationConfig(pixel_crop_size=(30, 30))
    config_lib.SegmentationConfig(pixel_crop_size=(30, 30), generator_downsamplings=1)
    with pytest.raises(accepts.FlagError, match=r"^--crop_size=64: takes 2 whole numbers >= 1, comma-separated$"):
        config_lib.SegmentationConfig(crop_size=(64,))
    with pytest.raises(accepts.FlagError, match=r"^--feature_recipe=release: takes --feature_layer=logits and "
                                                r"--feature_task_weight > 0 .*, not --feature_layer=features "
                                                r"--feature_task_weight=1.0$"):
        config_lib.SegmentationConfig(feature_recipe="release", feature_task_weight=1.0)
    with pytest.raises(accepts.FlagError, match=r"not --feature_layer=logits --feature_task_weight=0.0$"):
        config_lib.SegmentationConfig(feature_recipe="release", feature_layer="logits")
    config_lib.SegmentationConfig(feature_recipe="release", feature_layer="logits", feature_task_weight=1.0)


def test_a_crop_that_cannot_fit_the_short_side_is_refused_naming_the_flag(tmp_path):
    """--train_short_side: a task or feature crop longer than it is refused (exit 2, one line), never clipped;
    the pixel stage's crop is not read at the short side."""
    with pytest.raises(accepts.FlagError, match=r"^--feature_crop_size=768,768: does not fit images resized to "
                                                r"--train_short_side=512; take a crop of sides <= 512, or a "
                                                r"larger --train_short_side$"):
        config_lib.SegmentationConfig(train_short_side=512, crop_size=(512, 512), feature_crop_size=(768, 768))
    with pytest.raises(accepts.FlagError, match=r"^--crop_size=64,128: does not fit .*--train_short_side=64;"):
        config_lib.SegmentationConfig(train_short_side=64)
    config_lib.SegmentationConfig(train_short_side=1024, crop_size=(768, 768), feature_crop_size=(768, 768),
                                  pixel_crop_size=(1200, 1200))
    done = run_experiment("segmentation", f"--run_dir={tmp_path / 'run'}", f"--data_dir={tmp_path / 'data'}",
                          "--train_short_side=32", "--crop_size=32,32", check=False, timeout=120)
    assert done.returncode == 2 and done.stderr.splitlines() == [
        "error: --feature_crop_size=64,128: does not fit images resized to --train_short_side=32; take a crop of "
        "sides <= 32, or a larger --train_short_side"], done.stderr
    assert os.listdir(tmp_path) == []


def test_the_declared_choices_are_the_codes():
    """Each flag's choices (declared once, with the flag) are what the module that reads the flag knows."""
    from cycada_tf.experiments import runner
    from cycada_tf.models import digit_gan, layers
    from cycada_tf.stages import self_train
    from cycada_tf.tasks import digits, segmentation

    def choices(name, cls=config_lib.DigitsConfig):
        return next(f for f in dataclasses.fields(cls) if f.name == name).metadata["accepts"]["choices"]
    assert choices("stages") == runner.STAGE_NAMES
    assert choices("pixel_init") == layers.INITS and choices("self_train_init") == self_train.INITS
    assert choices("self_train_view") == self_train.VIEWS
    assert choices("task_model") == tuple(digits.TASK_MODELS)
    assert choices("model", config_lib.SegmentationConfig) == tuple(segmentation.SEGMENTERS)
    stride = accepts.DIGIT_GENERATOR_STRIDE
    assert digit_gan.generator(7 * stride, 1, 1, width=2).output_shape[1] == 7 * stride
    assert digit_gan.generator(7 * stride + 2, 1, 1, width=2).output_shape[1] != 7 * stride + 2


def _config(data_dir, run_dir, **values):
    return config_lib.DigitsConfig(data_dir=data_dir, run_dir=run_dir, seeds=(0,), summary_every_epochs=0,
                                   verbose=0, **values)


def test_a_run_refused_before_its_first_step_leaves_no_config_json(embedded_data_dir, tmp_path, monkeypatch):
    from cycada_tf.experiments import runner
    run_dir = str(tmp_path / "run")
    with pytest.raises(ValueError, match="stage 'target' needs the 'pixel' stage of seed 0"):
        runner.run(_config(embedded_data_dir, run_dir, stages=("target",)))
    assert not os.path.exists(os.path.join(run_dir, resume.CONFIG_FILE))

    def refused(trial):  # as the source stage refuses a --backbone_weights file
        raise ValueError("--backbone_weights=x.h5: not a weights file")
    monkeypatch.setattr(runner, "STAGES", (dataclasses.replace(runner.STAGES[0], wire=refused),) + runner.STAGES[1:])
    with pytest.raises(ValueError, match="--backbone_weights=x.h5"):
        runner.run(_config(embedded_data_dir, run_dir, stages=("source",), source_epochs=3))
    assert not os.path.exists(os.path.join(run_dir, resume.CONFIG_FILE))
    # the corrected command, with another value of a flag that shapes results, is not refused
    resume.check_run_config(_config(embedded_data_dir, run_dir, stages=("source",), source_epochs=2), run_dir)
