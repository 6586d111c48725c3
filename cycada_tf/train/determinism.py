"""--deterministic: TensorFlow's op determinism for the whole run, so that the same command and seed on the same
machine and software gives bit-identical weights and results (tests/test_end_to_end.py runs it twice).

What else it takes is already there: every stage starts from keras.utils.set_random_seed(seed) (runner.py and
each stage's wire), every tf.data shuffle and random stream has a seed, and every parallel map of the input
pipelines is deterministic=True. Op determinism then removes the rest: kernels that add in a thread-dependent
order (on GPUs mostly) take a deterministic algorithm, a stateful tf.data map runs serially, and a random op
without a seed raises instead of drawing from the clock."""

import tensorflow as tf
from tensorflow.python.framework import config as tf_config


def apply(config, jit_compile, log):
    """Turn op determinism on for this process when --deterministic is set; `jit_compile`: {stage: auto, true
    or false} of --jit_compile (none true). It is never turned off again: a process runs one experiment."""
    if not config.deterministic:
        return
    # --jit_compile=true with it was refused when the config was built (flag_checks.py): Keras compiles no train
    # step with XLA under op determinism.
    tf.config.experimental.enable_op_determinism()
    log("--deterministic: TensorFlow op determinism on (no XLA); the same command and seed on this machine "
        "repeats this run bit for bit")


def enabled():
    """Whether op determinism is on in this process (Keras reads the same switch to refuse XLA)."""
    return tf_config.is_op_determinism_enabled()
