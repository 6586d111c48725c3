"""What the method is for: on the embedded pair (uci -> uci_m) a short CyCADA run, pixel then feature
adaptation, beats the source model on the target test digits, by a margin measured over seeds."""

import pytest

from conftest import SOURCE_EPOCHS, start_from, tiny_config
from cycada_tf.experiments import runner

# The shortest run measured to gain (2 cores): translators of width 16 for 2 passes over the target training
# images at batch 8, the target model from scratch for 20 epochs, feature adaptation for 100 steps.
# The final model's choice is not what this test asks about: the criterion that trains no network keeps it short.
GAIN_RUN = dict(stages=("source", "pixel", "target", "feature"), source_epochs=SOURCE_EPOCHS, pixel_epochs=2,
                pixel_batch_size=8, generator_width=16, discriminator_width=16, translations_per_image=1,
                target_epochs=20, feature_lr=1e-4, feature_epochs=1, feature_min_steps_per_epoch=100,
                summary_every_epochs=0, final_criterion="information_maximisation")
MARGIN = 0.01


@pytest.mark.slow
def test_pixel_and_feature_adaptation_beat_the_source_model(embedded_data_dir, source_stage, tmp_path):
    """Target test accuracy (297 digits), source model -> pixel only -> pixel+feat, measured with this
    configuration: seed 0 50.2 -> 53.2 -> 53.9, seed 1 48.5 -> 52.5 -> 51.9, seed 2 48.1 -> 54.2 -> 55.2 (with
    200 feature steps: 52.9, 51.2, 52.9; with 3 pixel passes and 200 feature steps: 53.9, 54.5, 53.5). The
    numbers move with the CPU's arithmetic: with one TensorFlow thread instead of two, 3 pixel passes and 200
    feature steps, pixel+feat gained 1.3, 4.7 and 5.4 points. MARGIN asks for 1 (3 of the same 297 images,
    against the same source model)."""
    config = tiny_config("digits", data_dir=embedded_data_dir, run_dir=str(tmp_path / "run"), **GAIN_RUN)
    start_from(source_stage, config.run_dir)
    per_seed = runner.run(config)["per_seed"]["0"]
    source, adapted = per_seed["source"]["accuracy"], per_seed["feature"]["accuracy"]
    assert adapted > source + MARGIN, (source, adapted)
