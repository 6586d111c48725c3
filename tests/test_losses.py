"""Each loss of Eq. 1-5 against a hand computation in numpy on small fixed arrays."""

import numpy as np
import pytest
import tensorflow as tf

from cycada_tf.train import losses

LOGITS = np.array([[2.0, -1.0, 0.5, 0.0],
                   [0.1, 0.2, 3.0, -2.0],
                   [-1.0, 4.0, 0.0, 1.0]], "float32")
LABELS = np.array([0, 3, 1], "int32")
REAL = np.array([[1.5], [-0.5], [0.0], [3.0]], "float32")
FAKE = np.array([[-2.0], [0.7], [0.0]], "float32")


def _log_softmax(z):
    z = z.astype("float64")
    return z - z.max(-1, keepdims=True) - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True))


def _cross_entropy(logits, labels):
    return -np.mean(_log_softmax(logits)[np.arange(len(labels)), labels])


def _log_sigmoid(z):
    return -np.log1p(np.exp(-z.astype("float64")))


def test_task_loss_is_softmax_cross_entropy_eq1():
    # Eq. 1: -E[sum_k 1[k = y] log softmax(f(x))_k]
    expected = -np.mean([_log_softmax(LOGITS)[i, y] for i, y in enumerate(LABELS)])
    assert float(losses.task_loss(LABELS, LOGITS)) == pytest.approx(expected, rel=1e-6)


def test_discriminator_log_loss_eq2():
    # -E[log D(real)] - E[log(1 - D(fake))], D = sigmoid of the logit; log(1 - sigmoid(z)) = log sigmoid(-z)
    expected = -np.mean(_log_sigmoid(REAL)) - np.mean(_log_sigmoid(-FAKE))
    value = float(losses.gan_discriminator_loss(REAL, FAKE, "log"))
    assert value == pytest.approx(expected, rel=1e-6)


def test_discriminator_log_loss_averages_over_every_position_of_a_map():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(2, 3, 3, 1)).astype("float32"), rng.normal(size=(2, 3, 3, 1)).astype("float32")
    expected = -np.mean(_log_sigmoid(real)) - np.mean(_log_sigmoid(-fake))
    assert float(losses.gan_discriminator_loss(real, fake)) == pytest.approx(expected, rel=1e-6)


def test_generator_log_loss_is_the_non_saturating_form():
    expected = -np.mean(_log_sigmoid(FAKE))  # -E[log D(G(x))]
    assert float(losses.gan_generator_loss(FAKE, "log")) == pytest.approx(expected, rel=1e-6)
    saturating = np.mean(_log_sigmoid(-FAKE))  # E[log(1 - D(G(x)))], the form written in Eq. 2
    assert expected != pytest.approx(saturating)


def test_lsgan_losses():
    d = float(losses.gan_discriminator_loss(REAL, FAKE, "lsgan"))
    assert d == pytest.approx(np.mean((REAL - 1.0) ** 2) + np.mean(FAKE ** 2), rel=1e-6)
    g = float(losses.gan_generator_loss(FAKE, "lsgan"))
    assert g == pytest.approx(np.mean((FAKE - 1.0) ** 2), rel=1e-6)


def test_discriminator_loss_is_small_when_it_is_right_and_large_when_it_is_wrong():
    for mode in ("log", "lsgan"):
        right = float(losses.gan_discriminator_loss(np.full((4, 1), 5.0), np.full((4, 1), -5.0), mode))
        wrong = float(losses.gan_discriminator_loss(np.full((4, 1), -5.0), np.full((4, 1), 5.0), mode))
        assert right < wrong, mode


def test_cycle_consistency_loss_eq3():
    rng = np.random.default_rng(1)
    x_s, rec_s = rng.uniform(-1, 1, (2, 2, 4, 4, 1)).astype("float32")  # grey source, colour target
    x_t, rec_t = rng.uniform(-1, 1, (2, 2, 4, 4, 3)).astype("float32")
    expected = np.mean(np.abs(rec_s - x_s)) + np.mean(np.abs(rec_t - x_t))  # mean absolute error per pixel
    assert float(losses.cycle_consistency_loss(x_s, rec_s, x_t, rec_t)) == pytest.approx(expected, rel=1e-6)
    assert float(losses.cycle_consistency_loss(x_s, x_s, x_t, x_t)) == 0.0


def test_semantic_consistency_loss_eq4():
    rng = np.random.default_rng(2)
    logits_t, logits_t_to_s, logits_s, logits_s_to_t = (rng.normal(size=(5, 4)).astype("float32")
                                                        for _ in range(4))
    # L_task(f_S, G_TS(x_t), p(f_S, x_t)) + L_task(f_S, G_ST(x_s), p(f_S, x_s)), p = argmax
    expected = (_cross_entropy(logits_t_to_s, logits_t.argmax(-1))
                + _cross_entropy(logits_s_to_t, logits_s.argmax(-1)))
    value = float(losses.semantic_consistency_loss(logits_t, logits_t_to_s, logits_s, logits_s_to_t))
    assert value == pytest.approx(expected, rel=1e-6)
    # the labels come from the untranslated images: swapping the roles gives another number
    swapped = float(losses.semantic_consistency_loss(logits_t_to_s, logits_t, logits_s_to_t, logits_s))
    assert swapped != pytest.approx(expected, rel=1e-3)


def test_semantic_consistency_loss_sends_no_gradient_through_the_pseudo_labels():
    rng = np.random.default_rng(3)
    logits_t = tf.Variable(rng.normal(size=(5, 4)).astype("float32"))
    logits_t_to_s = tf.Variable(rng.normal(size=(5, 4)).astype("float32"))
    logits_s = tf.Variable(rng.normal(size=(5, 4)).astype("float32"))
    logits_s_to_t = tf.Variable(rng.normal(size=(5, 4)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = losses.semantic_consistency_loss(logits_t, logits_t_to_s, logits_s, logits_s_to_t)
    grads = tape.gradient(loss, [logits_t, logits_t_to_s, logits_s, logits_s_to_t],
                          unconnected_gradients=tf.UnconnectedGradients.ZERO)
    np.testing.assert_array_equal(grads[0].numpy(), 0.0)
    np.testing.assert_array_equal(grads[2].numpy(), 0.0)
    # the translated images' logits get the cross-entropy gradient (softmax - onehot(pseudo)) / N
    for translated, source, grad in ((logits_t_to_s, logits_t, grads[1]), (logits_s_to_t, logits_s, grads[3])):
        z = translated.numpy().astype("float64")
        softmax = np.exp(z - z.max(-1, keepdims=True))
        softmax /= softmax.sum(-1, keepdims=True)
        onehot = np.eye(4)[source.numpy().argmax(-1)]
        np.testing.assert_allclose(grad.numpy(), (softmax - onehot) / 5, atol=1e-6)


def test_semantic_loss_gradient_when_one_tensor_feeds_both_sides():
    # f_S(x) and f_S(G(x)) computed from the same tensor: only the cross-entropy side carries gradient
    z = tf.Variable(LOGITS)
    with tf.GradientTape() as tape:
        loss = losses.semantic_consistency_loss(z, z, z, z)
    zz = LOGITS.astype("float64")
    softmax = np.exp(zz - zz.max(-1, keepdims=True))
    softmax /= softmax.sum(-1, keepdims=True)
    expected = 2 * (softmax - np.eye(4)[LOGITS.argmax(-1)]) / len(LOGITS)
    np.testing.assert_allclose(tape.gradient(loss, z).numpy(), expected, atol=1e-6)


def test_discriminator_accuracy():
    # real counted right when its logit is > 0 (D > 1/2), fake when its logit is <= 0
    real_right = np.mean(REAL > 0)    # 2 of 4
    fake_right = np.mean(FAKE <= 0)   # 2 of 3
    expected = 0.5 * (real_right + fake_right)
    assert float(losses.discriminator_accuracy(REAL, FAKE)) == pytest.approx(expected, rel=1e-6)
    assert float(losses.discriminator_accuracy(np.ones((4, 2, 2, 1)), -np.ones((4, 2, 2, 1)))) == 1.0
    assert float(losses.discriminator_accuracy(-np.ones((4, 1)), np.ones((4, 1)))) == 0.0


def test_task_loss_with_an_ignore_label_averages_over_the_labelled_pixels_only():
    # a 1x3 "label map" of 4 classes: the middle pixel is ignored (255), whatever its logits
    logits = LOGITS[None]  # (1, 3, 4)
    labels = np.array([[0, 255, 1]], "int32")
    expected = -(_log_softmax(LOGITS[0])[0] + _log_softmax(LOGITS[2])[1]) / 2
    np.testing.assert_allclose(losses.task_loss(labels, logits, ignore_label=255).numpy(), expected, rtol=1e-6)
    # the ignored pixel's logits do not matter
    changed = logits.copy()
    changed[0, 1] = [50.0, -50.0, 0.0, 9.0]
    np.testing.assert_allclose(losses.task_loss(labels, changed, ignore_label=255).numpy(), expected, rtol=1e-6)
    # no labelled pixel: 0, not NaN; and without ignore_label the digits' mean is unchanged
    assert losses.task_loss(np.full((1, 3), 255, "int32"), logits, ignore_label=255).numpy() == 0.0
    np.testing.assert_allclose(losses.task_loss(LABELS, LOGITS, ignore_label=255).numpy(),
                               losses.task_loss(LABELS, LOGITS).numpy(), rtol=1e-6)


def test_discriminator_accuracy_decides_at_the_boundary_of_its_gan_objective():
    real, fake = np.array([0.7, 0.4, -0.2], "float32"), np.array([0.3, 0.6, 0.1], "float32")
    # log: logit > 0 is "real" -> real 2/3 right, fake 0/3 right
    assert float(losses.discriminator_accuracy(real, fake)) == pytest.approx(0.5 * (2 / 3 + 0.0))
    # lsgan: output > 1/2 is "real" (targets 1 and 0) -> real 1/3 right, fake 2/3 right
    assert float(losses.discriminator_accuracy(real, fake, "lsgan")) == pytest.approx(0.5 * (1 / 3 + 2 / 3))
