"""Segmentation metrics against a confusion matrix and scores computed by hand (ignore label, absent classes)."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from cycada_tf.reporting import segmentation_metrics as metrics

# 2x4 ground truth (255 = ignore) and prediction, 4 classes; class 3 is in neither (its pixel is ignored).
Y_TRUE = np.array([[0, 0, 1, 255],
                   [2, 2, 1, 0]])
Y_PRED = np.array([[0, 1, 1, 3],
                   [2, 0, 1, 0]])
# By hand, row = ground truth, column = prediction; the ignored pixel (predicted 3) is not counted:
# class 0 pixels (0,0)->0 (0,1)->1 (1,3)->0; class 1 (0,2)->1 (1,2)->1; class 2 (1,0)->2 (1,1)->0.
MATRIX = np.array([[2, 1, 0, 0],
                   [0, 2, 0, 0],
                   [1, 0, 1, 0],
                   [0, 0, 0, 0]])
# IoU_i = n_ii / (t_i + sum_j n_ji - n_ii): class 0: 2 / (3 + 3 - 2); class 1: 2 / (2 + 3 - 2);
# class 2: 1 / (2 + 1 - 1); class 3: 0 / 0 -> no IoU, left out of the mean.
IOU = [2 / 4, 2 / 3, 1 / 2, None]
MIOU = (2 / 4 + 2 / 3 + 1 / 2) / 3
FWIOU = (3 * 2 / 4 + 2 * 2 / 3 + 2 * 1 / 2) / 7   # weights t_i = 3, 2, 2 of 7 counted pixels
PIXEL_ACCURACY = 5 / 7


def test_confusion_matrix_by_hand_ignores_255():
    np.testing.assert_array_equal(metrics.confusion_matrix(Y_TRUE, Y_PRED, 4).numpy(), MATRIX)
    # scores with a class axis are reduced by argmax
    logits = tf.one_hot(Y_PRED, 4) * 5.0 - 1.0
    np.testing.assert_array_equal(metrics.confusion_matrix(Y_TRUE, logits, 4).numpy(), MATRIX)


def test_native_resolution_upsamples_logits_before_the_argmax():
    """Two predicted pixels, upsampled 2x to four labelled ones: class 1 weakly (logits 0, 1), class 0 strongly
    (10, 0). Bilinear logits give the second output pixel 0.75 * (0, 1) + 0.25 * (10, 0) = (2.5, 0.75): class
    0. Nearest-upsampled class ids (the argmax first) would give it class 1, and score the labels 1, 1, 0, 0
    perfectly; at_label_size gives the logit answer, 1, 0, 0, 0."""
    logits = tf.constant([[[[0.0, 1.0], [10.0, 0.0]]]])  # (1, 1, 2, 2): one row of two pixels
    labels = tf.constant([[[1, 1, 0, 0]] * 2])             # (1, 2, 4)
    upsampled = metrics.at_label_size(logits, labels)
    assert upsampled.shape == (1, 2, 4, 2) and upsampled.dtype == tf.float32
    np.testing.assert_allclose(upsampled[0, 0, 1].numpy(), [2.5, 0.75])
    assert tf.argmax(upsampled, -1).numpy().tolist() == [[[1, 0, 0, 0]] * 2]
    np.testing.assert_array_equal(metrics.confusion_matrix(labels, upsampled, 2).numpy(), [[4, 0], [2, 2]])
    ids_upsampled = tf.image.resize(tf.argmax(logits, -1)[..., None], (2, 4), method="nearest")[..., 0]
    np.testing.assert_array_equal(metrics.confusion_matrix(labels, ids_upsampled, 2).numpy(), [[4, 0], [0, 4]])
    # logits already at the labels' size, and a classifier's (batch, classes), are passed through untouched
    assert metrics.at_label_size(upsampled, labels) is upsampled
    scores = tf.constant([[1.0, 2.0]])
    assert metrics.at_label_size(scores, tf.constant([1])) is scores


def test_scores_by_hand_absent_class_is_nan_not_zero():
    summary = metrics.summary(MATRIX, classes=("road", "car", "sky", "bus"))
    assert summary["miou"] == pytest.approx(MIOU)
    assert summary["fwiou"] == pytest.approx(FWIOU)
    assert summary["pixel_accuracy"] == pytest.approx(PIXEL_ACCURACY)
    assert list(summary["per_class_iou"]) == ["road", "car", "sky", "bus"]
    for got, want in zip(summary["per_class_iou"].values(), IOU):
        assert got == pytest.approx(want) if want is not None else got is None
    raw = metrics.scores(MATRIX)
    assert math.isnan(float(raw["per_class_iou"][3]))
    np.testing.assert_array_equal(raw["present"].numpy(), [True, True, True, False])
    # the paper's 1/N over all 4 classes with 0 for the absent one would give a lower, wrong number
    assert summary["miou"] > sum(x for x in IOU if x) / 4


def test_a_class_only_predicted_counts_with_iou_zero():
    y_true = np.array([0, 0, 1, 1])
    y_pred = np.array([0, 2, 1, 1])  # class 2 never in the ground truth, predicted once
    summary = metrics.summary(metrics.confusion_matrix(y_true, y_pred, 3))
    assert summary["per_class_iou"] == {"0": pytest.approx(0.5), "1": pytest.approx(1.0), "2": 0.0}
    assert summary["miou"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert summary["fwiou"] == pytest.approx((2 * 0.5 + 2 * 1.0) / 4)  # class 2 weighs t_2 = 0


def test_nothing_counted_gives_nan_scores_not_an_error():
    matrix = metrics.confusion_matrix(np.full((2, 2), 255), np.zeros((2, 2)), 3)
    assert int(tf.reduce_sum(matrix)) == 0
    summary = metrics.summary(matrix)
    assert summary["miou"] is None and summary["pixel_accuracy"] is None and summary["fwiou"] is None


def test_streaming_metric_accumulates_resets_and_runs_in_a_graph():
    metric = metrics.ConfusionMatrix(4)
    metric.update_state(Y_TRUE[:1], Y_PRED[:1])
    metric.update_state(Y_TRUE[1:], Y_PRED[1:])
    np.testing.assert_array_equal(metric.matrix.numpy(), MATRIX)
    assert float(metric.result()) == pytest.approx(MIOU, abs=1e-6)
    assert metric.summary()["fwiou"] == pytest.approx(FWIOU)

    @tf.function
    def update(y_true, y_pred):
        metric.update_state(y_true, y_pred)

    update(tf.constant(Y_TRUE), tf.one_hot(Y_PRED, 4))
    np.testing.assert_array_equal(metric.matrix.numpy(), 2 * MATRIX)
    metric.reset_state()
    assert int(np.sum(metric.matrix.numpy())) == 0
    assert math.isnan(float(metric.result()))


def test_counts_stay_exact_past_float32_precision():
    big = 2 ** 25 + 1  # not representable in float32
    metric = metrics.ConfusionMatrix(2)
    metric.matrix.assign(np.array([[big, 0], [1, 0]], np.int64))
    metric.update_state(np.array([0]), np.array([0]))
    assert int(metric.matrix.numpy()[0, 0]) == big + 1
    assert metric.summary()["pixel_accuracy"] == pytest.approx((big + 1) / (big + 2), rel=1e-12)


def test_as_a_keras_metric_in_evaluate():
    model = keras.Sequential([keras.Input((2, 4, 4)), keras.layers.Identity()])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=255),
                  metrics=[metrics.ConfusionMatrix(4, name="miou")])
    logits = (tf.one_hot(Y_PRED, 4) * 5.0).numpy()[None]
    result = model.evaluate(logits, Y_TRUE[None], verbose=0, return_dict=True)
    assert result["miou"] == pytest.approx(MIOU, abs=1e-6)


@pytest.mark.parametrize("y_true, y_pred, words", [
    (np.array([0, 7]), np.array([0, 1]), "ground-truth id"),   # 7 is neither a class nor 255
    (np.array([0, 1]), np.array([0, 4]), "predicted id"),
])
def test_ids_outside_the_classes_are_errors(y_true, y_pred, words):
    with pytest.raises(tf.errors.InvalidArgumentError, match=words):
        metrics.confusion_matrix(y_true, y_pred, 4)
