"""`python -m cycada_tf.experiments.segmentation`: CyCADA for semantic segmentation (paper section 4.2).

With no flags it runs every stage on the embedded road-scene domains (roads_game -> roads_camera, built in
--data_dir on first use); experiments/gta5_cityscapes.flags and synthia_fall_winter.flags hold the paper's
settings for data prepared with tools/prepare_data.py.
"""

import sys

from absl import app, flags, logging

from cycada_tf import config as config_lib
from cycada_tf.experiments.flags import config_from_flags, define_from

define_from(config_lib.SegmentationConfig)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # as the digits main: progress lines are ours
    from cycada_tf import train_segmentation
    from cycada_tf.data.tfrecord import DataError
    config = config_from_flags(config_lib.SegmentationConfig)
    try:
        train_segmentation.run(config)
    except (DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)
