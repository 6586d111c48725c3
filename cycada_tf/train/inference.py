"""A network applied for its outputs over many batches (scores, criteria), traced once rather than run eagerly.

In float32 the traced graph computes what the eager calls compute, bit for bit (tests/test_inference.py checks
the task networks and translators), so a run's numbers do not depend on which path ran; under mixed precision
the graph's fused kernels round differently from the eager ones, so those networks run eagerly, as before."""

import tensorflow as tf


def _float32(model):
    """Whether `model` (a Keras model, or a function of one carrying it as `.network`) computes in float32."""
    policy = getattr(getattr(model, "network", model), "dtype_policy", None)
    return policy is not None and policy.compute_dtype == "float32"


class Traced:
    """x -> net(view(x)) (view None: net(x)), inference mode, as one traced function per shape of an image
    (any batch size); called like a network, `training` ignored (always False)."""

    def __init__(self, net, view=None):
        self.net, self.view, self.traced = net, view, {}

    def forward(self, x):
        return self.net(x if self.view is None else self.view(x, training=False), training=False)

    def __call__(self, x, training=False):
        x = tf.convert_to_tensor(x)
        key = (tuple(x.shape[1:]), x.dtype)
        if key not in self.traced:
            self.traced[key] = tf.function(self.forward, input_signature=[tf.TensorSpec((None,) + key[0], x.dtype)])
        return self.traced[key](x)


def predictor(net, view=None):
    """`net` after `view` (if given) as a network called on batches in inference mode: traced (Traced) where
    both compute in float32, else the eager calls; `net` itself when there is no view to fold in and it does
    not compute in float32."""
    if _float32(net) and (view is None or _float32(view)):
        return Traced(net, view)
    if view is None:
        return net
    return lambda x, training=False: net(view(x, training=False), training=False)
