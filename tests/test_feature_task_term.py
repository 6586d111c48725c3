"""Eq. 6's task term in the feature stage (--feature_task_weight): its gradient reaches every weight of f_T on
labelled translated source batches, it joins the fooling loss in f_T's one gated update (a closed gate skips
both), ignore-label pixels count nowhere, loss scaling treats it as the other losses; at weight 0 the step is
the adversarial one alone. --feature_recipe=release reads D_feat's reference side from f_T itself."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cycada_tf.models import lenet, segmenter, small_fcn
from cycada_tf.stages.feature import FeatureAdaptation
from cycada_tf.tasks import segmentation
from cycada_tf.train import losses, precision

SIZE, BATCH, LR = 16, 8, 0.05


def _images(seed, shape=(BATCH, SIZE, SIZE, 1)):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, shape).astype("float32"))


def _labels(seed):
    return tf.constant(np.random.default_rng(seed).integers(0, 10, BATCH).astype("int32"))


def _lenet(seed, dtype=None):
    keras.utils.set_random_seed(seed)
    net = lenet.LeNet(10, dtype=dtype)
    net.build((None, SIZE, SIZE, 1))
    return net


def _digit_stage(task_weight, gate=-1.0, dtype=None, shared=False, ref_seed=0):
    """f_ref and f_t alike (f_t from f_ref's weights, as the stage starts), plain SGD on both sides; the gate
    open unless `gate` says otherwise. ref_seed != 0: f_ref's weights differ from f_t's."""
    f_ref, f_t = _lenet(ref_seed, dtype), _lenet(0, dtype)
    keras.utils.set_random_seed(5)
    d_feat = lenet.feature_discriminator(lenet.FEATURE_DIM, hidden=16, dtype=dtype)
    model = FeatureAdaptation(f_ref, f_t, d_feat, gate=gate, task_weight=task_weight, shared=shared, dtype=dtype)
    model.compile(precision.optimizer(keras.optimizers.SGD(LR), dtype or "float32"),
                  precision.optimizer(keras.optimizers.SGD(LR), dtype or "float32"), auto_scale_loss=False)
    model.build_optimizers()
    return model


def _batch(task_weight, seed=1):
    x_s, x_t = _images(seed), _images(seed + 1)
    return ((x_s, _labels(seed + 2)), x_t) if task_weight else (x_s, x_t)


def _step(model, data):
    """train_step's logs, and how much each variable of f_T moved."""
    before = [v.numpy().copy() for v in model.f_t.trainable_variables]
    logs = model.train_step(data)
    return logs, [v.numpy() - b for v, b in zip(model.f_t.trainable_variables, before)]


def _expected_step(model, weights, data, task_weight):
    """What plain SGD must do to f_T from `weights`: -lr times the gradient of Eq. 6's f_T terms, the fooling
    loss through D_feat as the step left it, plus task_weight x L_task on (x_s, y_s); over the encoder alone
    when there is no task term (D_feat reads the features)."""
    net = _lenet(0)
    net.set_weights(weights)
    (x_s, y_s), x_t = data if task_weight else ((data[0], None), data[1])
    with tf.GradientTape() as tape:
        loss = losses.gan_generator_loss(model.d_feat(net.encoder(x_t, training=False), training=False), "log")
        if task_weight:
            loss += task_weight * losses.task_loss(y_s, net(x_s, training=False))
    trained = set(id(v) for v in (net.trainable_variables if task_weight else net.encoder.trainable_variables))
    grads = tape.gradient(loss, net.trainable_variables)  # None: the head, without a task term
    return [-LR * g.numpy() if id(v) in trained else np.zeros(v.shape, "float32")
            for v, g in zip(net.trainable_variables, grads)]


def test_the_task_terms_gradient_reaches_every_weight_of_f_t():
    model = _digit_stage(1.0)
    (x_s, y_s), _ = _batch(1.0)
    with tf.GradientTape() as tape:
        task = losses.task_loss(y_s, model.f_t(x_s, training=False))
    grads = tape.gradient(task, model.f_variables)
    assert len(model.f_variables) == len(model.f_t.trainable_variables)  # the head too, not the encoder alone
    assert all(float(tf.norm(g)) > 0 for g in grads), [v.path for v, g in zip(model.f_variables, grads)]


@pytest.mark.parametrize("task_weight", [0.0, 1.0, 0.5])
def test_the_gated_step_is_sgd_on_the_fooling_loss_plus_the_weighted_task_term(task_weight):
    model = _digit_stage(task_weight)
    weights = model.f_t.get_weights()
    data = _batch(task_weight)
    logs, moved = _step(model, data)
    assert float(logs["gate_open"]) == 1.0 and int(model.updates.numpy()) == 1
    assert ("task_loss" in logs) == bool(task_weight)
    expected = _expected_step(model, weights, data, task_weight)
    assert max(np.abs(m).max() for m in moved) > 1e-5  # a step large enough to compare
    for got, want in zip(moved, expected):
        np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-6)  # float32 rounding of w + dw
    head = model.f_t.classifier.trainable_variables
    head_moved = [m for v, m in zip(model.f_t.trainable_variables, moved) if any(v is h for h in head)]
    assert all(np.abs(m).max() > 0 for m in head_moved) == bool(task_weight)  # weight 0: the encoder alone


def test_the_task_term_changes_f_ts_step_for_the_same_seed_and_batch():
    (x_s, y_s), x_t = _batch(1.0)
    moved = {weight: _step(_digit_stage(weight), ((x_s, y_s), x_t) if weight else (x_s, x_t))[1]
             for weight in (0.0, 1.0)}
    assert any(not np.allclose(a, b, atol=1e-7) for a, b in zip(moved[0.0], moved[1.0]))


def test_a_closed_gate_skips_the_task_term_too_and_reports_it():
    model = _digit_stage(1.0, gate=1.01)  # accuracy is at most 1: the gate never opens
    logs, moved = _step(model, _batch(1.0))
    assert float(logs["gate_open"]) == 0.0 and int(model.updates.numpy()) == 0
    assert not any(np.abs(m).max() > 0 for m in moved)
    assert 0.5 < float(logs["task_loss"]) < 10  # measured every step: about ln 10 for a fresh LeNet


def test_the_release_recipe_reads_d_feats_reference_side_from_f_t():
    """With shared weights f_ref plays no part: a model whose f_ref is another network's steps exactly as
    one whose f_ref is f_t's copy, and both differ from the frozen reference's step with that other f_ref."""
    data = _batch(1.0)
    d_losses = {}
    for name, shared, ref_seed in (("shared", True, 7), ("same", False, 0), ("other", False, 7)):
        logs, moved = _step(_digit_stage(1.0, shared=shared, ref_seed=ref_seed), data)
        d_losses[name] = float(logs["d_loss"])
    assert d_losses["shared"] == pytest.approx(d_losses["same"], rel=1e-6)
    assert d_losses["other"] != pytest.approx(d_losses["same"], rel=1e-3)


def test_float16_loss_scaling_takes_the_task_term_as_the_other_losses():
    moved = {}
    for name in ("float32", "mixed_float16"):
        logs, moved[name] = _step(_digit_stage(1.0, dtype=name), _batch(1.0))  # dropout off: inference mode
        assert logs["task_loss"].dtype == tf.float32
    for full, half in zip(moved["float32"], moved["mixed_float16"]):
        # float16 activations round to ~1e-3 relative; a loss scale left in the update would be 2**15 times off.
        np.testing.assert_allclose(half, full, atol=0.1 * np.abs(full).max())


def _segmentation_stage(task_weight):
    keras.utils.set_random_seed(0)
    net = small_fcn.small_fcn(3, width=4)
    nets = []
    for _ in range(2):
        copy = small_fcn.small_fcn(3, width=4)
        copy.set_weights(net.get_weights())
        nets.append(copy)
    encoders = [keras.Model(n.inputs, n.get_layer(segmenter.FEATURES).output) for n in nets]
    keras.utils.set_random_seed(5)
    d_feat = segmentation.feature_discriminator(encoders[0].output.shape[-1])
    model = FeatureAdaptation(*nets, d_feat, gate=-1.0, encoders=encoders, task_weight=task_weight,
                              ignore_label=segmentation.SegmentationTask.ignore_label)
    model.compile(keras.optimizers.SGD(LR), keras.optimizers.SGD(LR))
    model.build_optimizers()
    return model


def test_ignored_pixels_count_nowhere_in_the_segmentation_task_term():
    ignore = segmentation.SegmentationTask.ignore_label
    x_s, x_t = _images(1, (2, 16, 32, 3)), _images(2, (2, 16, 32, 3))
    labels = np.random.default_rng(3).integers(0, 3, (2, 16, 32)).astype("int32")
    labels[:, :, 16:] = ignore
    model = _segmentation_stage(1.0)
    logits = model.f_t(x_s, training=False).numpy().astype("float64")
    logs = model.train_step(((x_s, tf.constant(labels)), x_t))
    keep = labels != ignore  # by hand: the mean cross-entropy of the labelled pixels alone
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    by_hand = -np.take_along_axis(log_p, np.where(keep, labels, 0)[..., None], -1)[..., 0][keep].mean()
    assert float(logs["task_loss"]) == pytest.approx(by_hand, rel=1e-4)

    # Every pixel ignored: no task gradient, f_T steps as without the term (plain SGD: the head stays).
    moved = {}
    for weight in (0.0, 1.0):
        model = _segmentation_stage(weight)
        data = ((x_s, tf.fill(labels.shape, ignore)), x_t) if weight else (x_s, x_t)
        logs, moved[weight] = _step(model, data)
    assert float(logs["task_loss"]) == 0.0
    assert max(np.abs(m).max() for m in moved[0.0]) > 0
    for with_term, without in zip(moved[1.0], moved[0.0]):
        np.testing.assert_allclose(with_term, without, rtol=1e-5, atol=1e-8)


def test_a_negative_weight_is_refused_naming_the_flag():
    with pytest.raises(ValueError, match="--feature_task_weight"):
        _digit_stage(-1.0)
