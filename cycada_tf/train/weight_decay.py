"""L2 weight decay as PyTorch's optimizers apply it (the authors' release, `weight_decay=0.0005`): `decay * w`
added to each variable's gradient before the optimizer's own update, so that it passes through SGD's momentum
and Adam's moments. Keras' own `weight_decay` is the decoupled kind (AdamW), which SGD with momentum and Adam
turn into another update."""

import keras
from keras import ops


class _CoupledDecay:
    """Mixed into a Keras optimizer: `decay * variable` joins the gradient of every variable it updates (a
    variable without a gradient is left alone, as PyTorch's optimizers skip a parameter without one). The
    update step runs after the replicas' gradients are summed, so the decay is added once."""

    def __init__(self, *args, decay=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.decay = float(decay)

    def update_step(self, gradient, variable, learning_rate):
        gradient = gradient + ops.cast(self.decay, gradient.dtype) * ops.cast(variable, gradient.dtype)
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "decay": self.decay}


@keras.saving.register_keras_serializable("cycada_tf")
class SGD(_CoupledDecay, keras.optimizers.SGD):
    """keras.optimizers.SGD with PyTorch's weight decay (`decay`)."""


@keras.saving.register_keras_serializable("cycada_tf")
class Adam(_CoupledDecay, keras.optimizers.Adam):
    """keras.optimizers.Adam with PyTorch's weight decay (`decay`)."""


def optimizer(name, decay, **kwargs):
    """keras.optimizers' `name` ("sgd", "adam") with `kwargs`; with `decay` > 0, its PyTorch-decay version."""
    plain = {"sgd": keras.optimizers.SGD, "adam": keras.optimizers.Adam}[name]
    if decay == 0:
        return plain(**kwargs)
    return {"sgd": SGD, "adam": Adam}[name](decay=decay, **kwargs)
