"""`python tools/prepare_data.py`: the `cycada-prepare` command (cycada_tf/tools/prepare.py) from a checkout,
without installing the package.

    python tools/prepare_data.py --dataset=mnist --raw_dir=/path/to/raw --data_dir=data [--verify]
"""

import os
import sys

if __package__ in (None, ""):  # run as `python tools/prepare_data.py`: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cycada_tf.train import quiet_tensorflow as quiet  # noqa: E402

if __name__ == "__main__":  # before TensorFlow is imported: its start-up lines (cycada_tf/train/quiet_tensorflow.py)
    quiet.import_tensorflow(quiet.verbosity_given(sys.argv))

from cycada_tf.tools.prepare import cli, main, parse_args, prepare  # noqa: E402, F401 - this module's names

if __name__ == "__main__":
    sys.exit(cli())
