"""`python -m cycada_tf.experiments.digits`: CyCADA for digit classification (paper section 4.1)."""

from cycada_tf.train import interrupts  # first: a Ctrl-C while the rest loads ends with the one line

if __name__ == "__main__":
    interrupts.starting()

from cycada_tf.config import experiment_config as config_lib  # noqa: E402
from cycada_tf.experiments.flags import define_from, experiment_main, run  # noqa: E402

define_from(config_lib.DigitsConfig)
main = experiment_main(config_lib.DigitsConfig, "cycada_tf.experiments.runner")


def cli():
    """The `cycada-digits` command, `python -m cycada_tf.experiments.digits`: parse the flags, run."""
    interrupts.starting()  # the console script: its module has loaded, the flags and the run are next
    run(main, config_lib.DigitsConfig, __doc__)


if __name__ == "__main__":
    cli()
