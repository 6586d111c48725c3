"""Pixel-level adaptation, Eq. 2-4: two mappings G_S->T and G_T->S, two image discriminators D_S and D_T,
cycle consistency, and semantic consistency through the frozen source model f_S."""

import os

import keras
import tensorflow as tf

from cycada_tf.train import figures, losses
from cycada_tf import selection
from cycada_tf.stages.base import Plan, Stage, StageModel, build_optimizer, replica_scale


class ImagePool(tf.Module):
    """A history of generated images (Shrivastava et al. 2017, as in CycleGAN): each image shown to the
    discriminator is, with probability 1/2, swapped for one generated earlier, so the discriminator keeps
    penalising modes the generator has left and cannot be gamed by cycling between them. A tf.Module, so that
    a stage checkpoint holds its images and random state."""

    def __init__(self, size, image_shape, seed=0):
        super().__init__(name="image_pool")
        self.size = size
        if size:
            # Under a multi-replica strategy each replica keeps its own pool of the images it generated
            # (ON_READ: a local copy per replica; a checkpoint holds the first replica's).
            local = dict(synchronization=tf.VariableSynchronization.ON_READ,
                         aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
            self.images = tf.Variable(tf.zeros((size,) + tuple(image_shape)), trainable=False, **local)
            self.filled = tf.Variable(0, dtype=tf.int32, trainable=False, **local)
            self.rng = tf.random.Generator.from_seed(seed)

    def query(self, fake):
        if not self.size:
            return fake
        batch = tf.shape(fake)[0]
        # Distinct slots for the images of one batch (as CycleGAN's one-at-a-time pool), unless the batch is
        # larger than the pool; old images are handed back only once the pool is full, as in CycleGAN.
        order = tf.argsort(self.rng.uniform([tf.maximum(batch, self.size)]))
        index = order[:batch] % self.size
        from_pool = (self.rng.uniform([batch]) < 0.5) & (self.filled >= self.size)
        old = tf.gather(self.images, index)
        out = tf.where(from_pool[:, None, None, None], old, fake)
        # While filling, append; once full, the swapped-out slots take the new images.
        append = (self.filled + tf.range(batch)) % self.size
        slots = tf.where(self.filled < self.size, append, tf.where(from_pool, index, -1))
        keep = slots >= 0
        self.images.assign(tf.tensor_scatter_nd_update(self.images, tf.boolean_mask(slots, keep)[:, None],
                                                       tf.boolean_mask(fake, keep)))
        self.filled.assign(tf.minimum(self.filled + batch, self.size))
        return out


class PixelAdaptation(StageModel):
    """Trains g_st, g_ts, d_s, d_t on unpaired batches (x_s, x_t); f_s is frozen (pretrained source model),
    a classifier or a segmenter (then Eq. 4 is a per-pixel cross-entropy against f_S's per-pixel labels)."""

    # What TensorBoard says beside each value train_step reports (summaries.TensorBoardSummaries), epoch means.
    SCALARS = {"g_loss": "The generators' objective: the GAN, cycle, identity and semantic terms, weighted.",
               "gan_st": "L_GAN(G_S->T, D_T) (Eq. 2), the generator's side: D_T fooled by G_S->T(x_s).",
               "gan_ts": "L_GAN(G_T->S, D_S), the generator's side: D_S fooled by G_T->S(x_t).",
               "cycle": "L_cyc (Eq. 3): L1 distance of x_s to G_T->S(G_S->T(x_s)) and of x_t to G_S->T(G_T->S(x_t)).",
               "identity": "CycleGAN's identity term: L1 distance of each mapping's output from an image already "
                           "in its output domain.",
               "semantic_st": "L_sem (Eq. 4), source side: f_S's labels of x_s kept on G_S->T(x_s).",
               "semantic_ts": "L_sem (Eq. 4), target side: f_S's labels of x_t kept on G_T->S(x_t).",
               "d_loss": "The discriminators' objective (D_S and D_T, real against translated).",
               "d_t_accuracy": "D_T's accuracy telling x_t from G_S->T(x_s) (0.5: it cannot tell).",
               "d_s_accuracy": "D_S's accuracy telling x_s from G_T->S(x_t) (0.5: it cannot tell)."}

    def __init__(self, g_st, g_ts, d_s, d_t, f_s, gan_mode="log", gan_weight=1.0, cycle_weight=1.0,
                 semantic_weight=1.0, semantic_t2s_weight=None, pool_size=50, seed=0, image_shape=None,
                 identity_weight=0.0, **kwargs):
        super().__init__(**kwargs)
        self.g_st, self.g_ts, self.d_s, self.d_t, self.f_s = g_st, g_ts, d_s, d_t, f_s
        self.f_s.trainable = False
        self.gan_mode = gan_mode
        self.gan_weight, self.cycle_weight = gan_weight, cycle_weight
        # CycleGAN's identity loss: each mapping leaves images of its output domain as they are, weighted as
        # CycleGAN's lambda_identity, relative to the cycle weight.
        self.identity_weight = identity_weight * cycle_weight
        # Eq. 4 has two terms: G_ST(x_s) must keep f_S's label of x_s (weight semantic_weight) and G_TS(x_t)
        # must keep f_S's label of x_t (semantic_t2s_weight, the same weight unless given).
        self.semantic_weight = semantic_weight
        self.semantic_t2s_weight = semantic_weight if semantic_t2s_weight is None else semantic_t2s_weight
        # The pools hold images of one shape: the generators' (fixed-size networks) or `image_shape`, the
        # training crop of fully convolutional ones (segmentation).
        shape_t = tuple(image_shape or g_st.output_shape[1:])
        shape_s = tuple(image_shape or g_ts.output_shape[1:])
        self.pool_t = ImagePool(pool_size, shape_t, seed)
        self.pool_s = ImagePool(pool_size, shape_s, seed + 1)
        self.trackers = {n: keras.metrics.Mean(name=n) for n in self.SCALARS}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, x_s, training=False):
        return self.g_st(x_s, training=training)

    OPTIMIZERS = ("optimizer", "d_optimizer")  # the generators', the discriminators'

    def compile(self, g_optimizer, d_optimizer, **kwargs):
        super().compile(optimizer=g_optimizer, **kwargs)
        self.d_optimizer = d_optimizer

    @property
    def generator_variables(self):
        return self.g_st.trainable_variables + self.g_ts.trainable_variables

    @property
    def discriminator_variables(self):
        return self.d_s.trainable_variables + self.d_t.trainable_variables

    def build_optimizers(self):
        build_optimizer(self.optimizer, self.generator_variables)
        build_optimizer(self.d_optimizer, self.discriminator_variables)

    def train_step(self, data):
        x_s, x_t = data
        with tf.GradientTape() as tape:
            fake_t = self.g_st(x_s, training=True)
            fake_s = self.g_ts(x_t, training=True)
            rec_s = self.g_ts(fake_t, training=True)
            rec_t = self.g_st(fake_s, training=True)
            gan_st = losses.gan_generator_loss(self.d_t(fake_t, training=True), self.gan_mode)
            gan_ts = losses.gan_generator_loss(self.d_s(fake_s, training=True), self.gan_mode)
            cycle = losses.cycle_consistency_loss(x_s, rec_s, x_t, rec_t)
            identity = tf.constant(0.0)
            if self.identity_weight:
                identity = losses.cycle_consistency_loss(x_t, self.g_st(x_t, training=True),
                                                         x_s, self.g_ts(x_s, training=True))
            semantic_st = semantic_ts = tf.constant(0.0)
            if self.semantic_weight:
                semantic_st = losses.semantic_consistency_term(self.f_s(x_s, training=False),
                                                               self.f_s(fake_t, training=False))
            if self.semantic_t2s_weight:
                semantic_ts = losses.semantic_consistency_term(self.f_s(x_t, training=False),
                                                               self.f_s(fake_s, training=False))
            g_loss = (self.gan_weight * (gan_st + gan_ts) + self.cycle_weight * cycle
                      + self.identity_weight * identity
                      + self.semantic_weight * semantic_st + self.semantic_t2s_weight * semantic_ts)
            scaled = replica_scale(g_loss, self.optimizer)
        variables = self.generator_variables
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))

        pooled_t = self.pool_t.query(tf.stop_gradient(tf.cast(fake_t, tf.float32)))
        pooled_s = self.pool_s.query(tf.stop_gradient(tf.cast(fake_s, tf.float32)))
        with tf.GradientTape() as tape:
            real_t, fake_t_logits = self.d_t(x_t, training=True), self.d_t(pooled_t, training=True)
            real_s, fake_s_logits = self.d_s(x_s, training=True), self.d_s(pooled_s, training=True)
            d_loss = (losses.gan_discriminator_loss(real_t, fake_t_logits, self.gan_mode)
                      + losses.gan_discriminator_loss(real_s, fake_s_logits, self.gan_mode))
            scaled = replica_scale(d_loss, self.d_optimizer)
        variables = self.discriminator_variables
        grads = tape.gradient(scaled, variables)
        self.d_optimizer.apply_gradients(zip(grads, variables))

        values = {"g_loss": g_loss, "gan_st": gan_st, "gan_ts": gan_ts, "cycle": cycle, "identity": identity,
                  "semantic_st": semantic_st, "semantic_ts": semantic_ts,
                  "d_loss": d_loss,
                  "d_t_accuracy": losses.discriminator_accuracy(real_t, fake_t_logits, self.gan_mode),
                  "d_s_accuracy": losses.discriminator_accuracy(real_s, fake_s_logits, self.gan_mode)}
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}


@keras.saving.register_keras_serializable("cycada_tf")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """CycleGAN's schedule: `lr` for the first half of `total_steps`, then linearly down to 0 at the end
    (per iteration)."""

    def __init__(self, lr, total_steps):
        self.lr, self.total_steps = float(lr), int(total_steps)

    def __call__(self, step):
        half = self.total_steps // 2
        left = tf.cast(self.total_steps - step, tf.float32) / float(max(self.total_steps - half, 1))
        return self.lr * tf.clip_by_value(left, 0.0, 1.0)

    def get_config(self):
        return {"lr": self.lr, "total_steps": self.total_steps}


def learning_rate(config, steps_per_epoch):
    """--pixel_lr under --pixel_lr_decay (none, or CycleGAN's linear decay over the second half)."""
    if config.pixel_lr_decay == "none":
        return config.pixel_lr
    if config.pixel_lr_decay != "linear":
        raise ValueError(f"--pixel_lr_decay must be none or linear, got {config.pixel_lr_decay!r}")
    return LinearDecay(config.pixel_lr, config.pixel_epochs * steps_per_epoch)


def build(task, config, seed, f_s, steps_per_epoch=1, dtype=None):
    """The pixel stage's model for `task` with the frozen source model `f_s`, and its two optimizers
    (generators, discriminators): what training and tools/benchmark.py both build. The translators, the
    discriminators and the model compute in the dtype policy `dtype`, as f_s does."""
    c = config
    g_st, g_ts = task.generators(dtype=dtype)
    d_s, d_t = (task.image_discriminator(name, dtype=dtype) for name in ("d_s", "d_t"))
    model = PixelAdaptation(g_st, g_ts, d_s, d_t, f_s, gan_mode=c.gan_mode, gan_weight=c.gan_weight,
                            cycle_weight=c.cycle_weight, semantic_weight=c.semantic_weight,
                            semantic_t2s_weight=c.semantic_t2s_weight, pool_size=c.pool_size, seed=seed,
                            identity_weight=c.identity_weight, dtype=dtype, **task.pixel_options())
    return model, tuple(keras.optimizers.Adam(learning_rate(c, steps_per_epoch), beta_1=c.pixel_beta_1)
                        for _ in range(2))


def wire(trial):
    """Eq. 2-4 on unpaired batches of both domains' training images; after it, the label-free choice of the
    target model's direction (selection.choose_direction) and f_S's target test scores through G_T->S."""
    c, task, seed = trial.config, trial.task, trial.seed
    keras.utils.set_random_seed(seed)
    f_s = trial.network("source")
    b = c.pixel_batch_size
    steps = max(1, max(task.count("source", "unlabelled"), task.count("target", "unlabelled")) // b)
    model, optimizers = build(task, c, seed, f_s, steps, dtype=trial.dtype)
    xs, xt = (task.inputs(domain, "unlabelled", labels=False, shuffle=True, seed=seed + k, repeat=True,
                          stage="pixel") for k, domain in enumerate(("source", "target")))
    dataset = tf.data.Dataset.zip(xs.batch(b, drop_remainder=True), xt.batch(b, drop_remainder=True))
    grid = task.translation_grid(model.g_st, model.g_ts, os.path.join(trial.stage_dir("pixel"), FIGURE))

    def result(logs):
        grid.draw()
        g_ts = task.applied(model.g_ts)
        return {"final": logs, **task.scores(f_s, "target", translate=g_ts, suffix="_t2s"),
                "direction": selection.choose_direction(trial, f_s, g_ts)}

    return Plan(model, optimizers, dataset.prefetch(2), c.pixel_epochs, steps,
                outputs={"g_st": model.g_st, "g_ts": model.g_ts}, result=result, callbacks=[grid],
                periodic=lambda model: {"translations": grid.latest},
                state={"pool_t": model.pool_t, "pool_s": model.pool_s})


FIGURE = "translations.png"
PAPER_FIGURES = {"digits": "Figure 3", "segmentation": "Figure 4"}  # the paper's translations of each task


def report(run_dir, seeds, task_name):
    """report.md's lines for each seed's translation grid (cf. the paper's figure of the task)."""
    heading = f"Translations (cf. the paper's {PAPER_FIGURES.get(task_name, 'Figure 3')})"
    return figures.report_section(
        run_dir, seeds, "pixel", FIGURE, heading,
        "Rows, top to bottom: " + ", ".join(f"`{row}`" for row in figures.TRANSLATION_ROWS)
        + "; each column is one of the first test images of its domain.", "translations")


STAGE = Stage("pixel", wire, needs=lambda config: ("source",),
              label="f_S on G_T->S(x_t) (pixel, target to source)", key_suffix="_t2s", epochs="pixel_epochs",
              prior={"digits": 1.0, "segmentation": 1.0}, crop="pixel_crop_size",
              decision=("pixel direction", "direction"), report=report)
