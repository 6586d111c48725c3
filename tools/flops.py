"""How much arithmetic a traced train step does, and how much this machine can do: the two numbers that
say how far a step's speed is from the hardware's.

step_flops counts the floating-point operations (a multiply-add is 2) of the convolutions and matrix
products of a traced function, forward and backward, as they will run: ops whose results nothing uses (a
gradient with respect to a constant input, a discriminator's weight gradients in the generators' update)
are pruned when TensorFlow runs the function, and are not counted. TensorFlow's own "flops" statistics count
a strided convolution's gradients by the size of the larger tensor (4x too much at stride 2); these counts
are the multiply-adds each op does: for Conv2D and both its gradients, the forward convolution's
(output positions x kernel height x width x input channels x output channels).

matmul_peak measures the machine's practical ceiling: the best rate of a large square matrix product in a
given dtype, the best-vectorised kernel the runtime has.
"""

import math
import time

import tensorflow as tf

# Convolution ops counted: (the forward convolution's output, its kernel) among each op's tensors.
_CONV = {"Conv2D": lambda op: (op.outputs[0], op.inputs[1]),
         "Conv2DBackpropInput": lambda op: (op.inputs[2], op.inputs[1]),    # (sizes, kernel, output gradient)
         "Conv2DBackpropFilter": lambda op: (op.inputs[2], op.outputs[0])}  # (input, sizes, output gradient)
_MATMUL = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")


def _dims(shape):
    dims = shape.as_list() if shape.rank is not None else None
    if dims is None or any(d is None for d in dims):
        return None
    return dims


def op_flops(op):
    """Floating-point operations of one graph op (0 for ops not counted); None when a shape is unknown."""
    if op.type in _CONV:
        if op.get_attr("data_format") not in (b"NHWC", "NHWC"):
            raise ValueError(f"{op.name}: only NHWC convolutions are counted, got {op.get_attr('data_format')}")
        positions, kernel = (_dims(tensor.shape) for tensor in _CONV[op.type](op))
        if positions is None or kernel is None:
            return None
        return 2 * math.prod(positions[:-1]) * math.prod(kernel)
    if op.type in _MATMUL:
        a, out = _dims(op.inputs[0].shape), _dims(op.outputs[0].shape)
        if a is None or out is None:
            return None
        transposed = op.get_attr("transpose_a" if op.type == "MatMul" else "adj_x")
        inner = a[-2] if transposed else a[-1]
        return 2 * math.prod(out) * inner
    return 0


def live_ops(graph):
    """The ops of `graph` that run when it is called: those its outputs or its stateful ops (variable
    updates) depend on."""
    wanted = [t.op for t in graph.outputs] + [op for op in graph.get_operations() if op.op_def.is_stateful]
    seen = set()
    while wanted:
        op = wanted.pop()
        if op.name in seen:
            continue
        seen.add(op.name)
        wanted.extend(t.op for t in op.inputs)
        wanted.extend(op.control_inputs)
    return [op for op in graph.get_operations() if op.name in seen]


def step_flops(concrete_function):
    """{"total": floating-point operations of one call, "by_op": {op type: ...}, "uncounted": names of
    counted op types whose shapes were unknown}; ops inside nested functions (tf.cond branches, loops) are
    not counted."""
    by_op, uncounted = {}, []
    for op in live_ops(concrete_function.graph):
        flops = op_flops(op)
        if flops is None:
            uncounted.append(op.name)
        elif flops:
            by_op[op.type] = by_op.get(op.type, 0) + flops
    return {"total": sum(by_op.values()), "by_op": by_op, "uncounted": uncounted}


def matmul_peak(dtype, size=2048, repeats=5):
    """The best floating-point operations per second of a size x size matrix product in `dtype`, over
    `repeats` timed calls after one warm-up."""
    a = tf.cast(tf.random.stateless_uniform((size, size), seed=(1, 2), minval=-1.0), dtype)
    b = tf.cast(tf.random.stateless_uniform((size, size), seed=(3, 4), minval=-1.0), dtype)
    product = tf.function(lambda a, b: tf.reduce_sum(tf.cast(tf.matmul(a, b)[:1, :1], tf.float32)))
    product(a, b).numpy()
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        product(a, b).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best
