"""Numeric precision and XLA per stage: --precision and --jit_compile.

A stage's precision is the dtype policy its networks are built with: each network is given it as its layers'
`dtype` (stages/trial.Trial.building_in; Keras' global policy is never set). Under a mixed policy the networks
compute in bfloat16 or float16 while their variables stay float32, so every checkpoint and weights file is
float32 and loads under any precision. The networks' last layers (generator,
discriminators) are float32; the task net's logits are cast to float32 by the losses, which, with the
discriminator accuracy that gates feature adaptation, are computed in float32 (cycada_tf/train/losses.py).
mixed_float16 has 5 exponent bits: its gradients are scaled (keras.optimizers.LossScaleOptimizer, dynamic
scale, a step with non-finite gradients is skipped and the scale halved).

Both flags take one value for every stage, optionally followed by per-stage values:
--precision=mixed_bfloat16,source=float32 runs every stage in bfloat16 except the source model.
"""

import keras
import tensorflow as tf

from cycada_tf.train import determinism
from cycada_tf.config.run_fields import JIT_COMPILE, PRECISION_CHOICES, PRECISIONS, per_stage  # noqa: F401

# --precision's and --jit_compile's values (auto resolves to one of PRECISIONS on this machine) and their
# parser, declared with the flags (run_fields.py: checked before TensorFlow loads).
FLAG_CHOICES = PRECISION_CHOICES
# CPU features with bfloat16 matrix instructions (Linux /proc/cpuinfo flag names): where mixed_bfloat16 is
# faster than float32 at the same accuracy (docs/speed.md); without them TensorFlow emulates it.
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(path="/proc/cpuinfo"):
    """The feature flags of this machine's CPU (empty where /proc/cpuinfo is not there)."""
    try:
        with open(path) as handle:
            for line in handle:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def resolve_auto(flags=None, gpus=None):
    """(precision, why) for --precision=auto: mixed_bfloat16 on a GPU of compute capability 8.0 or more, or
    on a CPU with bfloat16 instructions (BF16_CPU_FLAGS); float32 otherwise."""
    gpus = tf.config.list_physical_devices("GPU") if gpus is None else gpus
    if gpus:
        capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
        if tuple(capability) >= (8, 0):
            return "mixed_bfloat16", f"GPU of compute capability {capability[0]}.{capability[1]}"
        return "float32", "GPU without bfloat16"
    found = sorted(set(BF16_CPU_FLAGS) & (cpu_flags() if flags is None else set(flags)))
    if found:
        return "mixed_bfloat16", f"CPU with {', '.join(found)}"
    return "float32", f"CPU without {' or '.join(BF16_CPU_FLAGS)}"


def optimizer(inner, name):
    """`inner` wrapped for loss scaling under mixed_float16; itself otherwise."""
    if name == "mixed_float16":
        return keras.optimizers.LossScaleOptimizer(inner)
    return inner


def use_xla(value, strategy=None):
    """jit_compile for model.compile: true/false as given; auto is XLA on a GPU without a multi-device
    strategy and no XLA on a CPU, where it is slower (docs/speed.md). Never under --deterministic: Keras
    compiles no step under op determinism (determinism.py refuses an explicit true)."""
    if determinism.enabled():
        return False
    if value == "auto":
        return bool(tf.config.list_logical_devices("GPU")) and (strategy is None
                                                                or strategy.num_replicas_in_sync == 1)
    return value == "true"
