"""`python -m cycada_tf.experiments.digits`: CyCADA for digit classification (paper section 4.1)."""

from cycada_tf.config import experiment_config as config_lib
from cycada_tf.experiments.flags import define_from, experiment_main, run

define_from(config_lib.DigitsConfig)
main = experiment_main(config_lib.DigitsConfig, "cycada_tf.experiments.runner")


def cli():
    """The `cycada-digits` command, `python -m cycada_tf.experiments.digits`: parse the flags, run."""
    run(main, config_lib.DigitsConfig, __doc__)


if __name__ == "__main__":
    cli()
