"""`python -m cycada_tf.experiments.digits`: CyCADA for digit classification (paper section 4.1)."""

import sys

from absl import app, flags, logging

from cycada_tf import config as config_lib
from cycada_tf.experiments.flags import config_from_flags, define_from

define_from(config_lib.DigitsConfig)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    if not flags.FLAGS["verbosity"].present:
        # app.run logs at INFO, and TensorFlow's checkpoint saver logs a line per save there; progress is
        # ours to print. --verbosity=0 brings TensorFlow's INFO lines back.
        logging.set_verbosity(logging.WARNING)
    from cycada_tf import train
    from cycada_tf.data.tfrecord import DataError
    config = config_from_flags(config_lib.DigitsConfig)
    try:
        train.run(config)
    except (DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    app.run(main)
