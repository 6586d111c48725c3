"""Task model training, Eq. 1: the source model f_S, the target model f_T on translated source images, and
the target-trained oracle are all this stage with different data."""

import keras
import tensorflow as tf

from cycada_tf import losses
from cycada_tf.stages.base import replica_scale


class TaskStage(keras.Model):
    """Trains a classifier `net` with L_task (Eq. 1) on (image, label) batches."""

    def __init__(self, net, **kwargs):
        super().__init__(**kwargs)
        self.net = net
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")

    @property
    def metrics(self):
        return [self.loss_tracker, self.accuracy]

    def call(self, x, training=False):
        return self.net(x, training=training)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            logits = self.net(x, training=True)
            loss = losses.task_loss(y, logits)
            scaled = replica_scale(loss, self.optimizer)
        variables = self.net.trainable_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        self.loss_tracker.update_state(loss)
        self.accuracy.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, y = data
        logits = self.net(x, training=False)
        self.loss_tracker.update_state(losses.task_loss(y, logits))
        self.accuracy.update_state(y, logits)
        return {m.name: m.result() for m in self.metrics}
