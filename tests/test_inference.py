"""train/inference.py: a float32 network (after a translator) traced for inference gives the eager call's outputs
bit for bit, for every task network and translator, at any batch size and image size; networks under mixed
precision keep the eager calls."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cycada_tf.models import cyclegan, segmenter, small_fcn
from cycada_tf.models.digit_gan import generator
from cycada_tf.models.lenet import LeNet
from cycada_tf.train import inference


def _seed_states(model):
    """The state of every random stream of `model` (the style code's), to replay its draws."""
    return [layer.seed.state for layer in model.layers if isinstance(getattr(layer, "seed", None),
                                                                     keras.random.SeedGenerator)]


def _both(net, view, batches):
    """The eager outputs and the traced ones of net(view(x)) on `batches`, the view's random draws replayed."""
    states = _seed_states(getattr(view, "network", view)) if view is not None else []
    start = [state.numpy() for state in states]
    eager = [(net(x if view is None else view(x, training=False), training=False)).numpy() for x in batches]
    for state, value in zip(states, start):
        state.assign(value)
    traced = inference.predictor(net, view)
    assert isinstance(traced, inference.Traced)
    return eager, [traced(x, training=False).numpy() for x in batches], traced


def test_digit_networks_traced_give_the_eager_bits():
    keras.utils.set_random_seed(0)
    g = generator(32, 3, 3, width=8, noise_channels=4, dtype="float32")
    net = LeNet(10, dtype="float32")
    net.build((None, 32, 32, 3))
    rng = np.random.default_rng(0)
    batches = [rng.uniform(-1, 1, (n, 32, 32, 3)).astype("float32") for n in (50, 50, 47)]
    for view in (None, g):
        eager, traced, function = _both(net, view, batches)
        assert all(a.tobytes() == b.tobytes() for a, b in zip(eager, traced)), view
        assert len(function.traced) == 1  # one function for every batch size of one image shape


def test_road_scene_networks_traced_give_the_eager_bits_at_any_size():
    keras.utils.set_random_seed(0)
    g = segmenter.any_size(cyclegan.resnet_generator(3, 3, 4, 1, 2, dtype="float32"), 4)
    net = small_fcn.small_fcn(8, width=8, dtype="float32")
    rng = np.random.default_rng(1)
    batches = [rng.uniform(-1, 1, shape).astype("float32") for shape in ((2, 32, 64, 3), (1, 32, 64, 3),
                                                                           (1, 36, 70, 3))]
    eager, traced, function = _both(net, g, batches)
    assert len(function.traced) == 2
    assert [a.shape for a in traced] == [(2, 32, 64, 8), (1, 32, 64, 8), (1, 36, 70, 8)]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(eager, traced))


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_networks_run_eagerly(precision):
    net = LeNet(10, dtype=precision)
    net.build((None, 32, 32, 3))
    view = generator(32, 3, 3, width=4, dtype=precision)
    assert inference.predictor(net) is net
    folded = inference.predictor(net, view)
    assert not isinstance(folded, inference.Traced)
    x = tf.zeros((2, 32, 32, 3))
    assert folded(x).shape == (2, 10)
