"""`python -m cycada_tf.experiments.segmentation`: CyCADA for semantic segmentation (paper section 4.2).

With no flags it runs every stage on the embedded road-scene domains (roads_game -> roads_camera, built in
--data_dir on first use); experiments/gta5_cityscapes.flags and synthia_fall_winter.flags hold the paper's
settings for data prepared with tools/prepare_data.py.
"""

from cycada_tf.config import experiment_config as config_lib
from cycada_tf.experiments.flags import define_from, experiment_main, run

define_from(config_lib.SegmentationConfig)
main = experiment_main(config_lib.SegmentationConfig, "cycada_tf.experiments.runner")


def cli():
    """The `cycada-segmentation` command, `python -m cycada_tf.experiments.segmentation`: parse the flags, run."""
    run(main, config_lib.SegmentationConfig, __doc__)


if __name__ == "__main__":
    cli()
