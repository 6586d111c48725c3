"""The losses of the paper, Eq. 1-5, one function each, named after the term. Each returns the mean over
the examples it is given; the stages scale by the number of replicas (see cycada_tf/stages/base.py)."""

import tensorflow as tf


def task_loss(labels, logits, ignore_label=None):
    """Eq. 1: cross-entropy of softmax(logits) against integer labels.

    ignore_label (segmentation: 255): pixels with that label count neither in the sum nor in the number of
    terms; the loss is the mean over the other pixels (0 when there are none)."""
    logits = tf.cast(logits, tf.float32)
    if ignore_label is None:
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))
    labels = tf.convert_to_tensor(labels)
    keep = tf.not_equal(labels, ignore_label)
    safe = tf.where(keep, labels, tf.zeros_like(labels))  # any class: its term is masked out below
    terms = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=safe, logits=logits)
    keep = tf.cast(keep, tf.float32)
    return tf.reduce_sum(terms * keep) / tf.maximum(tf.reduce_sum(keep), 1.0)


def _bce(logits, target):
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.fill(tf.shape(logits), float(target)), logits=logits))


def gan_discriminator_loss(real_logits, fake_logits, mode="log"):
    """Eq. 2 (and 5) from the discriminator's side: -E[log D(real)] - E[log(1 - D(fake))].

    mode="lsgan" is the least-squares form CycleGAN uses: E[(D(real) - 1)^2] + E[D(fake)^2].
    """
    if mode == "lsgan":
        real, fake = tf.cast(real_logits, tf.float32), tf.cast(fake_logits, tf.float32)
        return tf.reduce_mean(tf.square(real - 1.0)) + tf.reduce_mean(tf.square(fake))
    return _bce(real_logits, 1.0) + _bce(fake_logits, 0.0)


def gan_generator_loss(fake_logits, mode="log"):
    """Eq. 2 (and 5) from the mapping's side, in the non-saturating form -E[log D(G(x))] (Goodfellow et
    al. 2014), which has the same fixed point as minimising E[log(1 - D(G(x)))] and usable gradients early
    on. mode="lsgan": E[(D(G(x)) - 1)^2]."""
    if mode == "lsgan":
        return tf.reduce_mean(tf.square(tf.cast(fake_logits, tf.float32) - 1.0))
    return _bce(fake_logits, 1.0)


def cycle_consistency_loss(x_s, x_s_reconstructed, x_t, x_t_reconstructed):
    """Eq. 3: E||G_TS(G_ST(x_s)) - x_s||_1 + E||G_ST(G_TS(x_t)) - x_t||_1 (mean absolute error per pixel)."""
    return (tf.reduce_mean(tf.abs(tf.cast(x_s_reconstructed, tf.float32) - x_s)) +
            tf.reduce_mean(tf.abs(tf.cast(x_t_reconstructed, tf.float32) - x_t)))


def semantic_consistency_term(f_s_logits_original, f_s_logits_translated):
    """One term of Eq. 4: L_task(f_S, translated images, p(f_S, original images)), p = argmax (per pixel for
    a segmenter's score maps: every pixel has a pseudo-label, none is ignored)."""
    pseudo = tf.stop_gradient(tf.argmax(f_s_logits_original, axis=-1, output_type=tf.int32))
    return task_loss(pseudo, f_s_logits_translated)


def semantic_consistency_loss(f_s_logits_t, f_s_logits_t_to_s, f_s_logits_s, f_s_logits_s_to_t):
    """Eq. 4: L_task(f_S, G_TS(x_t), p(f_S, x_t)) + L_task(f_S, G_ST(x_s), p(f_S, x_s)).

    Arguments are the frozen source model's logits on x_t, G_TS(x_t), x_s and G_ST(x_s).
    """
    return (semantic_consistency_term(f_s_logits_t, f_s_logits_t_to_s)
            + semantic_consistency_term(f_s_logits_s, f_s_logits_s_to_t))


def discriminator_accuracy(real_logits, fake_logits, mode="log"):
    """Fraction of real and fake inputs the discriminator classifies correctly (the feature-stage gate).

    The decision threshold is where the GAN objective puts the boundary: logit 0 (probability 1/2) for "log";
    output 1/2, halfway between the targets 1 (real) and 0 (fake), for "lsgan"."""
    threshold = 0.5 if mode == "lsgan" else 0.0
    real = tf.cast(tf.cast(real_logits, tf.float32) > threshold, tf.float32)
    fake = tf.cast(tf.cast(fake_logits, tf.float32) <= threshold, tf.float32)
    return 0.5 * (tf.reduce_mean(real) + tf.reduce_mean(fake))



# Self-training after CyCADA (not in the paper): AdaMatch (Berthelot et al., ICLR 2022, Algorithm 1 there).
def distribution_alignment(target_probabilities, source_probabilities):
    """AdaMatch's distribution alignment: the target predictions rescaled by the ratio of the mean source
    prediction to the mean target prediction, then renormalised, so that the pseudo-labels follow the
    (labelled) source class distribution instead of the model's bias on the target domain."""
    target = tf.cast(target_probabilities, tf.float32)
    ratio = tf.reduce_mean(tf.cast(source_probabilities, tf.float32), axis=0) / (
        tf.reduce_mean(target, axis=0) + 1e-6)
    aligned = target * ratio
    return aligned / tf.reduce_sum(aligned, axis=-1, keepdims=True)


def relative_confidence_threshold(source_probabilities, confidence, labels=None):
    """AdaMatch's threshold: `confidence` times the mean top probability on the (weakly augmented) labelled
    source batch, so it follows how confident the model is on data whose labels it knows.

    With `labels` (one per row of source_probabilities, -1 for rows that do not count), one threshold per
    class instead, as class-balanced self-training does for segmentation (Zou et al. 2018), so that rare
    classes, predicted with less confidence, still get pseudo-labels: `confidence` times the mean probability
    the model gives class k on the source examples of class k; the global threshold for classes absent from
    the batch. Returns a scalar, or a vector over the classes."""
    p = tf.cast(source_probabilities, tf.float32)
    overall = confidence * tf.reduce_mean(tf.reduce_max(p, axis=-1))
    if labels is None:
        return overall
    one_hot = tf.one_hot(labels, tf.shape(p)[-1])  # all zeros for -1
    count = tf.reduce_sum(one_hot, axis=0)
    own = tf.reduce_sum(one_hot * p, axis=0) / tf.maximum(count, 1.0)
    return tf.where(count > 0, confidence * own, overall)


def pseudo_label_loss(pseudo_probabilities, logits, threshold):
    """FixMatch's unlabelled term: cross-entropy of the strongly augmented view's logits against the argmax of
    the weak view's (aligned) prediction, for the examples whose prediction passes `threshold` (a scalar, or
    one per class: the threshold of the predicted class), averaged over all examples. Returns (loss, fraction
    of examples kept)."""
    pseudo = tf.stop_gradient(tf.cast(pseudo_probabilities, tf.float32))
    labels = tf.argmax(pseudo, axis=-1, output_type=tf.int32)
    threshold = tf.gather(tf.broadcast_to(threshold, tf.shape(pseudo)[-1:]), labels)
    keep = tf.cast(tf.reduce_max(pseudo, axis=-1) >= threshold, tf.float32)
    terms = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(logits, tf.float32))
    return tf.reduce_mean(keep * terms), tf.reduce_mean(keep)


def weighted_pixel_loss(labels, logits, weights):
    """DACS' mixed-crop term: cross-entropy per pixel against integer `labels`, each term times its weight
    (batch, height, width), averaged over all pixels."""
    terms = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32),
                                                           logits=tf.cast(logits, tf.float32))
    return tf.reduce_mean(terms * tf.cast(weights, tf.float32))
