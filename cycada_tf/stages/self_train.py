"""Self-training after CyCADA (not in the paper): AdaMatch (Berthelot et al., "AdaMatch: A Unified Approach to
Semi-Supervised Learning and Domain Adaptation", ICLR 2022), FixMatch's consistency (Sohn et al. 2020)
adapted to a domain shift.

Each step sees a labelled batch (source-side images and their labels) and an unlabelled batch of target
images, mu times larger. The labelled batch, weakly augmented, gives L_task. Each target image is
augmented twice, weakly and strongly (augment.py); the weak view's prediction, aligned to the source class
distribution, is the pseudo-label of the strong view wherever it is more confident than a threshold relative
to the model's confidence on the labelled batch. AdaMatch's random logit interpolation is left out: it
combines logits computed with and without the target images in the batch, which differ only through batch
normalisation: the LeNet has none, and --task_model=dtn normalises the one concatenated batch (AdaMatch's
combined pass) with no interpolation. The target images come without labels.

For a segmenter every pixel is an example (per-pixel pseudo-labels), the augmentations keep each pixel in
place (no translation), L_task skips the ignore label, and the confidence threshold is one per class
(losses.relative_confidence_threshold with labels), as class-balanced self-training does (Zou et al. 2018).
"""

import keras
import tensorflow as tf

from cycada_tf.train import augment, losses
from cycada_tf.data import pipeline
from cycada_tf.stages.base import OneNetModel, Plan, Stage, replica_scale
from cycada_tf.stages.class_mix import ClassMixSelfTraining

INITS = ("feature", "target", "source")  # --self_train_init
METHODS = ("adamatch", "dacs")  # --self_train_method
VIEWS = ("target", "init")  # --self_train_view
VIEWED_STAGES = ("target", "feature")  # the inits that learnt from the translated source records
# Its row of the results table: per (task, --self_train_method), else LABEL.
LABEL = "CyCADA + self-training (AdaMatch)"
LABELS = {("segmentation", "dacs"): "CyCADA + self-training (DACS)",
          ("segmentation", "adamatch"): "CyCADA + self-training (AdaMatch, per pixel)"}


class SelfTraining(OneNetModel):
    """Trains every weight of `net` on ((x_labelled, y_labelled), x_target) batches.

    confidence: AdaMatch's tau, relative to the mean top probability on the labelled batch (paper: 0.9).
    target_weight: the weight of the pseudo-label term (AdaMatch ramps it up from 0 when training from
    scratch; here the net starts from a trained model, so it is constant).
    segmentation: per-pixel examples as the module docstring says, with `ignore_label` in the label maps."""

    # What TensorBoard says beside each value train_step reports (summaries.TensorBoardSummaries), epoch means.
    SCALARS = {"loss": "source_loss + target_loss, weighted: what the step minimises.",
               "source_loss": "L_task on the labelled (source-side) batch, weakly augmented.",
               "target_loss": "Cross-entropy of the strongly augmented target images against the pseudo-labels "
                              "of their weak views, over the pseudo-labels kept.",
               "pseudo_fraction": "Share of the target images whose pseudo-label passed the threshold.",
               "threshold": "The confidence a pseudo-label needs: tau times the mean top probability on the "
                            "labelled batch (AdaMatch's relative threshold)."}

    def __init__(self, net, confidence=0.9, target_weight=1.0, seed=0, segmentation=False, ignore_label=255,
                 **kwargs):
        super().__init__(**kwargs)
        self.net = net
        self.confidence, self.target_weight = float(confidence), float(target_weight)
        self.segmentation, self.ignore_label = bool(segmentation), ignore_label
        self.augment_seed = keras.random.SeedGenerator(seed)
        self.trackers = {n: keras.metrics.Mean(name=n) for n in self.SCALARS}

    def train_step(self, data):
        (x_s, y_s), x_t = data
        seed, geometric = self.augment_seed, not self.segmentation
        inputs = [augment.weak(x_s, seed, geometric), augment.weak(x_t, seed, geometric),
                  augment.strong(x_t, seed, geometric)]
        sizes = [tf.shape(x)[0] for x in inputs]
        variables = self.net.trainable_variables
        with tf.GradientTape() as tape:
            logits_s, logits_weak, logits_strong = tf.split(
                self.net(tf.concat(inputs, axis=0), training=True), sizes, axis=0)
            classes = tf.shape(logits_s)[-1]
            # rows of examples: images, or pixels of score maps
            p_s = tf.reshape(tf.nn.softmax(tf.cast(logits_s, tf.float32)), [-1, classes])
            p_weak = tf.reshape(tf.nn.softmax(tf.cast(logits_weak, tf.float32)), [-1, classes])
            logits_strong = tf.reshape(logits_strong, [-1, classes])
            if self.segmentation:
                source_loss = losses.task_loss(y_s, logits_s, ignore_label=self.ignore_label)
                labels = tf.reshape(tf.cast(y_s, tf.int32), [-1])
                labels = tf.where(labels == self.ignore_label, -1, labels)
                p_s_labelled = tf.boolean_mask(p_s, labels >= 0)
                threshold = losses.relative_confidence_threshold(p_s, self.confidence, labels)
            else:
                source_loss = losses.task_loss(y_s, logits_s)
                p_s_labelled = p_s
                threshold = losses.relative_confidence_threshold(p_s, self.confidence)
            pseudo = losses.distribution_alignment(p_weak, p_s_labelled)
            threshold = tf.stop_gradient(threshold)
            target_loss, kept = losses.pseudo_label_loss(pseudo, logits_strong, threshold)
            loss = source_loss + self.target_weight * target_loss
            scaled = replica_scale(loss, self.optimizer)
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        for name, value in (("loss", loss), ("source_loss", source_loss), ("target_loss", target_loss),
                            ("pseudo_fraction", kept), ("threshold", tf.reduce_mean(threshold))):
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}


def wire(trial):
    """AdaMatch on top of CyCADA: the net starts from --self_train_init and learns from labelled source and
    unlabelled target images (no labels), both as they are, or with --self_train_view=init both as the init
    model reads them (under t2s: the translated records)."""
    c, task, seed = trial.config, trial.task, trial.seed
    keras.utils.set_random_seed(seed)
    if c.self_train_init not in INITS:
        raise ValueError(f"--self_train_init must be {', '.join(INITS)}, got {c.self_train_init!r}")
    net = trial.network(c.self_train_init)
    model = _model(trial, net)
    b, mu = c.self_train_batch_size, c.self_train_target_ratio
    view = trial.view_of(STAGE.name)
    if c.self_train_view == "init" and c.self_train_init in VIEWED_STAGES:  # what f_T learnt from: translated
        xs = task.load_translated(trial.translated_dir("source"), True, seed, stage="self_train")[0]
    else:
        xs = task.inputs("source", "train", shuffle=True, seed=seed, repeat=True, stage="self_train")
    if view is not None:  # G_T->S(x_t), the translated target records
        xt = task.load_translated(trial.translated_dir("target"), False, seed + 1, stage="self_train")[0]
    else:
        xt = task.inputs("target", "unlabelled", labels=False, shuffle=True, seed=seed + 1, repeat=True,
                         stage="self_train")
    dataset = tf.data.Dataset.zip(pipeline.batch(xs, b), pipeline.batch(xt, b * mu))
    return Plan(model, (keras.optimizers.Adam(c.self_train_lr),), dataset.prefetch(2), c.self_train_epochs,
                c.self_train_steps_per_epoch, outputs=_outputs(model, net), periodic=task.test_summaries(net, view),
                result=lambda logs: task.scores(net, "target", translate=view))


def _outputs(model, net):
    """The networks the stage saves: f (the final model's candidate), and dacs' teacher beside it."""
    teacher = getattr(model, "teacher", None)
    return {"f": net} if teacher is None else {"f": net, "teacher": teacher}


def _model(trial, net):
    """The stage's keras.Model of --self_train_method, training `net`."""
    c, task, seed = trial.config, trial.task, trial.seed
    if c.self_train_method not in METHODS:
        raise ValueError(f"--self_train_method must be {' or '.join(METHODS)}, got {c.self_train_method!r}")
    if c.self_train_method == "dacs":
        if task.ignore_label is None:
            raise ValueError("--self_train_method=dacs mixes label maps: it is for segmentation; use adamatch")
        source_view = guide = None
        if c.self_train_view == "target" and trial.reads_translated(c.self_train_init):
            g_st, g_ts = trial.generators()
            source_view = g_st if c.self_train_source_view == "translated" else None
            init = trial.network(c.self_train_init)
            guide = ((lambda x: init(g_ts(x, training=False), training=False))
                     if c.self_train_guide_steps or c.self_train_guide_weight else None)
        return ClassMixSelfTraining(net, trial.network(c.self_train_init), confidence=c.self_train_teacher_confidence,
                                    ema=c.self_train_ema, target_weight=c.self_train_target_weight, seed=seed,
                                    ignore_label=task.ignore_label, source_view=source_view, guide=guide,
                                    guide_steps=c.self_train_guide_steps, guide_weight=c.self_train_guide_weight,
                                    align=c.self_train_align, name="self_train_stage", dtype=trial.dtype)
    return SelfTraining(net, confidence=c.self_train_confidence, target_weight=c.self_train_target_weight,
                        seed=seed, segmentation=task.ignore_label is not None, ignore_label=task.ignore_label,
                        name="self_train_stage", dtype=trial.dtype)


def reads_translated(trial):
    """Its model reads target images as --self_train_view says: as they are, or as its init model does."""
    c = trial.config
    if c.self_train_view not in VIEWS:
        raise ValueError(f"--self_train_view must be {' or '.join(VIEWS)}, got {c.self_train_view!r}")
    return c.self_train_view == "init" and trial.reads_translated(c.self_train_init)


STAGE = Stage("self_train", wire, needs=lambda config: (config.self_train_init,),
              label=lambda config: LABELS.get((config.TASK, config.self_train_method), LABEL),
              epochs="self_train_epochs", prior={"digits": 1.0, "segmentation": 0.95}, candidate=3,
              reads_translated=reads_translated, flags="self_train_")
