"""The console scripts of pyproject.toml for the tools: each hides TensorFlow's start-up lines
(quiet_tensorflow.py) before its module imports TensorFlow, then runs it and exits with its status."""

import sys

from cycada_tf.train import quiet_tensorflow as quiet


def prepare():
    """`cycada-prepare`: prepare.py's command line."""
    quiet.import_tensorflow(quiet.verbosity_given(sys.argv))
    from cycada_tf.tools import prepare as prepare_lib
    sys.exit(prepare_lib.cli(prog="cycada-prepare"))


def export():
    """`cycada-export`: export.py's command line (it hides TensorFlow's lines itself, once the flags parse)."""
    from cycada_tf.tools import export as export_lib
    sys.exit(export_lib.main(prog="cycada-export", command=True))
