"""What the method is for: on the embedded pair (uci -> uci_m) a short CyCADA run, pixel then feature
adaptation, beats the source model on the target test digits, by a margin measured over seeds."""

import pytest

from conftest import SOURCE_EPOCHS, start_from, tiny_config
from cycada_tf.experiments import runner

# The shortest run measured to gain (2 cores): translators of width 16 for 3 passes over the target training
# images at batch 8, the target model from scratch for 20 epochs, feature adaptation for 2 x 100 steps.
# The final model's choice is not what this test asks about: the criterion that trains no network keeps it short.
GAIN_RUN = dict(stages=("source", "pixel", "target", "feature"), source_epochs=SOURCE_EPOCHS, pixel_epochs=3,
                pixel_batch_size=8, generator_width=16, discriminator_width=16, translations_per_image=1,
                target_epochs=20, feature_lr=1e-4, feature_epochs=2, feature_min_steps_per_epoch=100,
                summary_every_epochs=0, final_criterion="information_maximisation")
MARGIN = 0.01


@pytest.mark.slow
def test_pixel_and_feature_adaptation_beat_the_source_model(embedded_data_dir, source_stage, tmp_path):
    """Target test accuracy (297 digits), source model -> pixel only -> pixel+feat, measured with this
    configuration: seed 0 50.2 -> 55.2 -> 53.9, seed 1 48.8 -> 56.9 -> 54.5, seed 2 48.1 -> 52.2 -> 53.5. The
    numbers move with the CPU's arithmetic: with one TensorFlow thread instead of two, pixel+feat gained 1.3,
    4.7 and 5.4 points (seed 0: 50.2 -> 51.5). Over those 6 runs the gain was 1.3 to 5.7 points; MARGIN asks
    for 1 (3 of the same 297 images, against the same source model)."""
    config = tiny_config("digits", data_dir=embedded_data_dir, run_dir=str(tmp_path / "run"), **GAIN_RUN)
    start_from(source_stage, config.run_dir)
    per_seed = runner.run(config)["per_seed"]["0"]
    source, adapted = per_seed["source"]["accuracy"], per_seed["feature"]["accuracy"]
    assert adapted > source + MARGIN, (source, adapted)
