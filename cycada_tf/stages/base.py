"""What every stage shares: the replica-local view of the loss and the optimizers beyond self.optimizer."""

import tensorflow as tf


def replica_scale(loss, optimizer):
    """What the tape differentiates for `optimizer`. Each replica sees its share of the global batch, and
    gradients are summed across replicas: dividing the replica's mean loss by the number of replicas makes
    the sum the mean over the global batch (with equal shares, which drop_remainder guarantees). Under
    mixed_float16 the optimizer is a LossScaleOptimizer, which multiplies by its loss scale here and divides
    the gradients by it when it applies them (a no-op for any other optimizer)."""
    return optimizer.scale_loss(loss / tf.distribute.get_strategy().num_replicas_in_sync)


def build_optimizer(optimizer, variables):
    """`fit` builds only self.optimizer; any other optimizer must be built on its variables explicitly (inside
    the strategy scope, where the stage itself is built) or Adam's slots fail to be created."""
    if not optimizer.built:
        optimizer.build(variables)
    return optimizer
