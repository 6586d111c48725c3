"""Runs the CyCADA stages in order for each seed, checkpointing each stage in the run directory, and writes
the paper-style results table. Stages talk through the run directory only.

<run_dir>/seed_<k>/<stage>/ holds the stage's weights and done.json (its numbers), tb/ its TensorBoard
summaries and ckpt/ its checkpoint of the last finished epoch; a stage whose done.json exists is skipped when
the command runs again, an unfinished one continues from its checkpoint (resume.py). <run_dir>/config.json
holds the flags the run was made with; other values of them are refused. <run_dir>/results.json and
results.md hold the table, report.md the table with the figures (translations, confusion matrices).

Under --strategy=multi_worker every worker runs this same code, and --run_dir and --data_dir must name the
same directory on every worker (one host, or a shared filesystem). Only the chief writes there: run-level files
(config.json, results, report, export), each stage's files and the translated records. Every other worker
reads what the chief wrote (the earlier stages' weights and done.json, the translated records, a checkpoint to
resume from) after a barrier (distribute.barrier) that follows each of the chief's writes, and writes its own
copies of each stage's files (checkpoints, whose saves every worker must take part in; summaries; weights)
to a private directory: --worker_dir/<task> if given (kept, for inspection), else a temporary directory deleted
when the run ends. A worker computing its own translated records instead would train the target model on data
that differs between workers wherever the style code z draws differ; reading the chief's costs one wait.
"""

import json
import math
import os
import shutil
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from cycada_tf import config as config_lib, distribute, export, figures, label_free, loop, metrics, paper, resume
from cycada_tf import failures, selection
from cycada_tf import summaries
from cycada_tf import precision as precision_lib
from cycada_tf.data import pipeline, registry, schema, tfrecord
from cycada_tf.models import digit_gan, lenet
from cycada_tf.stages.base import build_optimizer
from cycada_tf.stages.feature import FeatureAdaptation, GateStop
from cycada_tf.stages.pixel import PixelAdaptation
from cycada_tf.stages.self_train import SelfTraining
from cycada_tf.stages.source import TaskStage

# (stage, key in its done.json, row label): the paper's Table 2 rows, plus the pixel stage's other direction.
ROWS = (("source", "accuracy", "Source only"),
        ("pixel", "accuracy_t2s", "f_S on G_T->S(x_t) (pixel, target to source)"),
        ("target", "accuracy", "CyCADA pixel only"),
        ("feature", "accuracy", "CyCADA pixel+feat"),
        ("self_train", "accuracy", "CyCADA + self-training (AdaMatch)"),
        ("final", "accuracy", "Final model (chosen without target labels)"),
        ("oracle", "accuracy", "Target only (oracle)"))
# The adapted models a seed's final model is chosen from (Run.final_model), and the file under seed_<k>/
# that records the choice.
FINAL_FILE = "final.json"
FINAL_CANDIDATES = ("target", "feature", "self_train")
# The stages whose model reads G_T->S(x_t) under --pixel_direction=t2s (Run.view_of); the others read x_t.
VIEWED_STAGES = ("target", "feature")
SELF_TRAIN_VIEWS = ("target", "init")  # --self_train_view
STAGE_ORDER = ("source", "pixel", "target", "feature", "self_train", "oracle")
# Which earlier stages each stage reads from the run directory.
NEEDS = {"source": (), "pixel": ("source",), "target": ("pixel",), "feature": ("target",),
         "self_train": ("feature",), "oracle": ()}  # self_train: its --self_train_init (Run.needs)


def log(message):
    print(f"[cycada {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(value, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _save_weights(model, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path[: -len(".weights.h5")] + ".partial.weights.h5"
    model.save_weights(tmp)
    os.replace(tmp, path)


def accuracy(counts):
    """Accuracy of a confusion matrix of counts (true class, predicted class)."""
    return int(np.trace(counts)) / int(counts.sum())


class Run:
    """One seed of one experiment: the data, the networks and the stages. It reads the run directory's files
    from `run_dir` and writes its stages' files under `write_dir` (default `run_dir`; a worker's private
    directory under multi_worker, see the module docstring); `strategy` is the one the stages run under."""

    def __init__(self, config, seed, run_dir, strategy=None, write_dir=None):
        self.config, self.seed, self.strategy = config, seed, strategy
        self.dir = os.path.join(run_dir, f"seed_{seed}")
        self.out = os.path.join(write_dir or run_dir, f"seed_{seed}")
        c = config
        self.source_spec, self.target_spec = registry.get(c.source), registry.get(c.target)
        if self.target_spec.labelled and self.source_spec.classes != self.target_spec.classes:
            raise ValueError(f"--source={c.source} and --target={c.target} have different classes")
        self.num_classes = self.source_spec.num_classes
        self.shape = self.network_input_shape()
        self.precision, self.jit_compile = stage_settings(c)

    def network_input_shape(self):
        return (self.config.image_size, self.config.image_size, self.config.channels)

    # --- data -------------------------------------------------------------------------------------------
    def _load(self, name, split, **kwargs):
        c = self.config
        return pipeline.load(name, split, c.data_dir, c.image_size, c.channels, **kwargs)

    def _count(self, name, split):
        return pipeline.count(name, split, self.config.data_dir)

    def confusion(self, net, name, split="test", translate=None):
        """Counts of (true class, predicted class) of `net` (after `translate`, if given) on a labelled split
        (reporting only)."""
        counts = np.zeros((self.num_classes, self.num_classes), np.int64)
        for x, y in self._load(name, split, batch_size=500):
            if translate is not None:
                x = translate(x, training=False)
            counts += metrics.confusion_matrix(y, net(x, training=False), self.num_classes).numpy()
        return counts

    def evaluate(self, net, name, split="test", translate=None):
        """Accuracy of `net` (after `translate`, if given) on a labelled split (reporting only)."""
        return accuracy(self.confusion(net, name, split, translate))

    # --- what a subclass changes for another task (train_segmentation.SegmentationRun) ------------------
    ignore_label = None  # label of the examples (pixels) L_task skips; None: every example counts
    score_key = "accuracy"  # the key of done.json that the table's rows and the decisions' oracle read

    def scores(self, net, name, translate=None, prefix="", suffix=""):
        """What a stage reports of `net` on the test split of `name`, as {prefix + key + suffix: value}:
        the accuracy here; a segmentation run reports mIoU, fwIoU, pixel accuracy and per-class IoU. A dataset
        without labels gets label-free criteria instead (label_free.py)."""
        if not registry.get(name).labelled:
            return label_free.scores(self, net, name, translate, prefix, suffix)
        return {f"{prefix}accuracy{suffix}": self.evaluate(net, name, translate=translate)}

    def task_optimizer(self):
        return keras.optimizers.Adam(self.config.source_lr)

    def feature_optimizer(self):
        return keras.optimizers.Adam(self.config.feature_lr, beta_1=0.5)

    def build_image_discriminator(self, name):
        c = self.config
        return digit_gan.image_discriminator(c.image_size, c.channels, c.discriminator_width, c.minibatch_std,
                                             c.discriminator_norm, name=name)

    def build_feature_discriminator(self):
        c = self.config
        return lenet.feature_discriminator(lenet.FEATURE_DIM if c.feature_layer == "features"
                                           else self.num_classes)

    def feature_stage_options(self, f_ref, f_t):
        """Extra arguments of FeatureAdaptation: the digits use the LeNet's encoder and the last batch."""
        return {}

    def pixel_stage_options(self):
        return {}

    def translated_example(self, image, label, key):
        """One record of the translated-source TFRecords: a translated image and its source label."""
        return schema.make_example(image, int(label) if label is not None else -1, key=key)

    def translated_info(self):
        return {"image_size": self.config.image_size, "direction": self.direction}

    def serving_model(self, net, view=None):
        """(the TF Serving module of the adapted task network `net`, its signature name); cycada_tf.export."""
        return export.Classifier(net, self.config.image_size, self.config.channels, view), export.CLASSIFY

    def serving_translator(self, generator, name):
        return export.Translator(generator, self.config.image_size, self.config.channels, name)
    # -----------------------------------------------------------------------------------------------------

    # --- stage bookkeeping ------------------------------------------------------------------------------
    def stage_dir(self, stage):
        """Where this process writes the stage's files (created)."""
        path = os.path.join(self.out, stage)
        os.makedirs(path, exist_ok=True)
        return path

    def done(self, stage):
        path = os.path.join(self.dir, stage, "done.json")
        if os.path.exists(path):
            with open(path) as handle:
                return json.load(handle)
        return None

    def finish(self, stage, result):
        """Write the stage's done.json (this process's copy)."""
        _write_json(os.path.join(self.stage_dir(stage), "done.json"), result)
        return result

    def new_task_net(self, weights=None):
        net = lenet.LeNet(self.num_classes)
        net.build((None,) + self.shape)
        if weights:
            net.load_weights(weights)
        return net

    def weights(self, stage, name="f", written=False):
        """The weights file of a stage's network `name`: to read (the run directory's) or, if `written`, to
        write (this process's)."""
        return os.path.join(self.stage_dir(stage) if written else os.path.join(self.dir, stage),
                            f"{name}.weights.h5")

    def callbacks(self, stage, scalars=None, periodic=None, may_stop_early=False):
        """Progress lines, and TensorBoard summaries under <stage>/tb unless --summary_every_epochs=0."""
        callbacks = [summaries.Progress(stage, log, may_stop_early)]
        if self.config.summary_every_epochs:
            callbacks.append(summaries.TensorBoardSummaries(os.path.join(self.stage_dir(stage), "tb"),
                                                            self.config.summary_every_epochs, scalars, periodic))
        return callbacks

    def target_test_summaries(self, net, translate=None):
        """What a task model's TensorBoard shows at the interval: its confusion matrix and accuracy on the
        target test split (target labels read for reporting only); nothing for a target without labels."""
        if not self.target_spec.labelled:
            return None

        def periodic(model):
            counts = self.confusion(net, self.config.target, translate=translate)
            classes = [str(k) for k in self.source_spec.classes]
            return {"target_test/confusion": figures.confusion_figure([(self.config.target, counts)], classes),
                    "target_test/accuracy": accuracy(counts)}
        return periodic

    def compile(self, stage, model, *optimizers):
        """model.compile with the stage's --jit_compile and its --precision's optimizers (loss scaling under
        mixed_float16); the networks already compute in that precision (built under its policy in run())."""
        name = self.precision[stage]
        xla = precision_lib.use_xla(self.jit_compile[stage], tf.distribute.get_strategy())
        model.compile(*(precision_lib.optimizer(o, name) for o in optimizers), jit_compile=xla,
                      auto_scale_loss=False)

    def fit(self, stage, model, dataset, epochs, steps, callbacks, done=False, **state):
        """model.fit from the stage's last checkpoint (if any) to `epochs`, checkpointing the model, its
        optimizers and `state` after each epoch (resume.StageCheckpoint; `done`: a callable telling from the
        restored state that the stage needs no more epochs). Returns (history, checkpoint callback)."""
        optimizers = {"optimizer": model.optimizer}
        if getattr(model, "d_optimizer", None) is not None:
            optimizers["d_optimizer"] = model.d_optimizer
        # model.variables: every network's weights, the frozen ones too, and the random states of its
        # layers (dropout, style codes), which a tf.train.Checkpoint of a subclassed Keras 3 model misses.
        checkpoint = resume.StageCheckpoint(stage, os.path.join(self.dir, stage, "ckpt"), log,
                                            write_directory=os.path.join(self.stage_dir(stage), "ckpt"),
                                            variables=list(model.variables), **optimizers, **state)
        initial = checkpoint.restore()
        if done and done():
            initial = epochs
        # Last, so that it saves what the other callbacks leave at the end of an epoch (the gate's stop).
        callbacks = callbacks + [checkpoint]
        if distribute.is_multi_worker(self.strategy):  # Keras 3.15's fit fails there; the same loop by hand
            history = loop.fit(model, dataset, epochs, initial_epoch=initial, steps_per_epoch=steps,
                               callbacks=callbacks, verbose=self.config.verbose, strategy=self.strategy)
        else:
            history = model.fit(dataset, epochs=epochs, initial_epoch=initial, steps_per_epoch=steps,
                                verbose=self.config.verbose, callbacks=callbacks)
        return history, checkpoint

    # --- stages -----------------------------------------------------------------------------------------
    def train_task(self, stage, dataset, steps, epochs, init=None, view=None):
        c = self.config
        keras.utils.set_random_seed(self.seed)
        net = self.new_task_net(init)
        model = TaskStage(net, ignore_label=self.ignore_label, name=f"{stage}_stage")
        self.compile(stage, model, self.task_optimizer())
        build_optimizer(model.optimizer, net.trainable_variables)  # before a checkpoint restores it
        self.fit(stage, model, dataset, epochs, steps,
                 self.callbacks(stage, periodic=self.target_test_summaries(net, view)))
        _save_weights(net, self.weights(stage, written=True))
        return net

    def train_labelled(self, stage, name, epochs):
        """A task model trained from scratch on the labelled training split of dataset `name`."""
        c = self.config
        ds = self._load(name, "train", batch_size=c.source_batch_size, shuffle=True, seed=self.seed,
                        repeat=True, drop_remainder=True)
        steps = max(1, self._count(name, "train") // c.source_batch_size)
        return self.train_task(stage, ds, steps, epochs)

    def source(self):
        c = self.config
        net = self.train_labelled("source", c.source, c.source_epochs)
        return {**self.scores(net, c.source, prefix="source_test_"), **self.scores(net, c.target)}

    def oracle(self):
        """Reads target labels: the oracle row only, never used by another stage (NEEDS)."""
        c = self.config
        if not self.target_spec.labelled:
            log(f"seed {self.seed}: no oracle: {c.target} has no labels to train on")
            return {"skipped": "the target has no labels"}
        net = self.train_labelled("oracle", c.target, c.oracle_epochs)
        return self.scores(net, c.target)

    def build_generators(self):
        c = self.config
        g_st = digit_gan.generator(c.image_size, c.channels, c.channels, c.generator_width, c.noise_channels,
                                   name="g_st")
        g_ts = digit_gan.generator(c.image_size, c.channels, c.channels, c.generator_width, name="g_ts")
        return g_st, g_ts

    def pixel(self):
        c = self.config
        keras.utils.set_random_seed(self.seed)
        f_s = self.new_task_net(self.weights("source"))
        g_st, g_ts = self.build_generators()
        d_s, d_t = (self.build_image_discriminator(name) for name in ("d_s", "d_t"))
        model = PixelAdaptation(g_st, g_ts, d_s, d_t, f_s, gan_mode=c.gan_mode, gan_weight=c.gan_weight,
                                cycle_weight=c.cycle_weight, semantic_weight=c.semantic_weight,
                                semantic_t2s_weight=c.semantic_t2s_weight,
                                pool_size=c.pool_size, seed=self.seed, **self.pixel_stage_options())
        self.compile("pixel", model, keras.optimizers.Adam(c.pixel_lr, beta_1=c.pixel_beta_1),
                     keras.optimizers.Adam(c.pixel_lr, beta_1=c.pixel_beta_1))
        model.build_optimizers()
        b = c.pixel_batch_size
        xs = self._load(c.source, "train", labels=False, shuffle=True, seed=self.seed, repeat=True)
        xt = self._load(c.target, "train", labels=False, shuffle=True, seed=self.seed + 1, repeat=True)
        ds = tf.data.Dataset.zip(xs.batch(b, drop_remainder=True), xt.batch(b, drop_remainder=True))
        steps = max(1, max(self._count(c.source, "train"), self._count(c.target, "train")) // b)
        directory = self.stage_dir("pixel")
        grid = self.translation_grid(g_st, g_ts, os.path.join(directory, "translations.png"))
        history, checkpoint = self.fit(
            "pixel", model, ds.prefetch(2), c.pixel_epochs, steps,
            [grid] + self.callbacks("pixel", periodic=lambda model: {"translations": grid.latest}),
            pool_t=model.pool_t, pool_s=model.pool_s)
        _save_weights(g_st, os.path.join(directory, "g_st.weights.h5"))
        _save_weights(g_ts, os.path.join(directory, "g_ts.weights.h5"))
        grid.draw()
        final = {k: float(v[-1]) for k, v in history.history.items()} or checkpoint.last_logs
        return {"final": final, **self.scores(f_s, c.target, translate=g_ts, suffix="_t2s"),
                "direction": self.choose_direction(f_s, self.applied_generators(g_st, g_ts)[1])}

    @property
    def direction(self):
        """s2t or t2s: --pixel_direction, or with auto the direction the pixel stage chose (its done.json)."""
        if self.config.pixel_direction != "auto":
            return self.config.pixel_direction
        choice = (self.done("pixel") or {}).get("direction", {}).get("choice")
        if choice is None:
            raise ValueError(f"--pixel_direction=auto: the pixel stage of {self.dir} recorded no direction "
                             f"(made by an older version): rerun it, or pass --pixel_direction=s2t or t2s")
        return choice

    def choose_direction(self, f_s, g_ts):
        """--pixel_direction=auto's decision, made without target labels: t2s when f_S is more decisive on
        G_T->S(x_t) than on x_t itself (information maximisation over the target training images,
        selection.py), i.e. when mapping target images into the source domain makes them more source-like
        to the source model; else s2t. The oracle's view (f_S's target test score either way) is recorded
        beside it, for reporting only."""
        c = self.config
        criteria = {"s2t": self.information_maximisation(f_s), "t2s": self.information_maximisation(f_s, g_ts)}
        oracle = ({"s2t": self.evaluate(f_s, c.target), "t2s": self.evaluate(f_s, c.target, translate=g_ts)}
                  if self.target_spec.labelled else None)
        decision = selection.choose(criteria, oracle)
        if c.pixel_direction != "auto":
            decision["choice"] = c.pixel_direction  # given by the flag; the criterion is only recorded
        log(f"pixel direction: {decision['choice']} ({'--pixel_direction' if c.pixel_direction != 'auto' else 'label-free criterion'}; "
            f"information maximisation of f_S on x_t {decision['criterion']['s2t']:.3f}, on G_T->S(x_t) "
            f"{decision['criterion']['t2s']:.3f}" + (f"; the oracle would pick {decision['oracle_choice']})"
                                                      if oracle else ")"))
        return decision

    def final_model(self, results):
        """Which finished adapted model is this seed's result (exported, the table's final row), chosen
        without target labels: the largest information maximisation on the target training images, as each
        model reads them (selection.py). Self-training maximises a form of it, so it is picked unless it
        collapsed; what the target test labels would have picked is recorded beside it (reporting only)."""
        key = self.score_key
        stages = [stage for stage in FINAL_CANDIDATES if stage in results]
        if not stages:
            return None
        criteria = {stage: self.information_maximisation(self.new_task_net(self.weights(stage)),
                                                         self.view_of(stage))
                    for stage in stages}
        oracle = {stage: results[stage][key] for stage in stages if key in results[stage]}
        decision = selection.choose(criteria, oracle if len(oracle) == len(stages) else None)
        log(f"seed {self.seed}: final model: '{decision['choice']}' (label-free criterion"
            + (f"; the oracle would pick '{decision['oracle_choice']}')" if "oracle_choice" in decision else ")"))
        if key in results[decision["choice"]]:
            decision[key] = results[decision["choice"]][key]
        if distribute.is_chief(self.strategy):  # what export reads (export.export_seed)
            _write_json(os.path.join(self.dir, FINAL_FILE), decision)
        return decision

    def information_maximisation(self, net, translate=None):
        """The label-free criterion (selection.py) of `net` (after `translate`) on the first
        selection_batches batches of the target training images (no labels read)."""
        c = self.config
        score = selection.InformationMaximisation()
        for batch in self._load(c.target, "train", labels=False, batch_size=100).take(self.selection_batches):
            x = batch if translate is None else translate(batch, training=False)
            score.update(tf.nn.softmax(tf.cast(net(x, training=False), tf.float32)).numpy())
        return score.result()

    selection_batches = 20  # batches of target training images the label-free criteria read, at most

    def trained_generators(self):
        """G_S->T and G_T->S with the pixel stage's weights, as Keras models."""
        g_st, g_ts = self.build_generators()
        g_st.load_weights(os.path.join(self.dir, "pixel", "g_st.weights.h5"))
        g_ts.load_weights(os.path.join(self.dir, "pixel", "g_ts.weights.h5"))
        return g_st, g_ts

    def load_generators(self):
        """The trained translators as the stages apply them."""
        return self.applied_generators(*self.trained_generators())

    def applied_generators(self, g_st, g_ts):
        """G_S->T and G_T->S as the stages apply them (a segmentation run: to images of any size)."""
        return g_st, g_ts

    def translation_grid(self, g_st, g_ts, path, n=10):
        """A callback that draws the first `n` test images of each domain through both translators after each
        epoch into the PNG at `path` (figures.translation_grid; cf. Figure 3); .draw() draws it now."""
        c = self.config
        xs = next(iter(self._load(c.source, "test", labels=False, batch_size=n)))
        xt = next(iter(self._load(c.target, "test", labels=False, batch_size=n)))
        return summaries.TranslationGrid(g_st, g_ts, xs, xt, path)

    # In the paper's direction (--pixel_direction=s2t) the target model learns from G_S->T(X_S) and reads
    # target images as they are. In the reverse direction (t2s) target images are first mapped into the
    # source domain by G_T->S, and the target model learns from source images that went the same way,
    # G_T->S(G_S->T(X_S)), so it is trained on exactly the kind of images (and artifacts) it is given.
    def translated_dir(self, domain="source"):
        return os.path.join(self.dir, f"translated_{domain}")

    def _write_translated(self, domain, name, labels, mapping):
        """`mapping` applied to a training split, written once as TFRecords of the shared schema."""
        c = self.config
        pixel_dir = os.path.join(self.dir, "pixel")
        inputs = {"g_st": tfrecord.sha256_of_file(os.path.join(pixel_dir, "g_st.weights.h5")),
                  "g_ts": tfrecord.sha256_of_file(os.path.join(pixel_dir, "g_ts.weights.h5")),
                  "direction": self.direction, "copies": c.translations_per_image, "labels": labels}

        def examples():
            for copy in range(c.translations_per_image if labels else 1):
                index = 0
                for batch in self._load(name, "train", labels=labels, batch_size=256):
                    x, y = batch if labels else (batch, None)
                    images = pipeline.to_uint8(mapping(x)).numpy()
                    for i, image in enumerate(images):
                        label = y[i].numpy() if labels else None  # target labels are never read here
                        yield self.translated_example(image, label, key=f"copy{copy}:{index}")
                        index += 1

        tfrecord.write_dataset(self.translated_dir(domain), {"train": examples()}, inputs,
                               info=self.translated_info())

    def translate(self):
        """Write the translated source images (with source labels) and, for t2s, the translated target
        images (without labels)."""
        c = self.config
        g_st, g_ts = self.load_generators()
        if distribute.is_chief(self.strategy):  # the other workers read the chief's (module docstring)
            if self.direction == "s2t":
                self._write_translated("source", c.source, True, lambda x: g_st(x, training=False))
            else:
                self._write_translated("source", c.source, True,
                                       lambda x: g_ts(g_st(x, training=False), training=False))
                self._write_translated("target", c.target, False, lambda x: g_ts(x, training=False))
        distribute.barrier(self.strategy)
        return g_ts if self.direction == "t2s" else None

    def load_translated(self, domain="source", labels=True):
        c = self.config
        directory = self.translated_dir(domain)
        files = tfrecord.split_files(directory, "train")

        def parse(serialized):
            example = schema.parse(serialized)
            image = pipeline.decode_image(example[schema.IMAGE], c.image_size, c.channels)
            return (image, tf.cast(example[schema.LABEL], tf.int32)) if labels else image

        count = tfrecord.read_manifest(directory)["splits"]["train"]["count"]
        ds = tf.data.TFRecordDataset(files).map(parse, num_parallel_calls=tf.data.AUTOTUNE).cache()
        return ds.shuffle(count, seed=self.seed + (domain == "target")).repeat(), count

    def target_view(self):
        """What the target model is given of a target image: the image (s2t) or G_T->S of it (t2s)."""
        if self.direction == "s2t":
            return None
        return self.load_generators()[1]

    def target(self):
        c = self.config
        view = self.translate()
        ds, count = self.load_translated()
        ds = ds.batch(c.source_batch_size, drop_remainder=True).prefetch(2)
        steps = max(1, count // c.source_batch_size)
        net = self.train_task("target", ds, steps, c.target_epochs, view=view)
        return self.scores(net, c.target, translate=view)

    def feature(self):
        c = self.config
        keras.utils.set_random_seed(self.seed)
        f_ref = self.new_task_net(self.weights("target"))
        f_t = self.new_task_net(self.weights("target"))
        d_feat = self.build_feature_discriminator()
        model = FeatureAdaptation(f_ref, f_t, d_feat, layer=c.feature_layer, gan_mode=c.gan_mode,
                                  **self.feature_stage_options(f_ref, f_t))
        self.compile("feature", model, self.feature_optimizer(), self.feature_optimizer())
        model.build_optimizers()
        b = c.feature_batch_size
        xs, _ = self.load_translated(labels=False)
        if self.direction == "s2t":
            xt = self._load(c.target, "train", labels=False, shuffle=True, seed=self.seed + 1, repeat=True)
        else:
            xt, _ = self.load_translated("target", labels=False)
        ds = tf.data.Dataset.zip(xs.batch(b, drop_remainder=True), xt.batch(b, drop_remainder=True))
        steps = max(c.feature_min_steps_per_epoch, self._count(c.target, "train") // b, 1)
        stop = GateStop(log)
        # Built after every network of the stage, so their initial weights are those of a run without it.
        view = self.target_view()
        self.fit("feature", model, ds.prefetch(2), c.feature_epochs, steps,
                 [stop] + self.callbacks(
                     "feature", scalars=lambda model: {"gated_updates": model.updates.numpy()},
                     periodic=self.target_test_summaries(f_t, view), may_stop_early=True),
                 done=lambda: stop.stopped_epoch is not None,
                 updates=model.updates, gate_stopped_epoch=stop.stopped,
                 gate_recent_accuracies=model.recent_accuracies, gate_steps_seen=model.steps_seen)
        _save_weights(f_t, self.weights("feature", written=True))
        return {**self.scores(f_t, c.target, translate=view),
                "gated_updates": int(model.updates.numpy()), "stopped_by_gate_at_epoch": stop.stopped_epoch}

    def self_train(self):
        """AdaMatch on top of CyCADA (stages/self_train.py): the net starts from --self_train_init and learns
        from labelled source and unlabelled target images (no labels), both as they are, or with
        --self_train_view=init both as the init model reads them (under t2s: the translated records)."""
        c = self.config
        keras.utils.set_random_seed(self.seed)
        if c.self_train_init not in FINAL_CANDIDATES[:2] + ("source",):
            raise ValueError(f"--self_train_init must be feature, target or source, got {c.self_train_init!r}")
        net = self.new_task_net(self.weights(c.self_train_init))
        model = SelfTraining(net, confidence=c.self_train_confidence, target_weight=c.self_train_target_weight,
                             seed=self.seed, segmentation=self.ignore_label is not None,
                             ignore_label=self.ignore_label, name="self_train_stage")
        self.compile("self_train", model, keras.optimizers.Adam(c.self_train_lr))
        build_optimizer(model.optimizer, net.trainable_variables)
        b, mu = c.self_train_batch_size, c.self_train_target_ratio
        view = self.view_of("self_train")
        if c.self_train_view == "init" and c.self_train_init in VIEWED_STAGES:  # what f_T learnt from and reads
            xs = self.load_translated()[0]
        else:
            xs = self._load(c.source, "train", shuffle=True, seed=self.seed, repeat=True)
        if view is not None:  # G_T->S(x_t), the translated target records
            xt = self.load_translated("target", labels=False)[0]
        else:
            xt = self._load(c.target, "train", labels=False, shuffle=True, seed=self.seed + 1, repeat=True)
        ds = tf.data.Dataset.zip(xs.batch(b, drop_remainder=True), xt.batch(b * mu, drop_remainder=True))
        self.fit("self_train", model, ds.prefetch(2), c.self_train_epochs, c.self_train_steps_per_epoch,
                 self.callbacks("self_train", periodic=self.target_test_summaries(net, view)))
        _save_weights(net, self.weights("self_train", written=True))
        return self.scores(net, c.target, translate=view)

    def needs(self, stage):
        """The earlier stages `stage` reads from the run directory."""
        return (self.config.self_train_init,) if stage == "self_train" else NEEDS[stage]

    def reads_translated(self, stage):
        """Whether `stage`'s model is given G_T->S of a target image rather than the image: the target and
        feature stages under t2s, and self_train too with --self_train_view=init from one of them."""
        c = self.config
        if stage == "self_train":
            if c.self_train_view not in SELF_TRAIN_VIEWS:
                raise ValueError(f"--self_train_view must be {' or '.join(SELF_TRAIN_VIEWS)}, "
                                 f"got {c.self_train_view!r}")
            stage = c.self_train_init if c.self_train_view == "init" else "source"
        return stage in VIEWED_STAGES and self.direction == "t2s"

    def view_of(self, stage):
        """What `stage`'s model is given of a target image: G_T->S (reads_translated), or the image (None)."""
        return self.target_view() if self.reads_translated(stage) else None


def stage_settings(config):
    """({stage: precision}, {stage: jit_compile}) of --precision and --jit_compile (ValueError naming the
    flag)."""
    precisions = precision_lib.per_stage("precision", config.precision, STAGE_ORDER, precision_lib.FLAG_CHOICES)
    if "auto" in precisions.values():
        resolved, _ = precision_lib.resolve_auto()
        precisions = {stage: resolved if value == "auto" else value for stage, value in precisions.items()}
    return (precisions,
            precision_lib.per_stage("jit_compile", config.jit_compile, STAGE_ORDER, precision_lib.JIT_COMPILE))


def mean_and_se(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = float(np.mean(values))
    se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
    return mean, se


def summarize(config, per_seed):
    if not registry.get(config.target).labelled:
        return label_free.summarize(config, per_seed, ROWS)
    table = []
    for stage, key, label in ROWS:
        values = [seed_result.get(stage, {}).get(key) for seed_result in per_seed.values()]
        mean, se = mean_and_se(values)
        if mean is not None:
            table.append({"model": label, "stage": stage, "key": key, "accuracy": mean, "standard_error": se,
                          "seeds": [v for v in values if v is not None]})
    return {"source": config.source, "target": config.target, "seeds": list(per_seed),
            "table": table, "per_seed": per_seed, "gain": adaptation_gain(per_seed),
            "paper_table_2": {stage: list(v)
                              for stage, v in paper.reported(config.source, config.target).items()},
            "config": config_lib.to_json(config)}


def stage_results(per_seed, stage):
    """Each seed's results of `stage` (its done.json), in seed order; for "final", those of the stage the seed
    chose (Run.final_model)."""
    if stage == "final":
        return [r[r["final"]["choice"]] for r in per_seed.values() if r.get("final")]
    return [r[stage] for r in per_seed.values() if stage in r]


def adaptation_gain(per_seed, key="accuracy"):
    """The final model (else CyCADA pixel+feat) minus source only, paired by seed: {"mean", "standard_error",
    "seeds", "stage"} in accuracy (the question of the paper's table: does adaptation beat source only by
    more than seed noise?)."""
    stage = "final" if any(key in r.get("final", {}) for r in per_seed.values()) else "feature"
    pairs = [(r[stage][key], r["source"][key]) for r in per_seed.values()
             if key in r.get(stage, {}) and key in r.get("source", {})]
    mean, se = mean_and_se([adapted - source for adapted, source in pairs])
    if mean is None:
        return None
    return {"mean": mean, "standard_error": se, "seeds": len(pairs), "stage": stage}


def markdown_table(results):
    """The table, with the paper's Table 2 number beside each row when the shift is one of the paper's."""
    if results.get("label_free"):
        return label_free.markdown_table(results)
    published = paper.reported(results["source"], results["target"])
    header = (f"| Model | {results['source']} -> {results['target']} (accuracy %, mean ± s.e., "
              f"{len(results['seeds'])} seed{'s' if len(results['seeds']) != 1 else ''}) |")
    lines = [header + (" Paper (Table 2, 4 runs) |" if published else ""),
             "|---|---|" + ("---|" if published else "")]
    for row in results["table"]:
        line = f"| {row['model']} | {100 * row['accuracy']:.1f} ± {100 * row['standard_error']:.1f} |"
        if published:
            mean_se = published.get(row["stage"]) if row["key"] == "accuracy" else None
            line += f" {mean_se[0]:.1f} ± {mean_se[1]:.1f} |" if mean_se else " - |"
        lines.append(line)
    gain = results.get("gain")
    if gain and gain["seeds"] > 1:
        model = "the final model" if gain.get("stage") == "final" else "pixel+feat"
        lines.append(f"\nGain of {model} over source only, paired by seed: {100 * gain['mean']:+.1f} ± "
                     f"{100 * gain['standard_error']:.1f} points (mean ± s.e. of {gain['seeds']} seeds; "
                     f"{abs(gain['mean']) / gain['standard_error'] if gain['standard_error'] else float('inf'):.1f}"
                     " standard errors)")
    lines += decisions_lines(results["per_seed"])
    return "\n".join(lines)


def decisions_lines(per_seed):
    """The label-free decisions of each seed beside what the target test labels would have picked."""
    decisions = (("pixel direction", lambda r: r.get("pixel", {}).get("direction")),
                 ("final model", lambda r: r.get("final")))
    lines = []
    for name, get in decisions:
        made = {seed: get(r) for seed, r in per_seed.items() if get(r) and "oracle_choice" in get(r)}
        if made:
            agree = sum(d["choice"] == d["oracle_choice"] for d in made.values())
            lines.append(f"\nDecision without target labels, {name} (seed: chosen / oracle's choice): "
                         + ", ".join(f"{seed}: {d['choice']} / {d['oracle_choice']}" for seed, d in made.items())
                         + f"; agrees on {agree} of {len(made)}")
    return lines


REPORT_PANELS = (("source", "Source only"), ("feature", "CyCADA pixel+feat"),
                 ("self_train", "CyCADA + self-training"))  # before/after, cf. Figure 10


def confusion_matrices(config, run_dir, seeds):
    """{stage: counts summed over seeds} on the target test split, for each stage of REPORT_PANELS that is
    done for every seed (target labels read for reporting only)."""
    totals = {}
    for stage, _ in REPORT_PANELS:
        trials = [Run(config, seed, run_dir) for seed in seeds]
        if not trials or any(trial.done(stage) is None for trial in trials):
            continue
        totals[stage] = sum(trial.confusion(trial.new_task_net(trial.weights(stage)), config.target,
                                            translate=trial.view_of(stage))
                            for trial in trials)
    return totals


def write_report(config, run_dir, summary):
    """<run_dir>/report.md: the results table, the translation grids and the confusion matrices before and
    after adaptation (<run_dir>/confusion_matrices.png)."""
    seeds = [int(seed) for seed in summary["seeds"]]
    lines = [f"# CyCADA: {config.source} -> {config.target}", "", markdown_table(summary), "",
             f"Seeds: {', '.join(map(str, seeds))}; numbers in `results.json`.", ""]
    grids = [seed for seed in seeds if os.path.exists(os.path.join(run_dir, f"seed_{seed}", "pixel",
                                                                   "translations.png"))]
    if grids:
        lines += ["## Translations (cf. the paper's Figure 3)", "",
                  "Rows, top to bottom: " + ", ".join(f"`{row}`" for row in figures.TRANSLATION_ROWS)
                  + "; each column is one of the first test images of its domain.", ""]
        lines += [f"![translations, seed {seed}](seed_{seed}/pixel/translations.png)" for seed in grids] + [""]
    labelled = registry.get(config.target).labelled
    counts = confusion_matrices(config, run_dir, seeds) if labelled else {}
    if not labelled:
        lines += ["## No confusion matrices", "", label_free.WHY, ""]
    if counts:
        labels = dict(REPORT_PANELS)
        classes = [str(k) for k in registry.get(config.source).classes]
        picture = figures.confusion_figure([(labels[stage], counts[stage]) for stage in counts], classes)
        figures.save_png(picture, os.path.join(run_dir, "confusion_matrices.png"))
        lines += ["## Confusion matrices on the target test split (cf. the paper's Figure 10)", "",
                  "![confusion matrices](confusion_matrices.png)", "",
                  f"Rows: true class, columns: predicted class, in % of the row's class; counts summed over "
                  f"the seeds. Target labels are read for these matrices and the table only, never in "
                  f"training.", ""]
    lines += ["## TensorBoard", "", f"`tensorboard --logdir {run_dir}` (one run per seed and stage).", ""]
    with open(os.path.join(run_dir, "report.md"), "w") as handle:
        handle.write("\n".join(lines))


def run(config, run_cls=None):
    """Run every requested stage for every seed; write and return results.

    run_cls: the Run class of the task (default Run, the digits); its static methods summarize,
    markdown_table and write_report make the results (segmentation.SegmentationRun has its own)."""
    run_cls = run_cls or Run
    for stage in config.stages:
        if stage not in STAGE_ORDER:
            raise ValueError(f"--stages: unknown stage {stage!r}; choose from {', '.join(STAGE_ORDER)}")
    run_dir = config.run_dir or os.path.join("runs", f"{config.source}_to_{config.target}")
    strategy = distribute.strategy_from_flag(config.strategy)
    stage_settings(config)  # a bad --precision or --jit_compile fails here, before anything is written
    if "auto" in config.precision:
        resolved, why = precision_lib.resolve_auto()
        log(f"--precision=auto: {resolved} ({why})")
    if not distribute.is_chief(strategy):
        return _run_worker(config, run_dir, strategy, run_cls)
    failures.check_directory(config.data_dir, "--data_dir")
    for name in (config.source, config.target):
        registry.ensure(name, config.data_dir, download=config.download)
    # Only a run that can start leaves a run directory (and its config.json) behind; one that could not save
    # its first checkpoint does not start.
    failures.check_writable(run_dir, "--run_dir")
    resume.check_run_config(config, run_dir)
    distribute.barrier(strategy)  # the data and config.json are there for the other workers
    with distribute.peer_errors(strategy):
        summary = _run_stages(config, run_dir, strategy, run_cls)
    _write_json(os.path.join(run_dir, "results.json"), summary)
    table = run_cls.markdown_table(summary)
    with open(os.path.join(run_dir, "results.md"), "w") as handle:
        handle.write(table + "\n")
    print(table, flush=True)
    run_cls.write_report(config, run_dir, summary)
    log(f"report: {os.path.join(run_dir, 'report.md')}")
    if config.export_dir:
        export.export_seed(run_cls(config, config.seeds[0], run_dir), config.export_dir, log)
    distribute.barrier(strategy)  # no worker leaves the cluster before the chief has written everything
    return summary


def _run_worker(config, run_dir, strategy, run_cls):
    """A multi_worker task other than the chief: the same stages, reading the chief's run directory and
    writing to a private one (module docstring); the results are the chief's to write."""
    distribute.barrier(strategy)  # the chief has checked the data and written config.json
    for name in (config.source, config.target):
        registry.ensure(name, config.data_dir)
    resume.check_run_config(config, run_dir, write=False)
    task = distribute.worker_index(strategy)
    private = os.path.join(config.worker_dir, task) if config.worker_dir else tempfile.mkdtemp(
        prefix=f"cycada_{task}_")
    log(f"{task}: training with the chief; reading {run_dir}, writing this worker's copies to {private}")
    try:
        with distribute.peer_errors(strategy):
            summary = _run_stages(config, run_dir, strategy, run_cls, write_dir=private)
        distribute.barrier(strategy)
    finally:
        if not config.worker_dir:
            shutil.rmtree(private, ignore_errors=True)
    return summary


def _run_stages(config, run_dir, strategy, run_cls, write_dir=None):
    per_seed = {}
    for seed in config.seeds:
        trial = run_cls(config, seed, run_dir, strategy, write_dir)
        results = {}
        for stage in STAGE_ORDER:
            result = trial.done(stage)
            if stage in config.stages and result is None:
                missing = [n for n in trial.needs(stage) if trial.done(n) is None]
                if missing:
                    raise ValueError(f"stage '{stage}' needs the '{missing[0]}' stage of seed {seed} in "
                                     f"{trial.dir}: add it to --stages")
                log(f"seed {seed}: stage '{stage}' starting")
                start = time.time()
                # Every stage starts from the same global random state (TF's global seed also keys tf.data
                # shuffles), whatever ran before it in this process: a resumed run repeats an unbroken one.
                keras.utils.set_random_seed(seed)
                # Every network and optimizer of the stage is built under its strategy and precision.
                with precision_lib.policy(trial.precision[stage]), distribute.scope(strategy):
                    result = getattr(trial, stage)()
                result["seconds"] = round(time.time() - start, 1)
                trial.finish(stage, result)
                distribute.barrier(strategy)  # the chief's files of the stage are there for the next one
                log(f"seed {seed}: stage '{stage}' done in {result['seconds']:.0f}s: "
                    + ", ".join(f"{k}={v:.4f}" for k, v in result.items() if isinstance(v, float)))
            elif result is not None and stage in config.stages:
                log(f"seed {seed}: stage '{stage}' already done, skipped")
            if result is not None:
                results[stage] = result
        final = trial.final_model(results)
        if final is not None:
            results["final"] = final
        per_seed[str(seed)] = results
    return run_cls.summarize(config, per_seed)


# The results of a digits run (train.run reads them from the Run class it is given).
Run.summarize = staticmethod(summarize)
Run.markdown_table = staticmethod(markdown_table)
Run.write_report = staticmethod(write_report)
