"""Reverse validation (Zhong et al. 2010, used to select DANN's models in Ganin et al. 2016): a candidate's
predicted classes of the target images train a fresh network, which is then scored on labelled source data.
Labels that follow the target images' real classes teach it something that holds on the source domain; labels
that are confidently wrong, or that collapse onto a few classes, do not. Every candidate's reverse network
starts from the same initial weights and sees the same batches (the seed's): only the labels differ."""

import keras
import numpy as np
import tensorflow as tf

from cycada_tf import losses

REVERSE_LR = 1e-3  # Adam


def _step(net, optimizer, ignore_label):
    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = losses.task_loss(y, net(x, training=True), ignore_label=ignore_label)
        grads = tape.gradient(loss, net.trainable_variables)
        optimizer.apply_gradients(zip(grads, net.trainable_variables))
        return loss
    return step


def score(task, images, labels, seed, translate=None):
    """The task's score on its labelled source data (task.reverse_score) of a network trained from scratch
    (task.reverse_network) for task.reverse_steps steps on `images` (a list of batches of raw target images)
    labelled by `labels` (the candidate's predicted classes, batches alike); scored on the source images
    through `translate` if given (G_S->T: target-looking images with their source labels)."""
    keras.utils.set_random_seed(seed)
    net = task.reverse_network()
    optimizer = keras.optimizers.Adam(REVERSE_LR)
    optimizer.build(net.trainable_variables)
    step = _step(net, optimizer, task.ignore_label)
    rng, data = np.random.RandomState(seed), task.reverse_data(images, labels)
    for _ in range(task.reverse_steps):
        x, y = task.reverse_batch(data, rng)
        step(tf.constant(x), tf.constant(y))
    return task.reverse_score(net, translate)
