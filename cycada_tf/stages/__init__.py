"""The stages of CyCADA, one module each under stages/ (its keras.Model, its wiring and its record, STAGE):
source model (Eq. 1), pixel adaptation (Eq. 2-4), target model, feature adaptation (Eq. 5), self-training and
the target-trained oracle.

NAMES registers them, in the order a run trains them: a new stage is its module plus its line here. Names
only, no TensorFlow: the flags read them (config.STAGE_NAMES) before anything heavy loads; registry.py
imports each module for its record."""

NAMES = (
    "source",
    "pixel",
    "target",
    "feature",
    "self_train",
    "oracle",
)
# The stages self-training may start from (--self_train_init), the default first.
SELF_TRAIN_INITS = ("feature", "target", "source")
