"""Criteria that train a fresh network on a candidate's predicted classes of the target images.

Reverse validation (Zhong et al. 2010, used to select DANN's models in Ganin et al. 2016) scores that network
on labelled source data. Labels that follow the target images' real classes teach it something that holds on
the source domain; but the source images are another domain, and labels that repeat the source model's
mistakes transfer back to it best (on fonts -> uci it ranked the source model first and the best model last).

Held-out learnability stays in the target domain: the network learns the candidate's labels on one half of
the target images and predicts the other half; the score is Cohen's kappa of its predictions against the
candidate's labels there, over both folds. Labels that follow the structure of the target images (the
cluster assumption self-training rests on) generalise from one half to the other; labels whose mistakes cut
across that structure do not; collapsed labels agree by chance only, and kappa counts chance as 0.

Every candidate's network starts from the same initial weights and sees the same batches of the same images
(the seed's): only the labels differ."""

import random

import keras
import numpy as np
import tensorflow as tf

from cycada_tf.train import losses

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


def _fit(task, images, labels, seed):
    """A network trained from scratch (task.reverse_network) for task.reverse_steps steps on `images` (a list
    of batches) labelled by `labels` (batches alike)."""
    net, step = _fresh(task, seed)
    rng, data = np.random.RandomState(seed), task.reverse_data(images, labels)
    for _ in range(task.reverse_steps):
        x, y = task.reverse_batch(data, rng)
        step(tf.constant(x), tf.constant(y))
    return net


def _fresh(task, seed):
    """(network, step): the network reverse validation trains, as built under `seed`, its Adam optimizer as
    new, and the traced step that trains them. Built and traced once per task and seed; every later call puts
    back the network's variables (its random seeds' state included), the optimizer's, and the global random
    state building them left (what draws next from it, a translator's style code for one, draws the same),
    as building them anew would, so each candidate's fit is the same computation without tracing again."""
    fits = task.__dict__.setdefault("_reverse_fits", {})
    if seed in fits:
        net, step, variables, start, global_state = fits[seed]
        keras.utils.set_random_seed(seed)
        for variable, value in zip(variables, start):
            variable.assign(value)
        random.setstate(global_state[0])
        np.random.set_state(global_state[1])
        return net, step
    keras.utils.set_random_seed(seed)
    net = task.reverse_network()
    optimizer = keras.optimizers.Adam(REVERSE_LR)
    optimizer.build(net.trainable_variables)
    variables = list(net.variables) + list(optimizer.variables)
    fits[seed] = (net, _step(net, optimizer, task.ignore_label), variables, [v.numpy().copy() for v in variables],
                  (random.getstate(), np.random.get_state()))
    return fits[seed][:2]


def score(task, images, labels, seed, translate=None):
    """Reverse validation: the task's score on its labelled source data (task.reverse_score) of a network
    trained on `images` (a list of batches of raw target images) labelled by `labels` (the candidate's
    predicted classes, batches alike); scored on the source images through `translate` if given (G_S->T:
    target-looking images with their source labels)."""
    return task.reverse_score(_fit(task, images, labels, seed), translate)


def kappa(confusion):
    """Cohen's kappa of a confusion matrix (counts): agreement beyond chance, 0 where chance explains all."""
    confusion = np.asarray(confusion, np.float64)
    total = confusion.sum()
    observed = np.trace(confusion) / total
    expected = float(np.sum(confusion.sum(0) * confusion.sum(1))) / total ** 2
    return 0.0 if expected >= 1.0 else float((observed - expected) / (1.0 - expected))


def _same_shape_batches(examples, size=100):
    """(images, labels) numpy batches of consecutive `examples` ((image, label) pairs) of one shape."""
    batch = []
    for example in examples:
        if batch and (len(batch) == size or batch[0][0].shape != example[0].shape):
            yield np.stack([x for x, _ in batch]), np.stack([y for _, y in batch])
            batch = []
        batch.append(example)
    if batch:
        yield np.stack([x for x, _ in batch]), np.stack([y for _, y in batch])


def learnability(task, images, labels, seed, folds=2):
    """Held-out learnability: Cohen's kappa, over `folds` folds of the target images (split by the seed),
    of a network trained on the other folds' `labels` (the candidate's predicted classes; for segmentation,
    label maps) predicting the held-out fold, against the candidate's labels there."""
    examples = [(x, y) for batch, maps in zip(images, labels) for x, y in zip(batch, maps)]
    parts = np.array_split(np.random.RandomState(seed).permutation(len(examples)), folds)
    classes = task.num_classes
    confusion = np.zeros((classes, classes), np.int64)
    for k, held in enumerate(parts):
        train = [examples[i] for j, part in enumerate(parts) if j != k for i in part]
        net = _fit(task, [x[None] for x, _ in train], [y[None] for _, y in train], seed)
        for x, y in _same_shape_batches([examples[i] for i in held]):
            predicted = np.argmax(task.probabilities(net, tf.constant(x)), axis=-1)
            confusion += np.bincount(y.astype(np.int64).ravel() * classes + predicted.ravel(),
                                     minlength=classes * classes).reshape(classes, classes)
    return kappa(confusion)
