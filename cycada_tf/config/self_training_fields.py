"""The fields of the self-training stage and of the final model's choice, which every experiment has: Config
(experiment_config.py) inherits them, and each task's config sets the PER_TASK defaults."""

import dataclasses

from cycada_tf.stages import SELF_TRAIN_INITS  # no TensorFlow
from cycada_tf.config.run_fields import NON_NEGATIVE, PER_TASK, POSITIVE, RATE, WEIGHT, RunOptions, _f

UNIT = dict(at_least=0, at_most=1)  # a probability, a weight of a convex sum
# How the final model may be chosen (--final_criterion; cycada_tf/selection/final.py computes each).
FINAL_CRITERIA = ("veto", "learnability", "reverse_validation", "reverse_validation_translated",
                  "information_maximisation", "agreement", "mixval", "translated_source")


@dataclasses.dataclass
class SelfTrainingFields(RunOptions):
    """--self_train_* and --final_*."""
    self_train_epochs: int = _f(PER_TASK, "Epochs of self-training (AdaMatch, after the feature stage).", **POSITIVE)
    self_train_steps_per_epoch: int = _f(PER_TASK, "Iterations of a self-training epoch (its checkpoint "
                                                   "interval).", **POSITIVE)
    self_train_batch_size: int = _f(PER_TASK, "Labelled images (segmentation: crops) per self-training step.",
                                    **POSITIVE)
    self_train_target_ratio: int = _f(PER_TASK, "Unlabelled target images (crops) per labelled one in "
                                                "a self-training step.", **POSITIVE)
    self_train_lr: float = _f(PER_TASK, "Adam learning rate of self-training.", **RATE)
    self_train_confidence: float = _f(0.9, "AdaMatch's relative threshold: a pseudo-label counts at this x the "
                                           "labelled batch's mean confidence.",
                                      **UNIT)
    self_train_target_weight: float = _f(1.0, "Weight of the pseudo-label term of self-training.", **WEIGHT)
    self_train_method: str = _f(PER_TASK, "Self-training's objective; dacs (a mean teacher with class "
                                          "mixing) is for segmentation.",
                                choices=("adamatch", "dacs"))
    self_train_ema: float = _f(0.99, "dacs: momentum of the teacher's moving average of the student (DACS: 0.99).",
                               **UNIT)
    self_train_teacher_confidence: float = _f(0.968, "dacs: a pixel is confidently pseudo-labelled above this "
                                                     "teacher probability (DACS: 0.968).", **UNIT)
    self_train_guide_steps: int = _f(0, "dacs after a t2s init: steps in which the init model labels the "
                                        "target images through G_T->S.",
                                     **NON_NEGATIVE)
    self_train_guide_weight: float = _f(0.0, "dacs with a guide: after its steps, the weight of its probabilities "
                                             "beside the teacher's (0: the teacher alone).", **UNIT)
    self_train_align: bool = _f(False, "dacs: align the pseudo-labels' class frequencies to the labelled "
                                       "pixels' (distribution alignment).")
    self_train_source_view: str = _f("translated", "dacs on raw target images: the labelled crops raw or "
                                                   "through G_S->T.",
                                     choices=("raw", "translated"))
    self_train_init: str = _f(SELF_TRAIN_INITS[0], "The model self-training starts from: feature (CyCADA's f_T), "
                                                   "target or source (f_S).", choices=SELF_TRAIN_INITS)
    self_train_view: str = _f(PER_TASK, "Self-training reads images as they are (target) or as its init "
                                        "model does (init: G_T->S(x_t) under t2s).",
                              choices=("target", "init"))
    final_criterion: str = _f("veto", "How the final model is chosen (docs/self_training_and_selection.md).",
                              rerun=True, choices=FINAL_CRITERIA)  # decided again from the saved weights on a rerun
    final_margin: float = _f(0.0, "An adapted final model must beat the source model's criterion (veto: one "
                                  "of its two) by more than this.", rerun=True,
                             **NON_NEGATIVE)
    final_reverse_steps: int = _f(PER_TASK, "learnability and reverse validation: steps of the fresh network "
                                            "trained on a candidate's labels of the target images.", rerun=True,
                                  **POSITIVE)
