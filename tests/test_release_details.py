"""The authors' release's details, each a flag whose default keeps this project's behaviour: PyTorch's weight
decay (--weight_decay), FCN8s' scaled skips (--fcn8s_skip_scaling), the digit nets' Xavier-normal init
(--task_init), an iteration-counted source schedule (--source_steps) and which of f_T's weights the feature
stage updates (--feature_trainable). Each test shows the flag doing what its help says, on tiny inputs."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from cycada_tf.config import experiment_config as config_lib, flag_checks as accepts
from cycada_tf.models import fcn8s, layers as model_layers, lenet
from cycada_tf.stages.feature import FeatureAdaptation
from cycada_tf.stages.source import TaskStage, step_schedule
from cycada_tf.train import weight_decay

SIZE = 28


def _images(seed, batch=4, channels=1):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, SIZE, SIZE, channels)).astype("float32")


def _lenet(seed):
    keras.utils.set_random_seed(seed)
    net = lenet.LeNet(10)
    net.build((None, SIZE, SIZE, 1))
    return net


# --- --weight_decay: PyTorch's L2, added to the gradient before momentum / Adam's moments -------------------

def _steps(optimizer, start, gradients):
    variable = keras.Variable(np.array(start, "float32"))
    for gradient in gradients:
        optimizer.apply_gradients([(tf.constant(gradient, "float32"), variable)])
    return variable.numpy()


def test_sgd_weight_decay_enters_the_momentum_as_pytorchs():
    w0, g, lr, momentum, decay = np.array([1.0, -2.0]), np.array([0.3, 0.5]), 0.1, 0.9, 0.05
    buffer = g + decay * w0                       # torch.optim.SGD: d_p = grad + wd * p; buf = d_p (first step)
    w1 = w0 - lr * buffer
    buffer = momentum * buffer + (g + decay * w1)  # buf = momentum * buf + d_p
    w2 = w1 - lr * buffer
    optimizer = weight_decay.optimizer("sgd", decay, learning_rate=lr, momentum=momentum)
    np.testing.assert_allclose(_steps(optimizer, w0, [g, g]), w2, rtol=1e-6)
    plain = weight_decay.optimizer("sgd", 0.0, learning_rate=lr, momentum=momentum)
    assert type(plain) is keras.optimizers.SGD  # no decay: Keras' own optimizer, as before the flag
    assert not np.allclose(_steps(plain, w0, [g, g]), w2)


def test_adam_weight_decay_is_added_to_the_gradient_before_the_moments():
    w0, g, lr, decay = np.array([1.0, -2.0]), np.array([0.3, 0.5]), 0.1, 0.5
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7
    m = v = np.zeros(2)
    w = w0
    for t in (1, 2):
        d = g + decay * w
        m, v = beta_1 * m + (1 - beta_1) * d, beta_2 * v + (1 - beta_2) * d * d
        w = w - lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t) * m / (np.sqrt(v) + epsilon)
    optimizer = weight_decay.optimizer("adam", decay, learning_rate=lr, beta_1=beta_1, beta_2=beta_2)
    np.testing.assert_allclose(_steps(optimizer, w0, [g, g]), w, rtol=1e-5)


def test_a_task_step_with_weight_decay_moves_each_weight_by_lr_times_decay_times_it():
    """One L_task step of a LeNet with SGD: the decayed weights differ from the plain ones by -lr * wd * w0."""
    x, y, lr, decay = tf.constant(_images(1)), tf.constant([0, 1, 2, 3]), 0.1, 5e-4
    after = {}
    for wd in (0.0, decay):
        net = _lenet(0)
        start = [v.numpy().copy() for v in net.trainable_variables]
        stage = TaskStage(net)
        stage.compile(optimizer=weight_decay.optimizer("sgd", wd, learning_rate=lr, momentum=0.9))
        stage.train_step((x, y))
        after[wd] = [v.numpy() for v in net.trainable_variables]
    for plain, decayed, w0 in zip(after[0.0], after[decay], start):
        np.testing.assert_allclose(decayed - plain, -lr * decay * w0, atol=1e-7)
    assert max(np.abs(d - p).max() for d, p in zip(after[decay], after[0.0])) > 1e-6


def test_the_task_and_feature_optimizers_read_weight_decay():
    from cycada_tf.tasks import digits
    task = digits.DigitsTask(config_lib.DigitsConfig(weight_decay=5e-4, task_optimizer="sgd"))
    sgd, adam = task.optimizer("task", decayed=True), task.optimizer("feature", decayed=True)
    assert isinstance(sgd, weight_decay.SGD) and sgd.decay == 5e-4
    assert isinstance(adam, weight_decay.Adam) and adam.decay == 5e-4
    assert type(task.optimizer("feature")) is keras.optimizers.Adam  # only the stages that ask for it
    default = digits.DigitsTask(config_lib.DigitsConfig())
    assert type(default.optimizer("task", decayed=True)) is keras.optimizers.Adam
    assert type(default.optimizer("feature", decayed=True)) is keras.optimizers.Adam


# --- --fcn8s_skip_scaling: FCN's at-once net ------------------------------------------------------------------

@pytest.mark.parametrize("skip_scaling,scales", [(True, (1e-2, 1e-4)), (False, (1.0, 1.0))])
def test_fcn8s_skip_scaling_scales_pool4_and_pool3_before_their_scores(skip_scaling, scales):
    """fuse_pool4 = upscore2 + score_pool4(s4 * pool4), fuse_pool3 = upscore_pool4 + score_pool3(s3 * pool3):
    s4, s3 = 1e-2, 1e-4 with --fcn8s_skip_scaling (FCN's at-once net), 1 without (today's network)."""
    keras.utils.set_random_seed(0)
    model = fcn8s.fcn8s(3, input_shape=(32, 32, 3), skip_scaling=skip_scaling)
    assert any(layer.name.startswith("scale_") for layer in model.layers) == skip_scaling
    for name in ("score_pool4", "score_pool3"):  # non-zero scores, so the skips are seen in the fused maps
        layer = model.get_layer(name)
        layer.kernel.assign(np.random.default_rng(1).normal(size=layer.kernel.shape).astype("float32"))
        layer.bias.assign(np.array([0.1, -0.2, 0.3], "float32"))
    names = ("block4_pool", "block3_pool", "upscore2", "fuse_pool4", "upscore_pool4", "fuse_pool3")
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    pool4, pool3, upscore2, fuse4, upscore4, fuse3 = (t.numpy() for t in probe(_rgb()))

    def score(name, pool, scale):
        layer = model.get_layer(name)
        return np.einsum("bhwc,ck->bhwk", scale * pool, layer.kernel.numpy()[0, 0]) + layer.bias.numpy()
    np.testing.assert_allclose(fuse4, upscore2 + score("score_pool4", pool4, scales[0]), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fuse3, upscore4 + score("score_pool3", pool3, scales[1]), rtol=1e-4, atol=1e-5)
    assert np.abs(score("score_pool4", pool4, 1.0) - score("score_pool4", pool4, 1e-2)).max() > 1e-3


def _rgb():
    return tf.constant(np.random.default_rng(2).uniform(-1, 1, (1, 32, 32, 3)).astype("float32"))


# --- --task_init: the release's xavier_normal_ ---------------------------------------------------------------

def test_task_init_glorot_normal_draws_each_kernel_with_xaviers_std():
    net = model_layers.task_init(_lenet(3), "glorot_normal")
    for layer in (net.get_layer("logits"), net.encoder.get_layer("fc1"), net.encoder.get_layer("conv2")):
        kernel = layer.kernel.numpy()
        receptive = int(np.prod(kernel.shape[:-2])) if kernel.ndim > 2 else 1
        std = np.sqrt(2.0 / (receptive * (kernel.shape[-2] + kernel.shape[-1])))
        assert abs(kernel.std() / std - 1) < 0.05, layer.name
        assert np.abs(kernel).max() > np.sqrt(3) * std  # beyond Glorot uniform's limit: a normal, untruncated
        assert not layer.bias.numpy().any()


def test_task_init_glorot_uniform_keeps_kerass_weights():
    reference, redrawn = _lenet(4), model_layers.task_init(_lenet(4), "glorot_uniform")
    for a, b in zip(reference.get_weights(), redrawn.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="--task_init"):
        model_layers.task_init(reference, "he")


def test_the_digit_task_builds_f_from_scratch_with_task_init_and_loads_weights_untouched():
    from cycada_tf.tasks import digits
    keras.utils.set_random_seed(5)
    today = digits.DigitsTask(config_lib.DigitsConfig()).build_network()
    keras.utils.set_random_seed(5)
    plain = digits.DigitsTask(config_lib.DigitsConfig(task_init="glorot_uniform")).build_network()
    keras.utils.set_random_seed(5)
    normal = digits.DigitsTask(config_lib.DigitsConfig(task_init="glorot_normal")).build_network()
    assert all(np.array_equal(a, b) for a, b in zip(today.get_weights(), plain.get_weights()))
    assert not np.array_equal(today.get_layer("logits").kernel.numpy(), normal.get_layer("logits").kernel.numpy())


# --- --source_steps: exactly N iterations ------------------------------------------------------------------

@pytest.mark.parametrize("total,pass_steps,expected", [
    (115000, 24966, (5, 23000)),   # DRN-26's 115k iterations on GTA5 at batch 1
    (100000, 24966, (5, 20000)),   # FCN8s' 100k
    (8, 3, (4, 2)), (6, 7, (1, 6)), (12, 12, (1, 12))])
def test_step_schedule_gives_exactly_the_iterations_in_epochs_of_about_a_pass(total, pass_steps, expected):
    epochs, steps = step_schedule(total, pass_steps)
    assert (epochs, steps) == expected and epochs * steps == total


def test_step_schedule_refuses_iterations_that_split_into_no_even_epochs():
    with pytest.raises(ValueError, match=r"^--source_steps=100003: .* e\.g\. --source_steps=100000 "):
        step_schedule(100003, 24966)


def test_source_steps_runs_exactly_that_many_source_iterations(embedded_data_dir, tmp_path, monkeypatch):
    from cycada_tf.experiments import runner
    seen, original = {}, runner.fit

    def counted(trial, stage, plan, *args, **kwargs):
        result = original(trial, stage, plan, *args, **kwargs)
        seen[stage] = (plan.epochs, plan.steps, int(plan.model.optimizer.iterations.numpy()))
        return result
    monkeypatch.setattr(runner, "fit", counted)
    runner.run(config_lib.DigitsConfig(data_dir=embedded_data_dir, run_dir=str(tmp_path / "run"), seeds=(0,),
                                       stages=("source",), source_steps=8, source_batch_size=300,
                                       summary_every_epochs=0, verbose=0, precision="float32"))
    assert seen["source"] == (4, 2, 8)  # 898 source digits at batch 300: a pass is 2 iterations


# --- --feature_trainable: which of f_T's weights the feature stage updates ---------------------------------

def _feature_step(layer, trainable):
    f_ref, f_t = _lenet(0), _lenet(1)
    f_t.set_weights(f_ref.get_weights())
    d_feat = lenet.feature_discriminator(lenet.FEATURE_DIM if layer == "features" else 10, hidden=16)
    model = FeatureAdaptation(f_ref, f_t, d_feat, layer=layer, gate=-1.0, trainable=trainable)  # gate open
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    model.build_optimizers()
    head = [v.numpy().copy() for v in f_t.classifier.trainable_variables]
    encoder = [v.numpy().copy() for v in f_t.encoder.trainable_variables]
    model.train_step((tf.constant(_images(1)), tf.constant(_images(2))))
    return (any(not np.array_equal(v.numpy(), b) for v, b in zip(f_t.classifier.trainable_variables, head)),
            all(not np.array_equal(v.numpy(), b) for v, b in zip(f_t.encoder.trainable_variables, encoder)))


@pytest.mark.parametrize("layer,trainable,head_changes", [
    ("logits", "all", True),        # the release's digit ADDA: D_feat on the scores, the whole net updated
    ("logits", "adapted", True),    # today's --feature_layer=logits: the layers under the scores, all of them
    ("logits", "encoder", False),   # the scores adapted through the encoder alone: the head stays
    ("features", "adapted", False),  # the paper's flagfiles and the default: the encoder
    ("features", "all", False),     # no term of Eq. 5 reaches the head from the features: it has no gradient
])
def test_feature_trainable_chooses_the_weights_f_ts_update_changes(layer, trainable, head_changes):
    if head_changes or trainable != "all":
        head_changed, encoder_changed = _feature_step(layer, trainable)
    else:  # the head is among the updated weights but has no gradient, which Keras' optimizer says
        with pytest.warns(UserWarning, match="Gradients do not exist for variables .*logits"):
            head_changed, encoder_changed = _feature_step(layer, trainable)
    assert (head_changed, encoder_changed) == (head_changes, True)


def test_a_wrong_feature_trainable_is_named():
    with pytest.raises(ValueError, match="--feature_trainable"):
        FeatureAdaptation(_lenet(0), _lenet(1), lenet.feature_discriminator(10, hidden=4), trainable="head")


@pytest.mark.parametrize("values,line", [
    ({"weight_decay": -1.0}, "--weight_decay=-1.0: takes a number >= 0"),
    ({"source_steps": -5}, "--source_steps=-5: takes a whole number >= 0"),
    ({"task_init": "he"}, "--task_init=he: takes one of glorot_uniform, glorot_normal"),
    ({"feature_trainable": "head"}, "--feature_trainable=head: takes one of adapted, encoder, all"),
])
def test_a_wrong_release_flag_is_refused_naming_it(values, line):
    with pytest.raises(accepts.FlagError) as refused:
        config_lib.DigitsConfig(**values)
    assert str(refused.value) == line
