"""`python -m cycada_tf.experiments.segmentation`: CyCADA for semantic segmentation (paper section 4.2).

With no flags it runs every stage on the embedded road-scene domains (roads_game -> roads_camera, built in
--data_dir on first use); experiments/gta5_cityscapes.flags and synthia_fall_winter.flags hold the paper's
settings for data prepared with tools/prepare_data.py.
"""

from cycada_tf.train import interrupts  # first: a Ctrl-C while the rest loads ends with the one line

if __name__ == "__main__":
    interrupts.starting()

from cycada_tf.config import experiment_config as config_lib  # noqa: E402
from cycada_tf.experiments.flags import define_from, experiment_main, run  # noqa: E402

define_from(config_lib.SegmentationConfig)
main = experiment_main(config_lib.SegmentationConfig, "cycada_tf.experiments.runner")


def cli():
    """The `cycada-segmentation` command, `python -m cycada_tf.experiments.segmentation`: parse the flags, run."""
    interrupts.starting()  # the console script: its module has loaded, the flags and the run are next
    run(main, config_lib.SegmentationConfig, __doc__)


if __name__ == "__main__":
    cli()
