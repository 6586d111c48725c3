"""Segmentation self-training (DACS): the ClassMix mask, the mixed crop, the weighted pixel loss by hand, and a
step that trains the student while the teacher only follows it."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cycada_tf.train import augment, losses
from cycada_tf.models import small_fcn
from cycada_tf.stages.class_mix import ClassMixSelfTraining

IGNORE = 255


def _labels():
    """Two 8x8 label maps: the first holds classes 0-3 and ignored pixels, the second class 5 only."""
    first = np.repeat(np.array([0, 1, 2, 3, IGNORE, 0, 1, 2]), 8).reshape(8, 8)
    return tf.constant(np.stack([first, np.full((8, 8), 5)]), tf.int32)


@pytest.mark.parametrize("in_graph", [False, True])
def test_class_mix_mask_pastes_half_the_present_classes_whole(in_graph):
    labels = _labels().numpy()
    seed = keras.random.SeedGenerator(0)
    fn = (lambda y: augment.class_mix_mask(y, 6, IGNORE, seed))
    fn = tf.function(fn) if in_graph else fn
    choices = set()
    for _ in range(20):
        mask = fn(tf.constant(labels)).numpy()
        chosen = set(np.unique(labels[0][mask[0] > 0]))
        assert len(chosen) == 2 and IGNORE not in chosen  # half of the 4 present classes, never the ignored
        for k in chosen:  # a chosen class is pasted whole
            assert (mask[0][labels[0] == k] == 1).all()
        assert (mask[1] == 1).all()  # one class present: ceil(1/2) = 1, the whole map
        choices.add(tuple(sorted(chosen)))
    assert len(choices) > 2  # the draw differs from step to step


def test_mix_takes_pasted_pixels_where_the_mask_is_one():
    pasted, background = tf.ones((1, 2, 2, 3)), -tf.ones((1, 2, 2, 3))
    mask = tf.constant([[[1.0, 0.0], [0.0, 1.0]]])
    mixed = augment.mix(pasted, background, mask).numpy()
    np.testing.assert_array_equal(mixed[0, :, :, 0], [[1, -1], [-1, 1]])


def test_weighted_pixel_loss_by_hand():
    labels = np.array([[[0, 1]]])
    logits = np.array([[[[2.0, 0.0], [0.0, 0.0]]]], np.float32)
    weights = np.array([[[1.0, 0.5]]], np.float32)
    expected = (np.log(1 + np.exp(-2.0)) * 1.0 + np.log(2.0) * 0.5) / 2
    assert losses.weighted_pixel_loss(labels, logits, weights).numpy() == pytest.approx(expected, rel=1e-5)


def _student_and_teacher(seed):
    """Two small FCNs of 6 classes for 16x32 crops, the teacher a copy of the student."""
    keras.utils.set_random_seed(seed)
    student, teacher = small_fcn.small_fcn(6, width=8), small_fcn.small_fcn(6, width=8)
    for net in (student, teacher):
        net.build((None, 16, 32, 3))
    teacher.set_weights(student.get_weights())
    return student, teacher


def test_a_step_trains_the_student_and_the_teacher_follows_it():
    student, teacher = _student_and_teacher(0)
    model = ClassMixSelfTraining(student, teacher, ema=0.9, ignore_label=IGNORE)
    model.compile(keras.optimizers.Adam(1e-2))
    model.build_optimizers()
    x_s, x_t = tf.random.uniform((2, 16, 32, 3), -1, 1), tf.random.uniform((2, 16, 32, 3), -1, 1)
    y_s = tf.random.uniform((2, 16, 32), 0, 6, tf.int32)
    before_s, before_t = student.get_weights(), teacher.get_weights()
    logs = model.train_step(((x_s, y_s), x_t))
    after_s, after_t = student.get_weights(), teacher.get_weights()
    assert all(np.isfinite(float(v)) for v in logs.values())
    assert 0.0 < float(logs["pasted_fraction"]) < 1.0
    kernel = 0  # the first kernel: the student moved by Adam, the teacher by 10% of the student's move
    moved = after_s[kernel] - before_s[kernel]
    assert np.abs(moved).max() > 1e-4
    np.testing.assert_allclose(after_t[kernel], 0.9 * before_t[kernel] + 0.1 * after_s[kernel], atol=1e-6)
    assert not teacher.trainable_weights  # no gradient ever reaches it


def test_the_guide_labels_the_target_crops_for_its_steps_then_the_teacher_does():
    student, teacher = _student_and_teacher(1)
    calls = []

    def guide(x):
        calls.append(1)  # traced once per branch build; the step's 'guided' output says which branch ran
        return tf.one_hot(tf.zeros(tf.shape(x)[:3], tf.int32), 6) * 10.0

    model = ClassMixSelfTraining(student, teacher, ignore_label=IGNORE, guide=guide, guide_steps=2,
                                 source_view=lambda x, training=False: -x)
    model.compile(keras.optimizers.Adam(1e-3))
    model.build_optimizers()
    batch = ((tf.random.uniform((2, 16, 32, 3), -1, 1), tf.random.uniform((2, 16, 32), 0, 6, tf.int32)),
             tf.random.uniform((2, 16, 32, 3), -1, 1))
    step = tf.function(model.train_step)
    guided = []
    for _ in range(4):
        for tracker in model.metrics:
            tracker.reset_state()
        guided.append(float(step(batch)["guided"]))
    assert guided == [1.0, 1.0, 0.0, 0.0]
    assert calls  # the guide was part of the step


def test_only_the_labeller_of_the_step_runs_guide_then_teacher():
    """With no guide weight after its steps, a step runs the guide while it guides and the teacher after (the
    other's forward pass is skipped; its probabilities would have had weight 0). Eager steps, calls counted."""
    student, teacher = _student_and_teacher(2)
    guide_calls, teacher_calls = [], []

    def guide(x):
        guide_calls.append(1)
        return tf.one_hot(tf.zeros(tf.shape(x)[:3], tf.int32), 6) * 10.0

    teacher_call = teacher.call
    teacher.call = lambda *args, **kwargs: teacher_calls.append(1) or teacher_call(*args, **kwargs)
    model = ClassMixSelfTraining(student, teacher, ignore_label=IGNORE, guide=guide, guide_steps=2)
    model.compile(keras.optimizers.Adam(1e-3))
    model.build_optimizers()
    batch = ((tf.random.uniform((2, 16, 32, 3), -1, 1), tf.random.uniform((2, 16, 32), 0, 6, tf.int32)),
             tf.random.uniform((2, 16, 32, 3), -1, 1))
    counts = []
    for _ in range(4):
        model.train_step(batch)
        counts.append((len(guide_calls), len(teacher_calls)))
    assert counts == [(1, 0), (2, 0), (2, 1), (2, 2)]


def test_alignment_follows_the_labelled_class_frequencies():
    student, teacher = _student_and_teacher(2)
    model = ClassMixSelfTraining(student, teacher, ignore_label=IGNORE, align=True)
    model.compile(keras.optimizers.Adam(1e-3))
    model.build_optimizers()
    labels = np.full((2, 16, 32), 2)
    labels[:, :4] = IGNORE  # ignored pixels count for no class
    batch = ((tf.random.uniform((2, 16, 32, 3), -1, 1), tf.constant(labels, tf.int32)),
             tf.random.uniform((2, 16, 32, 3), -1, 1))
    logs = model.train_step(batch)
    assert np.isfinite(float(logs["loss"]))
    expected = 0.99 * np.ones(6) + 0.01 * np.eye(6)[2]  # a moving average from ones towards class 2 only
    np.testing.assert_allclose(model.source_prior.numpy(), expected, rtol=1e-6)
    assert model.target_prior.numpy().sum() == pytest.approx(0.99 * 6 + 0.01, rel=1e-5)
