"""Self-training for segmentation (not in the paper): DACS (Tranheden et al., "DACS: Domain Adaptation via
Cross-domain Mixed Sampling", WACV 2021), a mean teacher whose pseudo-labels are mixed with source pixels.

Each step: the teacher (an exponential moving average of the student's weights, Tarvainen & Valpola 2017)
labels the unlabelled target crops. ClassMix (Olsson et al. 2021) pastes the pixels of half the classes present
in each labelled crop onto a target crop; the mixed crop's label map is the source label where pasted and the
teacher's pseudo-label elsewhere, each pseudo-labelled pixel weighted by the share of its target crop's pixels
the teacher is confident about (above `confidence`). The student learns L_task on the labelled crops plus the
weighted cross-entropy on the colour-jittered mixed crops; then the teacher follows the student.

The target crops come without labels; the mixing needs no target label either.
"""

import keras
import tensorflow as tf

from cycada_tf.train import augment, losses
from cycada_tf.stages.base import OneNetModel, replica_scale

PRIOR_MOMENTUM = 0.99  # of the class frequencies distribution alignment reads


class ClassMixSelfTraining(OneNetModel):
    """Trains every weight of `net` (the student) on ((x_labelled, y_labelled), x_target) batches; `teacher`
    is a network of the same architecture, initialised to `net`'s weights and never trained by a gradient.

    confidence: DACS' pixel-confidence threshold of the teacher (0.968).
    ema: the teacher's momentum (DACS: 0.99).
    target_weight: a factor on the mixed crops' term.
    ignore_label: label of the pixels L_task skips (never pasted)."""

    # What TensorBoard says beside each value train_step reports (summaries.TensorBoardSummaries), epoch means.
    SCALARS = {"loss": "source_loss + mixed_loss, weighted: what the step minimises.",
               "source_loss": "L_task on the labelled crops.",
               "mixed_loss": "Weighted cross-entropy on the mixed crops (pasted source labels, teacher's "
                             "pseudo-labels elsewhere).",
               "pseudo_weight": "Mean weight of a pseudo-labelled pixel: the share of its target crop the teacher "
                                "is confident about.",
               "pasted_fraction": "Share of a mixed crop's pixels pasted from the labelled crop (ClassMix).",
               "guided": "1 while the guide's labels replace the teacher's (the first guide steps), else 0."}

    def __init__(self, net, teacher, confidence=0.968, ema=0.99, target_weight=1.0, seed=0, ignore_label=255,
                 source_view=None, guide=None, guide_steps=0, guide_weight=0.0, align=False, **kwargs):
        super().__init__(**kwargs)
        self.net, self.teacher = net, teacher
        self.teacher.trainable = False
        # source_view: a frozen map of the labelled crops (G_S->T: target-looking source crops); guide: a frozen
        # model of the target crops whose labels replace the teacher's for the first guide_steps steps.
        # After guide_steps, the guide's probabilities keep this weight beside the teacher's (0: teacher alone).
        self.source_view, self.guide, self.guide_steps = source_view, guide, int(guide_steps)
        self.guide_weight = float(guide_weight)
        self.align = bool(align)  # AdaMatch's distribution alignment of the pseudo-labels to the source classes
        classes = teacher.output_shape[-1]
        # the class frequencies of the labelled pixels and of the pseudo-labels' probabilities, moving averages
        self.source_prior = self.add_weight(shape=(classes,), initializer="ones", trainable=False,
                                            name="source_prior")
        self.target_prior = self.add_weight(shape=(classes,), initializer="ones", trainable=False,
                                            name="target_prior")
        self.confidence, self.ema, self.target_weight = float(confidence), float(ema), float(target_weight)
        self.ignore_label = ignore_label
        self.augment_seed = keras.random.SeedGenerator(seed)
        self.trackers = {n: keras.metrics.Mean(name=n) for n in self.SCALARS}

    def train_step(self, data):
        (x_s, y_s), x_t = data
        b = tf.shape(x_s)[0]
        x_t = x_t[:b]  # one target crop per labelled crop
        if self.source_view is not None:
            x_s = tf.cast(self.source_view(x_s, training=False), x_t.dtype)
        classes = self.teacher.output_shape[-1]

        def teacher_probabilities():
            return tf.nn.softmax(tf.cast(self.teacher(x_t, training=False), tf.float32))

        def guide_probabilities():
            return tf.nn.softmax(tf.cast(self.guide(x_t), tf.float32))

        if self.guide is None:
            guided, p_t = tf.constant(0.0), teacher_probabilities()
        else:
            guided = tf.cast(self.optimizer.iterations < self.guide_steps, tf.float32)
            if self.guide_weight > 0:
                weight_of_guide = tf.maximum(guided, self.guide_weight)
                p_t = weight_of_guide * guide_probabilities() + (1.0 - weight_of_guide) * teacher_probabilities()
            else:  # the guide alone while it guides, the teacher alone after: only the one that labels runs
                p_t = tf.cond(guided > 0, guide_probabilities, teacher_probabilities)
        y_s = tf.cast(y_s, tf.int32)
        if self.align:
            labelled = tf.reduce_sum(tf.one_hot(tf.reshape(y_s, [-1]), classes), axis=0)  # ignored: no class
            self.source_prior.assign(PRIOR_MOMENTUM * self.source_prior + (1.0 - PRIOR_MOMENTUM) * labelled
                                     / tf.maximum(tf.reduce_sum(labelled), 1.0))
            self.target_prior.assign(PRIOR_MOMENTUM * self.target_prior + (1.0 - PRIOR_MOMENTUM)
                                     * tf.reduce_mean(tf.reshape(p_t, [-1, classes]), axis=0))
            aligned = p_t * self.source_prior / (self.target_prior + 1e-6)
            p_t = aligned / tf.reduce_sum(aligned, axis=-1, keepdims=True)
        pseudo = tf.argmax(p_t, axis=-1, output_type=tf.int32)
        confident = tf.cast(tf.reduce_max(p_t, axis=-1) >= self.confidence, tf.float32)
        weight = tf.reduce_mean(confident, axis=[1, 2], keepdims=True)  # per crop, as DACS
        mask = augment.class_mix_mask(y_s, classes, self.ignore_label, self.augment_seed)  # (b, h, w) in {0, 1}
        x_mix = augment.mix(x_s, x_t, mask)
        x_mix = augment.colour_jitter(x_mix, self.augment_seed)
        y_mix = tf.where(mask > 0, y_s, pseudo)
        pixel_weight = mask + (1.0 - mask) * weight
        variables = self.net.trainable_variables
        with tf.GradientTape() as tape:
            logits_s, logits_mix = tf.split(self.net(tf.concat([x_s, x_mix], axis=0), training=True), 2, axis=0)
            source_loss = losses.task_loss(y_s, logits_s, ignore_label=self.ignore_label)
            mixed_loss = losses.weighted_pixel_loss(y_mix, logits_mix, pixel_weight)
            loss = source_loss + self.target_weight * mixed_loss
            scaled = replica_scale(loss, self.optimizer)
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        for teacher_weight, weight_value in zip(self.teacher.weights, self.net.weights):
            teacher_weight.assign(self.ema * teacher_weight + (1.0 - self.ema) * tf.cast(weight_value,
                                                                                       teacher_weight.dtype))
        for name, value in (("loss", loss), ("source_loss", source_loss), ("mixed_loss", mixed_loss),
                            ("pseudo_weight", tf.reduce_mean(weight)), ("pasted_fraction", tf.reduce_mean(mask)),
                            ("guided", guided)):
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}
