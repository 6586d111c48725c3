"""What every stage shares: the replica-local view of the loss and the optimizers beyond self.optimizer."""

import tensorflow as tf


def replica_scale(loss):
    """Each replica sees its share of the global batch, and gradients are summed across replicas: dividing
    the replica's mean loss by the number of replicas makes the sum the mean over the global batch (with
    equal shares, which drop_remainder guarantees)."""
    return loss / tf.distribute.get_strategy().num_replicas_in_sync


def build_optimizer(optimizer, variables):
    """`fit` builds only self.optimizer; any other optimizer must be built on its variables explicitly (inside
    the strategy scope, where the stage itself is built) or Adam's slots fail to be created."""
    if not optimizer.built:
        optimizer.build(variables)
    return optimizer
