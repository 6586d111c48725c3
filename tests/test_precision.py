"""--precision and --jit_compile: per-stage values and their errors; under each mixed policy the stages train
with float32 variables, float32 losses and loss scaling under float16; weights saved in one precision load in
another; an XLA-compiled step computes what the plain one does; a run records its precision."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import run_experiment
from cycada_tf.config import experiment_config as config_lib
from cycada_tf.train import precision
from cycada_tf.models import digit_gan, lenet
from cycada_tf.stages.feature import FeatureAdaptation
from cycada_tf.stages.pixel import PixelAdaptation
from cycada_tf.stages.source import TaskStage
from cycada_tf.experiments import runner
from cycada_tf.experiments.runner import STAGE_NAMES as STAGE_ORDER

SIZE, BATCH = 16, 8
MIXED = ("mixed_bfloat16", "mixed_float16")


def _images(seed, batch=BATCH):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (batch, SIZE, SIZE, 3)).astype("float32"))


def _labels(seed):
    return tf.constant(np.random.default_rng(seed).integers(0, 10, BATCH).astype("int32"))


def _lenet(seed=0, dtype=None):
    keras.utils.set_random_seed(seed)
    net = lenet.LeNet(10, dtype=dtype)
    net.build((None, SIZE, SIZE, 3))
    return net


def _without_dropout(net):
    """Dropout draws its masks differently under each precision and under XLA: comparisons of two runs of
    one step turn it off."""
    for layer in net.encoder.layers:
        if hasattr(layer, "rate"):
            layer.rate = 0.0
    return net


# --- flags ----------------------------------------------------------------------------------------------

def test_one_value_for_every_stage_then_per_stage_exceptions():
    values = precision.per_stage("precision", "mixed_bfloat16,source=float32,oracle=float32", STAGE_ORDER,
                                 precision.PRECISIONS)
    assert values == {"source": "float32", "pixel": "mixed_bfloat16", "target": "mixed_bfloat16",
                      "feature": "mixed_bfloat16", "self_train": "mixed_bfloat16", "oracle": "float32"}
    # Exceptions alone keep the first choice (float32, auto) for the other stages.
    assert precision.per_stage("jit_compile", "pixel=true", STAGE_ORDER, precision.JIT_COMPILE) == {
        "source": "auto", "pixel": "true", "target": "auto", "feature": "auto", "self_train": "auto",
        "oracle": "auto"}


def test_auto_precision_is_bfloat16_only_where_the_hardware_has_it(tmp_path):
    assert precision.resolve_auto(flags={"avx2", "avx512_bf16"}, gpus=[])[0] == "mixed_bfloat16"
    assert precision.resolve_auto(flags={"amx_bf16", "amx_tile"}, gpus=[])[0] == "mixed_bfloat16"
    choice, why = precision.resolve_auto(flags={"avx2", "avx512f"}, gpus=[])
    assert choice == "float32" and "without" in why
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx512_bf16\n")
    assert precision.cpu_flags(str(cpuinfo)) == {"fpu", "sse2", "avx512_bf16"}
    assert precision.cpu_flags(str(tmp_path / "missing")) == set()
    # the run resolves auto per stage, keeping explicit exceptions
    config = config_lib.DigitsConfig(precision="auto,source=float32")
    values, _ = runner.stage_settings(config)
    assert values["source"] == "float32" and values["pixel"] in precision.PRECISIONS


@pytest.mark.parametrize("text, says", [("float64", "'float64' is not one of"),
                                        ("float32,pixle=mixed_bfloat16", "unknown stage 'pixle'"),
                                        ("float32,mixed_bfloat16", "two values for every stage"),
                                        ("", "is empty")])
def test_a_bad_value_is_refused_naming_the_flag(text, says):
    with pytest.raises(ValueError, match="--precision") as error:
        precision.per_stage("precision", text, STAGE_ORDER, precision.PRECISIONS)
    assert says in str(error.value)


def test_auto_xla_is_off_on_a_cpu_and_the_explicit_values_are_kept():
    assert not tf.config.list_logical_devices("GPU")  # this test describes the CPU machines of CI
    assert precision.use_xla("auto") is False
    assert precision.use_xla("true") is True and precision.use_xla("false") is False


def test_no_stage_asks_for_xla_under_op_determinism():
    """--deterministic (determinism.py): Keras compiles no step under op determinism, so none is asked to."""
    from tensorflow.python.framework import config as tf_config
    tf.config.experimental.enable_op_determinism()
    try:
        assert precision.use_xla("true") is False and precision.use_xla("auto") is False
    finally:
        tf_config.disable_op_determinism()  # process-wide: the later tests run without it
    assert precision.use_xla("true") is True


def _task_networks(task, dtype):
    """Every network the stages build of `task` (tasks/networks.Networks), each given `dtype`."""
    return {"f": task.network(dtype=dtype), **dict(zip(("g_st", "g_ts"), task.generators(dtype=dtype))),
            "d_t": task.image_discriminator("d_t", dtype=dtype), "d_feat": task.feature_discriminator(dtype=dtype)}


def _policies(model):
    """(class, dtype policy) of every layer of `model`, nested ones included, but its inputs: an InputLayer
    computes nothing (the tensor it makes has Keras' float type under any policy)."""
    return [(type(layer).__name__, layer.dtype_policy.name) for layer in model._flatten_layers(recursive=True)
            if not isinstance(layer, keras.layers.InputLayer)]


@pytest.mark.parametrize("task", ["digits", "segmentation"])
@pytest.mark.parametrize("name", MIXED)
def test_every_network_computes_in_the_dtype_it_is_given_as_under_a_global_policy(task, name):
    """A network given `dtype` has, layer by layer (nested ones included), the policy it would have had if
    built under Keras' global policy `name`: the float32 logits and outputs stay float32, every other layer
    computes in the low precision, and the global policy is left as it was."""
    from conftest import tiny_config
    from cycada_tf import tasks
    config = tiny_config(task, **({"model": "small_fcn"} if task == "segmentation" else {}))
    given = {key: _policies(net) for key, net in _task_networks(tasks.for_config(config), name).items()}
    assert keras.mixed_precision.global_policy().name == "float32"
    keras.mixed_precision.set_global_policy(name)
    try:
        under_global = {key: _policies(net) for key, net in _task_networks(tasks.for_config(config), None).items()}
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert given == under_global
    for key, layers in given.items():
        assert {policy for _, policy in layers} <= {name, "float32"}, key
        assert sum(policy == name for _, policy in layers) > len(layers) // 2, key  # most layers compute low


# --- training under each precision ----------------------------------------------------------------------

@pytest.mark.parametrize("name", MIXED)
def test_pixel_step_under_a_mixed_policy_keeps_float32_variables_and_losses(name):
    keras.utils.set_random_seed(0)
    g_st, g_ts = (digit_gan.generator(SIZE, 3, 3, width=4, noise_channels=2 if n == "g_st" else 0, name=n,
                                      dtype=name) for n in ("g_st", "g_ts"))
    d_s, d_t = (digit_gan.image_discriminator(SIZE, 3, width=4, minibatch_std=True, name=n, dtype=name)
                for n in ("d_s", "d_t"))
    model = PixelAdaptation(g_st, g_ts, d_s, d_t, _lenet(dtype=name), pool_size=4, dtype=name)
    model.compile(precision.optimizer(keras.optimizers.Adam(2e-4), name),
                  precision.optimizer(keras.optimizers.Adam(2e-4), name), auto_scale_loss=False)
    model.build_optimizers()
    compute = "bfloat16" if name == "mixed_bfloat16" else "float16"
    # The networks compute in the low precision, and hand float32 images and logits to the losses.
    hidden = g_st.layers[2]
    assert hidden.compute_dtype == compute, hidden.name
    assert g_st(_images(1)).dtype == tf.float32 and d_t(_images(1)).dtype == tf.float32
    before = [v.numpy().copy() for v in model.generator_variables]
    logs = model.train_step((_images(1), _images(2)))
    assert all(v.dtype == "float32" for v in model.generator_variables + model.discriminator_variables)
    for key, value in logs.items():
        assert value.dtype == tf.float32 and np.isfinite(float(value)), key
    moved = [not np.array_equal(v.numpy(), b) for v, b in zip(model.generator_variables, before)]
    assert sum(moved) > len(moved) // 2  # the (unscaled) update reached the generators
    if name == "mixed_float16":
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer)
        assert float(model.optimizer.dynamic_scale.numpy()) > 1.0  # the loss was scaled up before the tape


def test_float16_loss_scaling_multiplies_the_gradients_and_the_update_divides_them_out():
    """The same step of the task stage under mixed_float16 with loss scaling moves the weights as much as a
    float32 step does (within float16 rounding): the scale reaches the gradients and is removed again."""
    updates = {}
    for name in ("float32", "mixed_float16"):
        net = _without_dropout(_lenet(seed=3, dtype=name))
        model = TaskStage(net, dtype=name)
        model.compile(precision.optimizer(keras.optimizers.SGD(0.1), name), auto_scale_loss=False)
        before = [v.numpy().copy() for v in net.trainable_variables]
        model.train_step((_images(5), _labels(6)))
        updates[name] = [v.numpy() - b for v, b in zip(net.trainable_variables, before)]
    for full, half in zip(updates["float32"], updates["mixed_float16"]):
        # float16 activations round to ~1e-3 relative; a scale left in the update would be 2**15 times off.
        np.testing.assert_allclose(half, full, atol=0.1 * np.abs(full).max())
        assert 0.95 < np.linalg.norm(half) / np.linalg.norm(full) < 1.05
    assert max(np.abs(u).max() for u in updates["mixed_float16"]) > 1e-4


@pytest.mark.parametrize("name", MIXED)
def test_feature_step_gate_is_read_in_float32(name):
    f_ref, f_t = _lenet(1, dtype=name), _lenet(1, dtype=name)
    d_feat = lenet.feature_discriminator(lenet.FEATURE_DIM, hidden=16, dtype=name)
    model = FeatureAdaptation(f_ref, f_t, d_feat, gate=-1.0, dtype=name)
    model.compile(precision.optimizer(keras.optimizers.Adam(1e-3), name),
                  precision.optimizer(keras.optimizers.Adam(1e-3), name), auto_scale_loss=False)
    model.build_optimizers()
    logs = model.train_step((_images(7), _images(8)))
    assert logs["d_accuracy"].dtype == tf.float32 and logs["gate_open"].dtype == tf.float32
    assert float(logs["gate_open"]) == 1.0 and int(model.updates.numpy()) == 1


@pytest.mark.parametrize("name", MIXED)
def test_weights_saved_under_a_mixed_policy_are_float32_and_load_under_float32(tmp_path, name):
    path = str(tmp_path / "f.weights.h5")
    low = _lenet(seed=9, dtype=name)
    low.save_weights(path)
    low_logits = low(_images(10)).numpy().astype("float32")
    full = lenet.LeNet(10)
    full.build((None, SIZE, SIZE, 3))
    full.load_weights(path)
    for a, b in zip(low.weights, full.weights):
        assert b.dtype == "float32"
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    full_logits = full(_images(10)).numpy()
    # The same weights computed in float32: within the low precision's rounding of the logits.
    np.testing.assert_allclose(low_logits, full_logits, atol=0.05 * np.abs(full_logits).max() + 0.02)


def test_an_xla_compiled_step_computes_what_the_plain_step_computes():
    weights = {}
    for jit in (False, True):
        net = _without_dropout(_lenet(seed=11))
        model = TaskStage(net)
        model.compile(keras.optimizers.SGD(0.05), jit_compile=jit)
        model.fit(tf.data.Dataset.from_tensors((_images(12), _labels(13))).repeat(), epochs=1,
                  steps_per_epoch=3, verbose=0, shuffle=False)
        assert model.jit_compile is jit
        weights[jit] = [v.numpy() for v in net.trainable_variables]
    for plain, compiled in zip(weights[False], weights[True]):
        np.testing.assert_allclose(compiled, plain, rtol=1e-4, atol=1e-5)
    initial = [v.numpy() for v in _lenet(seed=11).trainable_variables]
    assert any(not np.allclose(a, b) for a, b in zip(weights[True], initial))  # the steps did train


# --- the command line -----------------------------------------------------------------------------------

def _digits(*args):
    return run_experiment("digits", *args, check=False, timeout=600)


def test_a_bad_precision_flag_stops_the_run_before_it_writes_anything(tmp_path, embedded_data_dir):
    run_dir = tmp_path / "run"
    result = _digits(f"--data_dir={embedded_data_dir}", f"--run_dir={run_dir}", "--precision=float32,pixel=int8")
    assert result.returncode != 0
    assert "--precision" in result.stderr and "'int8' is not one of" in result.stderr
    assert not run_dir.exists()


@pytest.mark.slow
def test_a_source_stage_under_mixed_bfloat16_trains_and_records_its_precision(tmp_path, embedded_data_dir):
    run_dir = tmp_path / "run"
    result = _digits(f"--data_dir={embedded_data_dir}", f"--run_dir={run_dir}", "--stages=source",
                     "--source_epochs=3", "--precision=mixed_bfloat16", "--jit_compile=false", "--verbose=0",
                     "--summary_every_epochs=0")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(run_dir / "config.json") as handle:
        assert json.load(handle)["precision"] == "mixed_bfloat16"
    with open(run_dir / "seed_0" / "source" / "done.json") as handle:
        done = json.load(handle)
    assert done["source_test_accuracy"] > 0.3  # 3 epochs on 900 digits learn (chance is 0.1)
    # A finished stage under another precision is refused, not mixed in.
    again = _digits(f"--data_dir={embedded_data_dir}", f"--run_dir={run_dir}", "--stages=source",
                    "--precision=float32")
    assert again.returncode != 0 and "--precision=float32 (run directory: mixed_bfloat16)" in again.stderr


@pytest.mark.slow
def test_segmentation_stages_train_under_mixed_bfloat16_with_float32_weights(tmp_path, capsys):
    """The segmentation networks (small FCN, ResNet generator, PatchGAN) under the low precision: the source
    and pixel stages train, their losses stay finite, and the weights files hold float32."""
    import h5py

    from cycada_tf.experiments import runner
    config = config_lib.SegmentationConfig(
        data_dir=str(tmp_path / "data"), run_dir=str(tmp_path / "run"), stages=("source", "pixel"),
        source_epochs=2, pixel_epochs=1, source_batch_size=32, pixel_batch_size=16, crop_size=(32, 64),
        pixel_crop_size=(32, 32), model_width=8, generator_width=4, generator_blocks=1, discriminator_width=4,
        semantic_weight=1.0, summary_every_epochs=0, precision="mixed_bfloat16", verbose=0)
    summary = runner.run(config)
    seed = summary["per_seed"]["0"]
    assert 0.0 < seed["source"]["miou"] <= 1.0 and 0.0 <= seed["pixel"]["miou_t2s"] <= 1.0
    # the pixel stage's progress line: every loss finite
    line = next(line for line in capsys.readouterr().err.splitlines() if "pixel epoch 1/1" in line)
    logged = dict(item.split("=") for item in line.split(": ", 1)[1].split())
    assert {"cycle", "g_loss", "d_loss", "semantic_st"} <= set(logged)
    assert all(np.isfinite(float(value)) for value in logged.values())
    for path in ("source/f.weights.h5", "pixel/g_st.weights.h5", "pixel/g_ts.weights.h5"):
        with h5py.File(tmp_path / "run" / "seed_0" / path) as handle:
            dtypes = set()
            handle.visititems(lambda name, item: dtypes.add(str(item.dtype)) if isinstance(item, h5py.Dataset)
                              else None)
        assert dtypes == {"float32"}, (path, dtypes)
