"""Feature-level adaptation, Eq. 5: D_feat tells the reference model's features of translated source images
from f_T's features of target images; f_T learns to fool it, but only while D_feat is good enough to be
worth fooling (accuracy above the gate, appendix 6.1: on the last batch for digits, over the last 100
iterations for segmentation: `gate_window`). With --feature_task_weight, f_T also keeps Eq. 6's
L_task(f_T, G_S->T(X_S), Y_S) on the labelled translated source batches, in the same gated update."""

import os

import keras
import tensorflow as tf

from cycada_tf.train import figures, losses
from cycada_tf.data import pipeline
from cycada_tf.stages import target
from cycada_tf.stages.base import Plan, Stage, StageModel, build_optimizer, replica_scale
from cycada_tf.train.summaries import GateTrace, joined, log

GATE_THRESHOLD = 0.6  # appendix 6.1: update f_T only when the discriminator accuracy is above 60%
# Iterations whose mean accuracy the gate reads (--gate_window): the last batch for digits, 100 for segmentation.
GATE_WINDOW_DIGITS = 1
TRAINABLE = ("adapted", "encoder", "all")  # --feature_trainable: which of f_T's weights its update changes


class GatedModel(StageModel):
    """The gate of appendix 6.1 as state of a stage model: the window of D_feat's last accuracies, and f_T's
    update applied only while the gate is open, counted (gated_updates) and the same on every replica."""

    def gate_state(self, gate_window):
        """The gate's variables, part of the stage checkpoint so that a resumed stage gates as an unbroken one:
        the update counts and the last `gate_window` accuracies (a ring buffer) with the iterations seen."""
        # Counted once per step under a multi-replica strategy too (every replica takes the same branch).
        once = tf.VariableAggregation.ONLY_FIRST_REPLICA
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="gated_updates", aggregation=once)
        self.epoch_updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch_gated_updates",
                                         aggregation=once)
        self.gate_window = int(gate_window)
        self.recent_accuracies = tf.Variable(tf.zeros([self.gate_window]), trainable=False,
                                             name="recent_d_accuracies", aggregation=once)
        self.steps_seen = tf.Variable(0, dtype=tf.int64, trainable=False, name="gate_steps_seen",
                                      aggregation=once)

    def window_accuracy(self, accuracy):
        """Record this iteration's accuracy; the mean over the last gate_window iterations."""
        slot = tf.cast(self.steps_seen % self.gate_window, tf.int32)
        self.recent_accuracies.assign(tf.tensor_scatter_nd_update(
            self.recent_accuracies, [[slot]], tf.reshape(tf.cast(accuracy, tf.float32), [1])))
        self.steps_seen.assign_add(1)
        filled = tf.minimum(self.steps_seen, self.gate_window)
        return tf.reduce_sum(self.recent_accuracies) / tf.cast(filled, tf.float32)

    def gated_update(self, open_gate, grads, variables):
        """self.optimizer applies `grads` to `variables` if `open_gate`, else nothing happens."""
        if not tf.distribute.has_strategy():
            self._gated_update(open_gate, grads, variables)
        else:
            # An optimizer update synchronises the replicas (a merge_call, even with one replica), which a
            # tf.cond in a replica may not hold: take the (replica-independent) branch once, across the
            # replicas, and update in each replica from there (as keras.optimizers.LossScaleOptimizer skips
            # a step).
            tf.distribute.get_replica_context().merge_call(self._merged_gated_update,
                                                           args=(open_gate, grads, variables))

    def _update(self, grads, variables):
        self.optimizer.apply_gradients(zip(grads, variables))
        self.updates.assign_add(1)
        self.epoch_updates.assign_add(1)
        return tf.constant(True)

    def _gated_update(self, open_gate, grads, variables):
        tf.cond(open_gate, lambda: self._update(grads, variables), lambda: tf.constant(False))

    def _merged_gated_update(self, strategy, open_gate, grads, variables):
        def update():
            strategy.extended.call_for_each_replica(self._update, args=(grads, variables))
            return tf.constant(True)

        tf.cond(strategy.experimental_local_results(open_gate)[0], update, lambda: tf.constant(False))


class FeatureAdaptation(GatedModel):
    """f_ref (frozen) embeds translated source images, f_t (trainable, initialised from f_ref) embeds target
    images; d_feat discriminates. layer="features" adapts the 500-d representation (paper) and updates the
    encoder; layer="logits" adapts the class scores and updates the whole net (released code).

    encoders: (ref_encoder, t_encoder), the part of f_ref and f_t up to the adapted features, sharing their
    layers (default: each net's .encoder, the LeNet's; a segmenter's is the sub-model up to its "features"
    layer, whose output is a feature map that d_feat scores per position).
    gate_window: the gate reads the mean discriminator accuracy of the last `gate_window` iterations (fewer
    at the start of the stage): 1 (digits) is the current batch alone, 100 the segmentation rule.
    g_weight: the weight of f_T's fooling loss (appendix 6.1.2: 0.1 for segmentation). dropout: both nets
    embed with dropout on (default off: both in inference mode). trainable: the weights of f_t that f_T's
    update changes: "adapted" (those under `layer`; all of them with a task term), "encoder" (its encoder's
    alone) or "all".
    task_weight: the weight of Eq. 6's L_task of f_T on the labelled translated source batches ((x_s, y_s),
    x_t), pixels of `ignore_label` left out; 0: batches (x_s, x_t) and no task term. The term joins the
    fooling loss in f_T's one update, so a closed gate skips both (the release, scripts/train_fcn_adda.py
    lines 307-329, takes its supervised step only when the gate opens); f_T reads x_s for it in the mode
    it embeds in (inference unless `dropout`).
    shared: D_feat's reference side is f_T itself, not the frozen f_ref (the release's --weights_shared)."""

    # What TensorBoard says beside each value train_step reports (summaries.TensorBoardSummaries), epoch means.
    SCALARS = {"d_loss": "L_GAN(D_feat) (Eq. 5), the discriminator's side: features of f_S(x_s) against f_T(x_t).",
               "g_loss": "L_GAN(f_T) (Eq. 5), f_T's side: D_feat fooled by f_T(x_t)'s features.",
               "d_accuracy": "D_feat's accuracy on the batch (0.5: it cannot tell the domains apart).",
               "gate_accuracy": "D_feat's accuracy averaged over the gate's window, what the gate reads.",
               "gate_open": "Share of the epoch's iterations whose gate was open (D_feat above 60%): f_T updated.",
               "gated_updates": "f_T's updates so far, all epochs: the iterations with the gate open.",
               "task_loss": "L_task(f_T, G_S->T(X_S), Y_S) (Eq. 6) on the labelled translated source batches."}

    def __init__(self, f_ref, f_t, d_feat, layer="features", gan_mode="log", gate=GATE_THRESHOLD,
                 encoders=None, gate_window=GATE_WINDOW_DIGITS, g_weight=1.0, dropout=False, trainable="adapted",
                 task_weight=0.0, ignore_label=None, shared=False, **kwargs):
        super().__init__(**kwargs)
        if layer not in ("features", "logits"):
            raise ValueError(f"--feature_layer must be 'features' or 'logits', got {layer!r}")
        if trainable not in TRAINABLE:
            raise ValueError(f"--feature_trainable must be one of {', '.join(TRAINABLE)}, got {trainable!r}")
        if not task_weight >= 0:
            raise ValueError(f"--feature_task_weight must be >= 0, got {task_weight}")
        if gate_window < 1:
            raise ValueError(f"the gate window must be at least 1 iteration, got {gate_window}")
        self.f_ref, self.f_t, self.d_feat = f_ref, f_t, d_feat
        self.f_ref.trainable = False
        self.ref_encoder, self.t_encoder = encoders if encoders is not None else (f_ref.encoder, f_t.encoder)
        if gan_mode not in ("log", "lsgan"):
            raise ValueError(f"--feature_gan_mode must be 'log' or 'lsgan', got {gan_mode!r}")
        self.layer, self.gan_mode, self.gate = layer, gan_mode, gate
        self.g_weight, self.dropout, self.f_trainable = float(g_weight), bool(dropout), trainable
        self.task_weight, self.ignore_label, self.shared = float(task_weight), ignore_label, bool(shared)
        self.gate_state(gate_window)
        names = ["d_loss", "g_loss", "d_accuracy", "gate_open"]
        if self.gate_window > 1:  # the accuracy the gate reads, when it is not d_accuracy itself
            names.insert(3, "gate_accuracy")
        if self.task_weight:
            names.append("task_loss")
        self.trackers = {n: keras.metrics.Mean(name=n) for n in names}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, x, training=False):
        return self.f_t(x, training=training)

    OPTIMIZERS = ("optimizer", "d_optimizer")  # f_T's, D_feat's

    def compile(self, f_optimizer, d_optimizer, **kwargs):
        super().compile(optimizer=f_optimizer, **kwargs)
        self.d_optimizer = d_optimizer

    def _embed(self, net, x, training):
        if self.layer == "features":
            encoder = self.ref_encoder if net is self.f_ref else self.t_encoder
            return encoder(x, training=training)
        return net(x, training=training)

    @property
    def f_variables(self):
        """What f_T's update trains: --feature_trainable's choice; "adapted" is the encoder for the features
        alone, else (scores, or a task term) all."""
        if self.f_trainable == "encoder" or (self.f_trainable == "adapted" and self.layer == "features"
                                             and not self.task_weight):
            return self.t_encoder.trainable_variables
        return self.f_t.trainable_variables

    def build_optimizers(self):
        build_optimizer(self.optimizer, self.f_variables)
        build_optimizer(self.d_optimizer, self.d_feat.trainable_variables)

    def train_step(self, data):
        # Both networks embed alike (inference mode unless --feature_dropout): with dropout on one side only,
        # D_feat could tell the two apart by the dropout pattern alone, and the gate would measure dropout
        # instead of the domain gap.
        if self.task_weight:
            (x_s, y_s), x_t = data
        else:
            x_s, x_t = data
        embedding = self.dropout
        reference = tf.stop_gradient(self._embed(self.f_t if self.shared else self.f_ref, x_s, training=embedding))
        with tf.GradientTape() as tape:
            real = self.d_feat(reference, training=True)
            fake = self.d_feat(tf.stop_gradient(self._embed(self.f_t, x_t, training=embedding)), training=True)
            d_loss = losses.gan_discriminator_loss(real, fake, self.gan_mode)
            scaled = replica_scale(d_loss, self.d_optimizer)
        # The gate reads the accuracy on the global batch: every replica must take the same branch below, or
        # the replicas that update f_T would wait forever for the others' gradients.
        accuracy = tf.distribute.get_replica_context().all_reduce(
            "MEAN", losses.discriminator_accuracy(real, fake, self.gan_mode))
        grads = tape.gradient(scaled, self.d_feat.trainable_variables)
        self.d_optimizer.apply_gradients(zip(grads, self.d_feat.trainable_variables))

        gate_accuracy = self.window_accuracy(accuracy)
        open_gate = gate_accuracy > self.gate
        variables = self.f_variables
        with tf.GradientTape() as tape:
            g_loss = losses.gan_generator_loss(
                self.d_feat(self._embed(self.f_t, x_t, training=embedding), training=False), self.gan_mode)
            loss = self.g_weight * g_loss
            if self.task_weight:  # in float32 (task_loss casts), scaled with the fooling loss below
                task_loss = losses.task_loss(y_s, self.f_t(x_s, training=embedding), self.ignore_label)
                loss += self.task_weight * task_loss
            scaled = replica_scale(loss, self.optimizer)
        grads = tape.gradient(scaled, variables)
        self.gated_update(open_gate, grads, variables)
        values = {"d_loss": d_loss, "g_loss": g_loss, "d_accuracy": accuracy, "gate_accuracy": gate_accuracy,
                  "gate_open": tf.cast(open_gate, tf.float32)}
        if self.task_weight:
            values["task_loss"] = task_loss
        values = {name: value for name, value in values.items() if name in self.trackers}
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}


class GateStop(keras.callbacks.Callback):
    """Ends feature adaptation after an epoch in which the gate never opened (appendix 6.1)."""

    def __init__(self, log=print):
        super().__init__()
        self.log = log
        # A variable, so that a stage checkpoint remembers that the gate ended it (-1: it did not).
        self.stopped = tf.Variable(-1, dtype=tf.int64, trainable=False, name="stopped_epoch")

    @property
    def stopped_epoch(self):
        epoch = int(self.stopped.numpy())
        return None if epoch < 0 else epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.model.epoch_updates.assign(0)

    def on_epoch_end(self, epoch, logs=None):
        if int(self.model.epoch_updates.numpy()) == 0:
            self.stopped.assign(epoch)
            self.model.stop_training = True
            self.log(f"feature adaptation: no discriminator above {self.model.gate:.0%} accuracy in epoch "
                     f"{epoch + 1}: stopping (appendix 6.1)")


def build(task, config, f_ref, f_t, gate=GATE_THRESHOLD, dtype=None):
    """The feature stage's model for `task` (f_ref frozen, f_t trained) and its two optimizers (f_T, D_feat):
    what training and tools/benchmark.py (with the gate held open) both build. D_feat and the model compute in
    the dtype policy `dtype`, as f_ref and f_t do."""
    model = FeatureAdaptation(f_ref, f_t, task.feature_discriminator(dtype=dtype), layer=config.feature_layer,
                              gan_mode=config.feature_gan_mode, gate=gate, g_weight=config.feature_g_weight,
                              dropout=config.feature_dropout, trainable=config.feature_trainable,
                              task_weight=config.feature_task_weight, ignore_label=task.ignore_label, dtype=dtype,
                              **task.feature_options(f_ref, f_t))
    return model, tuple(task.optimizer("feature", decayed=True) for _ in range(2))  # f_T's and D_feat's


def wire(trial):
    """Eq. 5 between the translated source records (with their source labels for the task term) and the target
    training images as f_T reads them; the gate (60% discriminator accuracy) decides each update of f_T and
    ends the stage (GateStop)."""
    c, task, seed = trial.config, trial.task, trial.seed
    keras.utils.set_random_seed(seed)
    f_ref, f_t = trial.network("target"), trial.network("target")
    model, optimizers = build(task, c, f_ref, f_t, dtype=trial.dtype)
    b = c.feature_batch_size
    xs, _ = task.load_translated(trial.translated_dir("source"), c.feature_task_weight > 0, seed, stage="feature")
    if trial.direction == "s2t":
        xt = task.inputs("target", "unlabelled", labels=False, shuffle=True, seed=seed + 1, repeat=True,
                         stage="feature")
    else:
        xt, _ = task.load_translated(trial.translated_dir("target"), False, seed + 1, stage="feature")
    dataset = tf.data.Dataset.zip(pipeline.batch(xs, b), pipeline.batch(xt, b))
    steps = max(c.feature_min_steps_per_epoch, task.count("target", "unlabelled") // b, 1)
    stop = GateStop(log)
    trace = GateTrace(os.path.join(trial.stage_dir("feature"), FIGURE))  # D_feat accuracy vs the gate
    view = trial.view_of("feature")  # after every network of the stage: their initial weights stay those of s2t

    def result(logs):
        return {**task.scores(f_t, "target", translate=view), "gated_updates": int(model.updates.numpy()),
                "stopped_by_gate_at_epoch": stop.stopped_epoch}

    return Plan(model, optimizers, dataset.prefetch(2), c.feature_epochs, steps, outputs={"f": f_t},
                result=result, callbacks=[stop, trace], scalars=lambda model: {"gated_updates": model.updates.numpy()},
                periodic=joined(task.test_summaries(f_t, view), trace.periodic), may_stop_early=True,
                done=lambda: stop.stopped_epoch is not None,
                state={"updates": model.updates, "gate_stopped_epoch": stop.stopped,
                       "gate_recent_accuracies": model.recent_accuracies, "gate_steps_seen": model.steps_seen})


FIGURE = "gate.png"


def report(run_dir, seeds, task_name):
    """report.md's lines for each seed's gate figure."""
    return figures.report_section(
        run_dir, seeds, "feature", FIGURE, "The feature stage's gate",
        "D_feat's accuracy as the gate read it at each iteration, against the 60% line above which f_T is "
        "updated (appendix 6.1), and f_T's updates per epoch.", "gate")


STAGE = Stage("feature", wire, needs=lambda config: ("target",), label="CyCADA pixel+feat", epochs="feature_epochs",
              prior={"digits": 0.2, "segmentation": 0.24}, candidate=2, reads_translated=target.reads_translated,
              crop="feature_crop_size", report=report)
