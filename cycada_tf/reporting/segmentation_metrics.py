"""Segmentation metrics from a streaming confusion matrix: per-class IoU, mIoU, fwIoU, pixel accuracy (Sec. 4.2).

The paper (Sec. 4.2): n_ij pixels of class i predicted as j, t_i = sum_j n_ij, N classes,
    IoU_i = n_ii / (t_i + sum_j n_ji - n_ii),  mIoU = (1/N) sum_i IoU_i,
    fwIoU = (1 / sum_k t_k) sum_i t_i IoU_i,   pixel acc. = sum_i n_ii / sum_i t_i.
(The printed fwIoU lacks the weight t_i; it is there in Long et al. 2015, whose definitions the paper uses.)

Conventions, those of the Cityscapes evaluation and of FCN's `score.py`:
- pixels whose ground truth is the ignore label (255) are not counted at all, whatever was predicted;
- a class with an empty union (in neither the ground truth nor the predictions of everything seen) has no
  IoU: NaN per class (None in `summary`), and it is left out of mIoU, so N is the number of classes present
  in the ground truth or the predictions. A class that is only predicted has IoU 0 and counts;
- fwIoU weighs by ground-truth pixels, so absent classes weigh 0; no score is NaN unless no pixel was counted.

Usable as a Keras metric (`ConfusionMatrix`, result() = mIoU, `scores()` for the rest) or as plain TF
functions (`confusion_matrix`, `scores`) on tensors or numpy arrays.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from cycada_tf.data.schema import IGNORE_LABEL


def _class_ids(y_true, y_pred):
    """Predictions as class ids: scores with one more axis than the labels are reduced by argmax."""
    y_true = tf.convert_to_tensor(y_true)
    y_pred = tf.convert_to_tensor(y_pred)
    if y_pred.shape.rank == y_true.shape.rank + 1:
        y_pred = tf.argmax(y_pred, axis=-1)
    return tf.cast(tf.reshape(y_true, [-1]), tf.int64), tf.cast(tf.reshape(y_pred, [-1]), tf.int64)


def at_label_size(logits, labels):
    """Segmentation logits (batch, h, w, classes) resized bilinearly, as float32 logits, to the height and width
    of the label maps (batch, H, W), so that the argmax is taken at the labels' resolution (never the labels
    resized to the predictions'); scores of any other rank, or already that size, are returned as they are."""
    logits = tf.convert_to_tensor(logits)
    if logits.shape.rank != 4 or logits.shape[1:3] == tf.convert_to_tensor(labels).shape[1:3]:
        return logits
    return tf.image.resize(tf.cast(logits, tf.float32), tf.shape(labels)[1:3], method="bilinear")


def confusion_matrix(y_true, y_pred, num_classes, ignore_label=IGNORE_LABEL):
    """int64 (num_classes, num_classes): [i, j] = pixels of ground-truth class i predicted as class j.

    y_true: class ids (any shape), ignore_label where a pixel is not evaluated. y_pred: class ids of the same
    shape, or scores/logits with a trailing class axis. A ground-truth id that is neither a class nor the
    ignore label, or a predicted id outside the classes, is an error (a wrong label table, not noise to drop).
    """
    y_true, y_pred = _class_ids(y_true, y_pred)
    tf.debugging.assert_equal(tf.size(y_true), tf.size(y_pred),
                              message="labels and predictions hold different numbers of pixels")
    keep = tf.not_equal(y_true, ignore_label)
    y_true, y_pred = tf.boolean_mask(y_true, keep), tf.boolean_mask(y_pred, keep)
    checks = [
        tf.debugging.assert_less(y_true, tf.constant(num_classes, tf.int64), message=(
            f"a ground-truth id is neither a class (0..{num_classes - 1}) nor the ignore label {ignore_label}")),
        tf.debugging.assert_non_negative(y_true, message="a ground-truth id is negative"),
        tf.debugging.assert_less(y_pred, tf.constant(num_classes, tf.int64),
                                 message=f"a predicted id is not a class (0..{num_classes - 1})"),
        tf.debugging.assert_non_negative(y_pred, message="a predicted id is negative"),
    ]
    with tf.control_dependencies(checks):
        counts = tf.math.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes,
                                  maxlength=num_classes * num_classes, dtype=tf.int64)
    return tf.reshape(counts, [num_classes, num_classes])


def scores(matrix):
    """{"per_class_iou": float64 (N,) with NaN for classes of empty union, "miou", "fwiou",
    "pixel_accuracy", "present": bool (N,)} from a confusion matrix (rows ground truth)."""
    n = tf.cast(tf.convert_to_tensor(matrix), tf.float64)
    hits = tf.linalg.diag_part(n)
    truth = tf.reduce_sum(n, axis=1)        # t_i
    predicted = tf.reduce_sum(n, axis=0)    # sum_j n_ji
    union = truth + predicted - hits
    present = union > 0
    nan = tf.constant(math.nan, tf.float64)
    iou = tf.where(present, hits / tf.where(present, union, 1.0), nan)
    num_present = tf.reduce_sum(tf.cast(present, tf.float64))
    total = tf.reduce_sum(truth)
    miou = tf.where(num_present > 0,
                    tf.reduce_sum(tf.where(present, iou, 0.0)) / tf.maximum(num_present, 1.0), nan)
    fwiou = tf.where(total > 0, tf.reduce_sum(truth * tf.where(present, iou, 0.0)) / tf.maximum(total, 1.0),
                     nan)
    pixel_accuracy = tf.where(total > 0, tf.reduce_sum(hits) / tf.maximum(total, 1.0), nan)
    return {"per_class_iou": iou, "miou": miou, "fwiou": fwiou, "pixel_accuracy": pixel_accuracy,
            "present": present}


def summary(matrix, classes=None):
    """JSON-ready scores: floats, per-class IoU as {class name: float or None (empty union)}."""
    values = {k: v.numpy() for k, v in scores(matrix).items()}
    names = list(classes) if classes is not None else [str(i) for i in range(len(values["per_class_iou"]))]

    def number(x):
        return None if np.isnan(x) else float(x)

    return {"miou": number(values["miou"]), "fwiou": number(values["fwiou"]),
            "pixel_accuracy": number(values["pixel_accuracy"]),
            "per_class_iou": {name: number(x) for name, x in zip(names, values["per_class_iou"])}}


class ConfusionMatrix(keras.metrics.Metric):
    """Streaming confusion matrix for segmentation; result() is mIoU, scores()/summary() give the rest.

    Accumulates in int64 (a float32 count stops being exact past 2^24 pixels, ~32 Cityscapes images) and
    sums across replicas under a distribution strategy.
    """

    def __init__(self, num_classes, ignore_label=IGNORE_LABEL, name="miou", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes = int(num_classes)
        self.ignore_label = int(ignore_label)
        self.matrix = self.add_variable(shape=(self.num_classes, self.num_classes), initializer="zeros",
                                        dtype="int64", aggregation="sum", name="matrix")

    def update_state(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError("ConfusionMatrix counts pixels; mark pixels not to count with the ignore label "
                             "instead of sample_weight")
        self.matrix.assign_add(confusion_matrix(y_true, y_pred, self.num_classes, self.ignore_label))

    def result(self):
        return tf.cast(scores(self.matrix.value)["miou"], tf.float32)

    def scores(self):
        return scores(self.matrix.value)

    def summary(self, classes=None):
        return summary(self.matrix.value, classes)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "ignore_label": self.ignore_label}
