"""The stages change exactly the variables their objective says: pixel adaptation trains the mappings and the
image discriminators and never f_S; feature adaptation moves f_T only through the 60% gate; the task stage
learns."""

import numpy as np
import pytest
import tensorflow as tf

import keras

from cycada_tf.train import losses
from cycada_tf.models import digit_gan, dtn, lenet
from cycada_tf.stages.feature import GATE_THRESHOLD, FeatureAdaptation, GateStop
from cycada_tf.stages.pixel import ImagePool, PixelAdaptation
from cycada_tf.stages.source import TaskStage

SIZE, BATCH = 16, 4


def _images(channels, seed, batch=BATCH):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, SIZE, SIZE, channels)).astype("float32")


def _snapshot(variables):
    return [v.numpy().copy() for v in variables]


def _changed(variables, before):
    return [not np.array_equal(v.numpy(), b) for v, b in zip(variables, before)]


def _lenet(channels, seed=0, network=lenet.LeNet):
    keras.utils.set_random_seed(seed)
    net = network(10)
    net.build((None, SIZE, SIZE, channels))
    return net


# --- pixel adaptation (Eq. 2-4) -------------------------------------------------------------------------

def test_pixel_step_trains_mappings_and_discriminators_and_leaves_f_s_untouched():
    keras.utils.set_random_seed(0)
    f_s = _lenet(3)
    nets_ = {"g_st": digit_gan.generator(SIZE, 3, 3, width=4, name="g_st"),
             "g_ts": digit_gan.generator(SIZE, 3, 3, width=4, name="g_ts"),
             "d_s": digit_gan.image_discriminator(SIZE, 3, width=4, name="d_s"),
             "d_t": digit_gan.image_discriminator(SIZE, 3, width=4, name="d_t")}
    model = PixelAdaptation(**nets_, f_s=f_s, pool_size=8)
    model.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5))
    model.build_optimizers()
    before = {name: _snapshot(net.trainable_variables) for name, net in nets_.items()}
    f_s_before = _snapshot(f_s.variables)  # weights and the dropout layers' seed states
    assert len(f_s_before) > len(f_s.trainable_weights)  # the non-trainable state is included

    # eagerly (a compiled step costs ~10 s of tracing here; the end-to-end test runs it through fit)
    logs = model.train_step((tf.constant(_images(3, 1)), tf.constant(_images(3, 2))))
    assert all(np.isfinite(float(v)) for v in logs.values()), logs

    for name, net in nets_.items():
        variables = net.trainable_variables
        changed = _changed(variables, before[name])
        assert any(changed), f"{name} did not change"
        # Every kernel and every instance-norm scale and offset moves. A convolution's bias that feeds an
        # instance norm has zero gradient in exact arithmetic (the norm removes it), so it is not required.
        for v, moved in zip(variables, changed):
            if not v.path.endswith("/bias"):
                assert moved, f"{name}: {v.path} did not change"
    for v, b in zip(f_s.variables, f_s_before):
        assert np.array_equal(v.numpy(), b), f"frozen f_s changed: {v.path}"
    assert not f_s.trainable_variables


def _ids(images):
    """Each test image is constant, its value its id."""
    return images[:, 0, 0, 0].astype(int).tolist()


def _constant_images(ids):
    return tf.constant(np.broadcast_to(np.array(ids, "float32")[:, None, None, None], (len(ids), 2, 2, 1)))


def test_image_pool_returns_a_mix_of_new_and_earlier_images_and_keeps_the_history():
    pool = ImagePool(4, (2, 2, 1), seed=0)
    first = _constant_images([1, 2, 3, 4])
    out = pool.query(first)
    assert _ids(out.numpy()) == [1, 2, 3, 4]  # an empty pool has nothing to swap in
    assert sorted(_ids(pool.images.numpy())) == [1, 2, 3, 4] and int(pool.filled.numpy()) == 4

    seen, from_pool, fresh = {1, 2, 3, 4}, 0, 0
    for step in range(1, 11):
        new_ids = [10 * step + i for i in range(4)]
        held = set(_ids(pool.images.numpy()))
        out = _ids(pool.query(_constant_images(new_ids)).numpy())
        for position, image_id in enumerate(out):
            if image_id == new_ids[position]:
                fresh += 1
            else:
                assert image_id in held, (step, out, held)  # an earlier generated image, from the pool
                from_pool += 1
        seen.update(new_ids)
        pool_ids = _ids(pool.images.numpy())
        assert set(pool_ids) <= seen and len(pool_ids) == 4
        # an image handed out from the pool leaves it, and only images of those positions take its place
        handed_out = {i for p, i in enumerate(out) if i != new_ids[p]}
        assert not handed_out & set(pool_ids), (out, pool_ids)
        entered = set(pool_ids) - held
        assert entered <= {i for p, i in enumerate(new_ids) if out[p] != i}, (out, pool_ids)
        assert len(entered) == len(handed_out)
    assert from_pool > 5 and fresh > 5  # about half of 40 each


def test_image_pool_of_size_zero_returns_its_input():
    pool = ImagePool(0, (2, 2, 1))
    images = _constant_images([5, 6, 7])
    np.testing.assert_array_equal(pool.query(images).numpy(), images.numpy())


# --- feature adaptation (Eq. 5, appendix 6.1) -----------------------------------------------------------

def _feature_stage(gate=GATE_THRESHOLD, layer="features", d_feat=None, gate_window=1, network=lenet.LeNet,
                   feature_dim=lenet.FEATURE_DIM):
    f_ref = _lenet(1, seed=0, network=network)
    f_t = _lenet(1, seed=1, network=network)
    f_t.set_weights(f_ref.get_weights())
    if d_feat is None:
        d_feat = lenet.feature_discriminator(feature_dim if layer == "features" else 10, hidden=16)
    model = FeatureAdaptation(f_ref, f_t, d_feat, layer=layer, gate=gate, gate_window=gate_window)
    model.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3))
    model.build_optimizers()
    return model


def _step(model, x_s, x_t):
    before = {"f_ref": _snapshot(model.f_ref.variables),
              "encoder": _snapshot(model.f_t.encoder.trainable_variables),
              "head": _snapshot(model.f_t.classifier.trainable_variables),
              "d_feat": _snapshot(model.d_feat.trainable_variables)}
    logs = model.train_step((tf.constant(x_s), tf.constant(x_t)))
    changed = {"f_ref": _changed(model.f_ref.variables, before["f_ref"]),
               "encoder": _changed(model.f_t.encoder.trainable_variables, before["encoder"]),
               "head": _changed(model.f_t.classifier.trainable_variables, before["head"]),
               "d_feat": _changed(model.d_feat.trainable_variables, before["d_feat"])}
    return logs, changed


@pytest.mark.parametrize("network,feature_dim", [(lenet.LeNet, lenet.FEATURE_DIM), (dtn.DTN, dtn.FEATURE_DIM)],
                         ids=["lenet", "dtn"])
def test_open_gate_with_features_updates_the_encoder_of_f_t_only(network, feature_dim):
    # any accuracy is above -1: the gate is open
    model = _feature_stage(gate=-1.0, layer="features", network=network, feature_dim=feature_dim)
    statistics = [v for v in model.f_t.non_trainable_variables if "moving" in v.path]  # the DTN's batch norm
    before = _snapshot(statistics)
    logs, changed = _step(model, _images(1, 1), _images(1, 2))
    assert not any(_changed(statistics, before))  # f_T embeds in inference mode: its statistics stay
    assert float(logs["gate_open"]) == 1.0
    assert int(model.updates.numpy()) == 1 and int(model.epoch_updates.numpy()) == 1
    assert all(changed["encoder"]), changed["encoder"]
    assert not any(changed["head"])  # the classifier head is not part of the adapted representation
    assert all(changed["d_feat"])
    assert not any(changed["f_ref"])


def test_open_gate_with_logits_updates_the_whole_f_t():
    model = _feature_stage(gate=-1.0, layer="logits")
    logs, changed = _step(model, _images(1, 1), _images(1, 2))
    assert int(model.updates.numpy()) == 1
    assert all(changed["encoder"]) and all(changed["head"])
    assert not any(changed["f_ref"])


@pytest.mark.parametrize("layer", ["features", "logits"])
def test_closed_gate_trains_only_the_discriminator(layer):
    model = _feature_stage(gate=1.01, layer=layer)  # accuracy is at most 1: the gate never opens
    for step in range(2):
        logs, changed = _step(model, _images(1, 1 + step), _images(1, 3 + step))
        assert float(logs["gate_open"]) == 0.0
        assert not any(changed["encoder"]) and not any(changed["head"]) and not any(changed["f_ref"])
        assert all(changed["d_feat"])
    assert int(model.updates.numpy()) == 0


def _fixed_discriminator(kernel, bias):
    """A feature discriminator with constant weights, so its accuracy on a batch is known in advance."""
    d = lenet.feature_discriminator(lenet.FEATURE_DIM, hidden=8)
    for layer in d.layers:
        layer.kernel.assign(np.full(layer.kernel.shape, kernel, "float32"))
        layer.bias.assign(np.full(layer.bias.shape, bias if layer is d.layers[-1] else 0.0, "float32"))
    return d


@pytest.mark.parametrize("kernel,bias,accuracy,opens", [
    (0.01, 0.0, 1.0, True),   # real (features > 0) -> logit > 0; fake (features 0) -> logit 0: all right
    (0.0, 1.0, 0.5, False),   # says "real" to everything: half right, not above 60%
])
def test_gate_opens_above_sixty_percent_discriminator_accuracy(kernel, bias, accuracy, opens):
    model = _feature_stage(d_feat=_fixed_discriminator(kernel, bias))
    x_s = np.abs(_images(1, 1))  # reference features of a non-zero image: some are positive
    x_t = np.zeros_like(x_s)     # a fresh LeNet has zero biases: a black image has all-zero features
    assert np.abs(model.f_t.features(x_t).numpy()).max() == 0.0
    assert model.f_ref.features(x_s).numpy().max() > 0.0
    logs, changed = _step(model, x_s, x_t)
    assert float(logs["d_accuracy"]) == accuracy
    assert int(model.updates.numpy()) == int(opens)
    if not opens:
        assert not any(changed["encoder"]) and not any(changed["head"])


def _feature_fit(gate, epochs):
    model = _feature_stage(gate=gate)
    data = tf.data.Dataset.from_tensors((_images(1, 1), _images(1, 2))).repeat()
    messages = []
    stop = GateStop(log=messages.append)
    history = model.fit(data, epochs=epochs, steps_per_epoch=2, verbose=0, callbacks=[stop], shuffle=False)
    return model, stop, history, messages


def test_gate_stop_ends_the_stage_after_an_epoch_without_update():
    model, stop, history, messages = _feature_fit(gate=1.01, epochs=5)
    assert history.epoch == [0]  # one epoch of five
    assert model.stop_training and stop.stopped_epoch == 0
    assert int(model.updates.numpy()) == 0
    assert len(messages) == 1 and "stopping" in messages[0] and "epoch 1" in messages[0]


def test_gate_stop_lets_every_epoch_run_while_the_gate_opens():
    model, stop, history, messages = _feature_fit(gate=-1.0, epochs=3)
    assert history.epoch == [0, 1, 2]
    assert stop.stopped_epoch is None and not messages
    assert int(model.updates.numpy()) == 3 * 2  # every step of every epoch
    assert int(model.epoch_updates.numpy()) == 2  # counted afresh each epoch


class _Recording(keras.Model):
    """Passes its inputs to a discriminator and keeps a copy of each (eager steps only)."""

    def __init__(self, inner, seen, **kwargs):
        super().__init__(**kwargs)
        self.inner = inner
        self._record = seen.append  # a bound method: Keras would copy a list attribute into a tracked one

    def call(self, x, training=False):
        self._record(np.array(x))
        return self.inner(x, training=training)


@pytest.mark.parametrize("layer", ["features", "logits"])
def test_discriminator_sees_reference_and_target_features_computed_alike(layer):
    # With f_T = f_ref and the same images there is no domain to tell apart: the features D_feat gets as
    # "real" (f_ref) and as "fake" (f_T) must come from the same computation, or D_feat separates them by the
    # way they were computed (dropout on one side only: half the units zeroed, the rest doubled) and the
    # 60% gate measures that instead of the domain gap.
    seen = []
    d = _Recording(lenet.feature_discriminator(lenet.FEATURE_DIM if layer == "features" else 10, hidden=16), seen)
    model = _feature_stage(layer=layer, d_feat=d)
    x = _images(1, 1, batch=8)
    model.train_step((tf.constant(x), tf.constant(x)))
    real, fake = seen[0], seen[1]
    assert real.shape == fake.shape
    zero_real, zero_fake = np.mean(real == 0.0), np.mean(fake == 0.0)
    assert abs(zero_fake - zero_real) < 0.1, (zero_real, zero_fake)
    if layer == "logits":  # logits are not sparse: compare the values' spread instead
        spread_real, spread_fake = np.std(real), np.std(fake)
        assert spread_fake < 1.5 * spread_real and spread_real < 1.5 * spread_fake, (spread_real, spread_fake)


# --- task stage (Eq. 1) --------------------------------------------------------------------------------

def test_task_stage_lowers_the_task_loss_on_a_fixed_batch():
    net = _lenet(1)
    x = _images(1, 5, batch=8)
    y = np.arange(8, dtype="int32") % 10
    before = float(losses.task_loss(y, net(x, training=False)))
    stage = TaskStage(net)
    stage.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = stage.fit(tf.data.Dataset.from_tensors((x, y)).repeat(), epochs=1, steps_per_epoch=30,
                        verbose=0, shuffle=False).history
    after = float(losses.task_loss(y, net(x, training=False)))
    assert np.isfinite(history["loss"][-1])
    assert after < 0.8 * before, (before, after)



def test_the_gate_reads_the_mean_accuracy_of_the_last_window_iterations():
    model = _feature_stage(gate_window=3)
    means = [float(model.window_accuracy(tf.constant(a))) for a in (0.9, 0.3, 0.6, 0.0, 0.0, 1.0)]
    np.testing.assert_allclose(means, [0.9, 0.6, 0.6, 0.3, 0.2, 1.0 / 3], rtol=1e-6)  # fewer at the start
    digits = _feature_stage()  # window 1: the current batch alone, as before
    assert [float(digits.window_accuracy(tf.constant(a))) for a in (0.9, 0.3)] == pytest.approx([0.9, 0.3])


@pytest.mark.parametrize("window, opens", [(1, True), (100, False)])
def test_one_accurate_batch_opens_the_last_batch_gate_but_not_the_100_iteration_gate(monkeypatch, window, opens):
    # 100 iterations at chance (accuracy 0), then one at accuracy 1: the last batch is above 60%, the mean of
    # the last 100 (0.01) is not, so only the digits' gate lets f_T learn (segmentation, appendix 6.1).
    from cycada_tf.train import losses
    model = _feature_stage(gate_window=window)
    for _ in range(100):
        model.window_accuracy(tf.constant(0.0))
    monkeypatch.setattr(losses, "discriminator_accuracy", lambda real, fake, mode="log": tf.constant(1.0))
    logs, changed = _step(model, _images(1, 1), _images(1, 2))
    assert (all(changed["encoder"]) if opens else not any(changed["encoder"])), changed["encoder"]
    assert int(model.updates.numpy()) == int(opens)
    assert float(logs["gate_open"]) == float(opens)


# --- the paper-protocol options (CycleGAN's recipe, the feature stage's own objective and weight) -------------

def _pixel_model(**options):
    keras.utils.set_random_seed(0)
    nets_ = {"g_st": digit_gan.generator(SIZE, 3, 3, width=4, name="g_st"),
             "g_ts": digit_gan.generator(SIZE, 3, 3, width=4, name="g_ts"),
             "d_s": digit_gan.image_discriminator(SIZE, 3, width=4, name="d_s"),
             "d_t": digit_gan.image_discriminator(SIZE, 3, width=4, name="d_t")}
    model = PixelAdaptation(**nets_, f_s=_lenet(3), pool_size=0, semantic_weight=0.0, **options)
    model.compile(keras.optimizers.SGD(0.0), keras.optimizers.SGD(0.0))
    return model


def test_identity_loss_is_cyclegans_weighted_by_the_cycle_weight():
    x_s, x_t = tf.constant(_images(3, 1)), tf.constant(_images(3, 2))
    logs = _pixel_model(identity_weight=0.5, cycle_weight=10.0).train_step((x_s, x_t))
    model = _pixel_model(identity_weight=0.5, cycle_weight=10.0)  # the same weights, before any step
    want = (np.mean(np.abs(model.g_st(x_t, training=True).numpy() - x_t.numpy()))
            + np.mean(np.abs(model.g_ts(x_s, training=True).numpy() - x_s.numpy())))
    np.testing.assert_allclose(float(logs["identity"]), want, rtol=1e-5)
    terms = float(logs["gan_st"]) + float(logs["gan_ts"]) + 10.0 * float(logs["cycle"]) + 5.0 * want
    np.testing.assert_allclose(float(logs["g_loss"]), terms, rtol=1e-5)
    assert float(_pixel_model().train_step((x_s, x_t))["identity"]) == 0.0  # off by default


def test_linear_decay_holds_the_rate_for_half_the_steps_then_reaches_zero():
    from cycada_tf.stages.pixel import LinearDecay
    schedule = LinearDecay(2e-4, 100)
    rates = [float(schedule(step)) for step in (0, 49, 50, 75, 100, 120)]
    np.testing.assert_allclose(rates, [2e-4, 2e-4, 2e-4, 1e-4, 0.0, 0.0], atol=1e-12)


def test_feature_g_weight_scales_f_ts_update_and_the_objective_is_its_own():
    lr = 1e-3
    x_s, x_t = _images(1, 1), _images(1, 2)
    deltas = {}
    for weight in (1.0, 0.1):
        model = _feature_stage(gate=-1.0)
        model.g_weight = weight
        model.compile(keras.optimizers.SGD(lr), keras.optimizers.SGD(lr))
        model.build_optimizers()
        before = _snapshot(model.f_t.encoder.trainable_variables)
        model.train_step((tf.constant(x_s), tf.constant(x_t)))
        deltas[weight] = [v.numpy() - b for v, b in zip(model.f_t.encoder.trainable_variables, before)]
    assert max(np.abs(d).max() for d in deltas[1.0]) > 1e-5  # a step large enough to compare
    for full, tenth in zip(deltas[1.0], deltas[0.1]):  # plain SGD: the step is linear in the loss weight
        np.testing.assert_allclose(tenth, 0.1 * full, rtol=1e-2, atol=1e-7)  # float32 rounding of w + dw
    with pytest.raises(ValueError, match="--feature_gan_mode"):
        FeatureAdaptation(_lenet(1), _lenet(1), lenet.feature_discriminator(hidden=4), gan_mode="hinge")
