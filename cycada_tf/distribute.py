"""The tf.distribute strategy of --strategy: every stage builds its networks and optimizers and trains under it,
with global batch sizes (each replica takes its share; stages/base.py scales each replica's loss)."""

import contextlib

import tensorflow as tf

STRATEGIES = ("auto", "one_device", "mirrored")


def _devices():
    gpus = tf.config.list_logical_devices("GPU")
    return [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]


def strategy_from_flag(name):
    """None (the default strategy, exactly the code path of a plain single-device run) for auto on one device;
    MirroredStrategy over the host's GPUs (or logical CPUs when there is no GPU) for mirrored, and for auto
    on a host with several GPUs; OneDeviceStrategy on the first device for one_device."""
    if name not in STRATEGIES:
        raise ValueError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    devices = _devices()
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy(devices[0])
    if name == "mirrored" or (name == "auto" and len(tf.config.list_logical_devices("GPU")) > 1):
        if not tf.config.list_logical_devices("GPU"):
            # CPU collectives of a step with two optimizers (pixel, feature stages) met out of order across
            # replicas ("Shape mismatch in the collective instance"); reducing on one device orders them.
            return tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
        return tf.distribute.MirroredStrategy(devices)
    return None


def scope(strategy):
    return strategy.scope() if strategy is not None else contextlib.nullcontext()
