"""model.fit's training loop for --strategy=multi_worker, where Keras 3.15's fit fails (it cannot reduce the
PerReplica tuples of 2+ workers): the stage's own train_step through strategy.run, the same callbacks at the
same points, the same epochs, initial_epoch and steps_per_epoch."""

import keras
import tensorflow as tf

from cycada_tf.train import distribute


def shard_by_data(dataset):
    """Every worker builds the same pipeline from the same seeds; each global batch (drop_remainder: always
    the flag's size) is split across the replicas of all workers, each taking its share of it. By data, not
    by file: a dataset's few shards (or a cached, zipped, repeated pipeline) do not split evenly by file."""
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def fit(model, dataset, epochs, initial_epoch=0, steps_per_epoch=None, callbacks=(), verbose=0, strategy=None):
    """Train `model` (compiled, its optimizers built) on the global batches of `dataset`, an endless
    dataset (steps_per_epoch batches make an epoch) as runner.fit gives fit, and return its History.

    As in fit: metrics are reset before each epoch; callbacks see on_train_begin, on_epoch_begin, on_train_batch
    begin/end (with the step's logs), on_epoch_end (with the epoch's logs, the metrics' running means) and
    on_train_end; model.stop_training set by a callback ends training after the batch or epoch. Logs are
    the mean over replicas of each replica's metric results (equal shares of the global batch: the mean over
    the global batch), so every worker sees the same logs and takes the same decisions (a gate's stop, a
    non-finite loss)."""
    strategy = strategy or tf.distribute.get_strategy()
    if steps_per_epoch is None:
        raise ValueError("loop.fit needs steps_per_epoch (the datasets of the stages repeat forever)")
    iterator = iter(strategy.experimental_distribute_dataset(shard_by_data(dataset)))

    @tf.function
    def train_function(iterator):
        logs = strategy.run(model.train_step, args=(next(iterator),))
        return {name: strategy.reduce("MEAN", value, axis=None) for name, value in logs.items()}

    callbacks = keras.callbacks.CallbackList(list(callbacks), add_history=True, add_progbar=verbose != 0,
                                             verbose=verbose, epochs=epochs, steps=steps_per_epoch, model=model)
    model.stop_training = False
    callbacks.on_train_begin()
    logs = epoch_logs = None
    # Not only the steps are collectives: resetting and reading the metrics' on-read variables, and the
    # checkpoint's saves, reduce across the workers too.
    with distribute.peer_errors(strategy):
        for epoch in range(initial_epoch, epochs):
            model.reset_metrics()
            callbacks.on_epoch_begin(epoch)
            for step in range(steps_per_epoch):
                callbacks.on_train_batch_begin(step)
                logs = train_function(iterator)
                callbacks.on_train_batch_end(step, logs)
                if model.stop_training:
                    break
            epoch_logs = {name: float(value) for name, value in (logs or {}).items()}
            callbacks.on_epoch_end(epoch, epoch_logs)
            if model.stop_training:
                break
    if isinstance(model.optimizer, keras.optimizers.Optimizer) and epochs > 0:
        model.optimizer.finalize_variable_values(model.trainable_weights)
    callbacks.on_train_end(logs=epoch_logs)
    return model.history  # the History callback CallbackList added (and set on the model)
