"""tools/flops.py: the operations of a traced train step are counted as the multiply-adds each convolution,
transposed convolution and matrix product does, forward and backward, strides included; gradients nothing
uses are not counted; the digit stages' counts equal PyTorch's FlopCounterMode on the same networks; the
matrix-product peak is a finite rate."""

import math

import keras
import tensorflow as tf

from tools import benchmark, flops

B, H, W = 4, 16, 12


def _traced_step(model, with_input_gradient=False):
    """A train step's graph: loss of the model's output, gradients of the weights (and of the input)."""
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.square(model(x)))
        sources = model.trainable_variables + ([x] if with_input_gradient else [])
        return tape.gradient(loss, sources)
    return tf.function(step).get_concrete_function(tf.TensorSpec((B, H, W, 3), tf.float32))


def _network():
    return keras.Sequential([
        keras.Input((H, W, 3)),
        keras.layers.Conv2D(8, 3, padding="same"),             # 16x12 positions, 3*3*3 -> 8
        keras.layers.Conv2D(16, 3, strides=2, padding="same"),  # 8x6 positions, 3*3*8 -> 16
        keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same"),  # as the 16x12x4 -> 8x6x16 conv
        keras.layers.Conv2D(5, 5, padding="valid"),            # 12x8 positions, 5*5*4 -> 5
        keras.layers.Flatten(),
        keras.layers.Dense(7),                                 # 480 -> 7
    ])


# Multiply-adds of each layer's forward pass, per image.
MACS = [16 * 12 * 27 * 8, 8 * 6 * 72 * 16, 8 * 6 * 9 * 4 * 16, 12 * 8 * 100 * 5, 480 * 7]


def test_a_train_step_counts_forward_weight_and_needed_input_gradients():
    counted = flops.step_flops(_traced_step(_network()))
    # forward: every layer; weight gradients: every layer; input gradients: all but the first layer's,
    # whose input is a constant (the op is traced but pruned, and not counted).
    expected = 2 * B * (sum(MACS) + sum(MACS) + sum(MACS[1:]))
    assert counted["total"] == expected and not counted["uncounted"]
    assert set(counted["by_op"]) == {"Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul"}


def test_asking_for_the_input_gradient_adds_the_first_layers_backward_pass():
    model = _network()
    without = flops.step_flops(_traced_step(model))["total"]
    with_input = flops.step_flops(_traced_step(model, with_input_gradient=True))["total"]
    assert with_input - without == 2 * B * MACS[0]


def test_unknown_shapes_are_reported_not_guessed():
    conv = keras.layers.Conv2D(2, 3)
    traced = tf.function(lambda x: conv(x)).get_concrete_function(tf.TensorSpec((None, 8, 8, 1), tf.float32))
    counted = flops.step_flops(traced)
    assert counted["total"] == 0 and len(counted["uncounted"]) == 1


def test_the_digit_stages_count_what_pytorch_counts_on_the_same_networks():
    # baselines/pytorch_steps.py --count_flops (torch 2.13's FlopCounterMode, batch 100, DigitsConfig's
    # networks): source 2,348,400,000 and pixel 207,334,243,200 floating-point operations.
    args = benchmark.parse_args([])
    for stage, expected in (("source", 2_348_400_000), ("pixel", 207_334_243_200)):
        c = benchmark._config(args, 100)
        keras.utils.set_random_seed(0)
        model = benchmark.build(stage, c, "float32", "false")
        shape = (100, c.image_size, c.image_size, c.channels)
        if stage == "source":
            spec = (tf.TensorSpec(shape, tf.float32), tf.TensorSpec((100,), tf.int32))
        else:
            spec = (tf.TensorSpec(shape, tf.float32),) * 2
        traced = tf.function(lambda batch: model.train_step(batch)).get_concrete_function(spec)
        assert flops.step_flops(traced)["total"] == expected, stage


def test_the_matrix_product_peak_is_a_finite_positive_rate():
    peak = flops.matmul_peak(tf.float32, size=256, repeats=2)
    assert math.isfinite(peak) and 1e6 < peak < 1e16
