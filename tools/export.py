"""`python tools/export.py`: the `cycada-export` command (cycada_tf/tools/export.py) from a checkout, without
installing the package.

    python tools/export.py --run_dir=runs/uci_to_uci_m --seed=0 --export_dir=export
"""

import os
import sys

if __package__ in (None, ""):  # run as `python tools/export.py`: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cycada_tf.train import interrupts  # noqa: E402 - first: a Ctrl-C while the rest loads ends with the one line

if __name__ == "__main__":
    interrupts.starting()

from cycada_tf.tools.export import main, parse_args, run_config  # noqa: E402, F401 - this module's names

if __name__ == "__main__":
    sys.exit(main(command=True))
