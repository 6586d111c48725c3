"""CyCADA for semantic segmentation (paper section 4.2): train.Run with segmentation networks, label-map data,
mIoU evaluation at full resolution and Table 3-style results; the stages and their order are train.py's.

What differs from the digits, and only that, is here: the networks (models/segmenter.py and its families), the data
(random crops of label-mapped images, full images for evaluation), the translated-source records (image PNG
+ label map PNG), the feature discriminator (per position of a feature map) and the gate window (the last
100 iterations), the scores (per-class IoU, mIoU, fwIoU, pixel accuracy) and the tables, figures and report.
"""

import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from cycada_tf import config as config_lib, export, figures, metrics, paper, train
from cycada_tf.data import pipeline, registry, schema, tfrecord
from cycada_tf.models import cyclegan, drn, fcn8s, segmenter, small_fcn

MODELS = ("small_fcn", "fcn8s", "drn26")
OPTIMIZERS = ("adam", "sgd")
# (stage, key of its done.json, row label): the paper's Table 3/4 rows, plus the pixel stage's other direction.
ROWS = (("source", "miou", "Source only"),
        ("pixel", "miou_t2s", "f_S on G_T->S(x_t) (pixel, target to source)"),
        ("target", "miou", "CyCADA pixel only"),
        ("feature", "miou", "CyCADA pixel+feat"),
        ("self_train", "miou", "CyCADA + self-training (AdaMatch, per pixel)"),
        ("final", "miou", "Final model (chosen without target labels)"),
        ("oracle", "miou", "Oracle (train on target)"))
SCORES = ("miou", "fwiou", "pixel_accuracy")
OVERLAY_IMAGES = 4  # test images of the prediction figure
FEATURE_DISCRIMINATOR_WIDTH = 256  # hidden channels of D_feat's 1x1 convolutions (a per-position MLP)


def _pair(values, flag):
    values = tuple(int(v) for v in values)
    if len(values) != 2 or min(values) < 1:
        raise ValueError(f"--{flag} takes height,width (two positive integers), got {','.join(map(str, values))}")
    return values


class SegmentationRun(train.Run):
    """One seed of a segmentation experiment."""

    ignore_label = metrics.IGNORE_LABEL
    score_key = "miou"

    def __init__(self, config, seed, run_dir, strategy=None, write_dir=None):
        c = config
        if c.model not in MODELS:
            raise ValueError(f"--model must be one of {', '.join(MODELS)}, got {c.model!r}")
        for flag in ("task_optimizer", "feature_optimizer"):
            if getattr(c, flag) not in OPTIMIZERS:
                raise ValueError(f"--{flag} must be adam or sgd, got {getattr(c, flag)!r}")
        self.crop = _pair(c.crop_size, "crop_size")
        self.pixel_crop = _pair(c.pixel_crop_size, "pixel_crop_size")
        self.feature_crop = _pair(c.feature_crop_size, "feature_crop_size")
        self._train_crop = self.crop
        super().__init__(config, seed, run_dir, strategy, write_dir)
        for spec in (self.source_spec, self.target_spec):
            if not spec.segmentation:
                raise ValueError(f"dataset '{spec.name}' has no label maps: use the digits experiment for it")

    def network_input_shape(self):
        return (None, None, 3)  # fully convolutional: crops for training, full images for evaluation

    def check_width(self):
        """--width against the width the data was prepared at (clear error instead of a silent mismatch)."""
        c = self.config
        if not c.width:
            return
        for name in (c.source, c.target):
            info = tfrecord.read_manifest(registry.ensure(name, c.data_dir))["info"]
            if info.get("width") not in (None, c.width):
                raise ValueError(f"--width={c.width} but dataset '{name}' in {c.data_dir} was prepared at width "
                                 f"{info.get('width')}: prepare it again with tools/prepare_data.py "
                                 f"--width={c.width}, or pass --width={info.get('width')}")

    # --- data -------------------------------------------------------------------------------------------
    def _load(self, name, split, labels=True, batch_size=None, shuffle=False, seed=0, repeat=False,
              drop_remainder=False):
        """Training pipelines (shuffle=True) take random crops with flips; the others give full images
        (evaluation, translation), at most --eval_batch_size at a time."""
        if split == "test":  # train.Run's name for the evaluation split
            split = self.eval_split(name) or "train"
        crop = self._train_crop if shuffle else None
        if not shuffle and batch_size:
            batch_size = min(batch_size, self.config.eval_batch_size)
        return pipeline.load_segmentation(name, split, self.config.data_dir, labels=labels, crop_size=crop,
                                          flip=crop is not None, batch_size=batch_size, shuffle=shuffle,
                                          seed=seed, repeat=repeat, drop_remainder=drop_remainder)

    def eval_split(self, name):
        """--eval_split if dataset `name` has it, else None (GTA5 and SYNTHIA have a train split only)."""
        return self.config.eval_split if self.config.eval_split in registry.get(name).splits else None

    def confusion(self, net, name, split="test", translate=None):
        """Pixel counts of (true class, predicted class) at full resolution, ignore label left out."""
        counts = np.zeros((self.num_classes, self.num_classes), np.int64)
        for x, y in self._load(name, split, batch_size=self.config.eval_batch_size):
            if translate is not None:
                x = translate(x, training=False)
            counts += metrics.confusion_matrix(y, net(x, training=False), self.num_classes).numpy()
        return counts

    def evaluate(self, net, name, split="test", translate=None):
        """mIoU of `net` on a labelled split (reporting only)."""
        return metrics.summary(self.confusion(net, name, split, translate))["miou"]

    def scores(self, net, name, translate=None, prefix="", suffix=""):
        if self.eval_split(name) is None:
            return {}
        summary = metrics.summary(self.confusion(net, name, translate=translate), self.source_spec.classes)
        return {f"{prefix}{key}{suffix}": value for key, value in summary.items()}

    # --- networks ---------------------------------------------------------------------------------------
    def new_task_net(self, weights=None):
        c = self.config
        if c.model == "small_fcn":
            net = small_fcn.small_fcn(self.num_classes, width=c.model_width)
        else:
            backbone = None if weights else (c.backbone_weights or None)  # weights replace the backbone's
            net = {"fcn8s": fcn8s.fcn8s, "drn26": drn.drn26}[c.model](self.num_classes, weights=backbone)
        if weights:
            net.load_weights(weights)
        return net

    def task_optimizer(self):
        c = self.config
        if c.task_optimizer == "sgd":
            return keras.optimizers.SGD(c.source_lr, momentum=c.momentum)
        return keras.optimizers.Adam(c.source_lr)

    def feature_optimizer(self):
        c = self.config
        if c.feature_optimizer == "sgd":
            return keras.optimizers.SGD(c.feature_lr, momentum=c.feature_momentum)
        return keras.optimizers.Adam(c.feature_lr, beta_1=0.5)

    def build_generators(self):
        c = self.config
        return tuple(cyclegan.resnet_generator(3, 3, c.generator_width, c.generator_blocks,
                                               c.generator_downsamplings, name=name) for name in ("g_st", "g_ts"))

    def build_image_discriminator(self, name):
        c = self.config
        return cyclegan.patchgan_discriminator(3, c.discriminator_width, c.discriminator_layers,
                                               c.discriminator_norm, name=name)

    def pixel_stage_options(self):
        return {"image_shape": self.pixel_crop + (3,)}

    def pixel(self):
        self._train_crop = self.pixel_crop  # each adaptation stage trains on its own crop size
        try:
            return super().pixel()
        finally:
            self._train_crop = self.crop

    def feature(self):
        self._train_crop = self.feature_crop  # paper: 768x768, one source and one target crop per step
        try:
            return super().feature()
        finally:
            self._train_crop = self.crop

    def translation_grid(self, g_st, g_ts, path, n=6):
        multiple = 2 ** self.config.generator_downsamplings
        return super().translation_grid(segmenter.any_size(g_st, multiple), segmenter.any_size(g_ts, multiple),
                                        path, n)

    def applied_generators(self, g_st, g_ts):
        """The translators for full images of any size (translated records, target view)."""
        multiple = 2 ** self.config.generator_downsamplings
        return segmenter.any_size(g_st, multiple), segmenter.any_size(g_ts, multiple)

    def serving_model(self, net, view=None):
        return export.Segmenter(net, view, 2 ** self.config.generator_downsamplings), export.SEGMENT

    def serving_translator(self, generator, name):
        return export.Translator(generator, None, 3, name, multiple=2 ** self.config.generator_downsamplings)

    def _channels(self, layer):
        probe = self.new_task_net() if layer == segmenter.FEATURES else None
        return probe.get_layer(segmenter.FEATURES).output.shape[-1] if probe is not None else self.num_classes

    def build_feature_discriminator(self):
        """D_feat: 1x1 convolutions, one domain logit per position of the feature (or score) map."""
        channels = self._channels(self.config.feature_layer)
        return keras.Sequential([
            keras.Input((None, None, channels)),
            layers.Conv2D(FEATURE_DISCRIMINATOR_WIDTH, 1, activation="relu"),
            layers.Conv2D(FEATURE_DISCRIMINATOR_WIDTH, 1, activation="relu"),
            layers.Conv2D(1, 1, dtype="float32"),
        ], name="feature_discriminator")

    def feature_stage_options(self, f_ref, f_t):
        def encoder(net):
            return keras.Model(net.inputs, net.get_layer(segmenter.FEATURES).output, name=f"{net.name}_encoder")
        return {"encoders": (encoder(f_ref), encoder(f_t)), "gate_window": self.config.gate_window}

    # --- translated-source records: image PNG + label map PNG -------------------------------------------
    def translated_example(self, image, label, key):
        return schema.make_example(image, label_map=None if label is None else label.astype(np.uint8), key=key)

    def translated_info(self):
        return {"width": self.config.width or None, "direction": self.direction,
                "ignore_label": self.ignore_label}

    def load_translated(self, domain="source", labels=True):
        directory = self.translated_dir(domain)
        files = tfrecord.split_files(directory, "train")
        count = tfrecord.read_manifest(directory)["splits"]["train"]["count"]
        seed = self.seed + (domain == "target")
        crop = self._train_crop

        @tf.autograph.experimental.do_not_convert  # plain TF ops; AutoGraph trips over the closure
        def parse(serialized, element_seed):
            example = schema.parse(serialized)
            image = pipeline.decode_image(example[schema.IMAGE], None, 3)
            label = pipeline.decode_label_map(example[schema.LABEL_MAP]) if labels else None
            image, label = pipeline._crop_and_flip(image, label, crop, True, element_seed, self.ignore_label)
            return (image, label) if labels else image

        ds = tf.data.TFRecordDataset(files).cache().shuffle(min(count, 256), seed=seed).repeat()
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        return tf.data.Dataset.zip(ds, seeds).map(parse, num_parallel_calls=tf.data.AUTOTUNE), count

    # --- what TensorBoard shows of a task model ---------------------------------------------------------
    def target_test_summaries(self, net, translate=None):
        def periodic(model):
            counts = self.confusion(net, self.config.target, translate=translate)
            x, y = next(iter(self._load(self.config.target, "test", batch_size=OVERLAY_IMAGES)))
            seen = translate(x, training=False) if translate is not None else x
            prediction = tf.argmax(net(seen, training=False), axis=-1).numpy()
            picture = figures.segmentation_overlays(x.numpy(), y.numpy(), [("prediction", prediction)],
                                                    self.source_spec.classes)
            return {"target_test/miou": metrics.summary(counts)["miou"], "target_test/predictions": picture}
        return periodic

    # --- results ----------------------------------------------------------------------------------------
    @staticmethod
    def summarize(config, per_seed):
        return summarize(config, per_seed)

    @staticmethod
    def markdown_table(summary):
        return markdown_table(summary)

    @staticmethod
    def write_report(config, run_dir, summary):
        return write_report(config, run_dir, summary)


def summarize(config, per_seed):
    """Table 3's rows (mean over seeds of per-class IoU, mIoU, fwIoU, pixel accuracy) and the paired gain."""
    classes = registry.get(config.source).classes
    table = []
    for stage, key, label in ROWS:
        suffix = key[len("miou"):]  # "_t2s" for the pixel stage's row
        done = [r for r in train.stage_results(per_seed, stage) if key in r]
        if not done:
            continue
        row = {"model": label, "stage": stage, "key": key, "seeds": [r[key] for r in done]}
        for score in SCORES:
            values = [r[score + suffix] for r in done if r.get(score + suffix) is not None]
            row[score], row[score + "_standard_error"] = train.mean_and_se(values)
        row["per_class_iou"] = {name: train.mean_and_se([r["per_class_iou" + suffix][name] for r in done
                                                          if r["per_class_iou" + suffix].get(name) is not None])[0]
                                for name in classes}
        table.append(row)
    gain = train.adaptation_gain(per_seed, "miou")
    name, published = paper.reported_segmentation(config.source, config.target, config.model, classes)
    return {"source": config.source, "target": config.target, "seeds": list(per_seed), "classes": list(classes),
            "table": table, "per_seed": per_seed, "gain": gain, "config": config_lib.to_json(config),
            "paper": {"table": name, "rows": published} if published else None}


def _percent(value):
    return "-" if value is None else f"{100 * value:.1f}"


def markdown_table(summary):
    """Table 3 of the paper: per-class IoU, mIoU, fwIoU, pixel accuracy, one row per stage (%, mean over
    seeds; mIoU with its standard error)."""
    classes = summary["classes"]
    seeds = len(summary["seeds"])
    lines = [f"{summary['source']} -> {summary['target']}: IoU per class, mIoU, fwIoU and pixel accuracy "
             f"(%, mean over {seeds} seed{'s' if seeds != 1 else ''}; mIoU ± standard error)", "",
             "| Model | " + " | ".join(classes) + " | mIoU | fwIoU | Pixel acc. |",
             "|---|" + "---|" * (len(classes) + 3)]

    def line(label, row, miou):
        cells = [_percent(row["per_class_iou"].get(name)) for name in classes]
        return (f"| {label} | " + " | ".join(cells)
                + f" | {miou} | {_percent(row['fwiou'])} | {_percent(row['pixel_accuracy'])} |")

    for row in summary["table"]:
        lines.append(line(row["model"], row, f"{_percent(row['miou'])} ± {_percent(row['miou_standard_error'])}"))
    published = summary.get("paper")
    if published:  # the paper's rows for this shift and segmenter, beneath ours (one run each: no ± there)
        for stage, _, label in ROWS:
            row = published["rows"].get(stage)
            if row is not None:
                lines.append(line(f"paper, {published['table']}: {label}", row, _percent(row["miou"])))
    gain = summary.get("gain")
    if gain and gain["seeds"] > 1:
        model = "the final model" if gain.get("stage") == "final" else "pixel+feat"
        lines.append(f"\nGain of {model} over source only in mIoU, paired by seed: {100 * gain['mean']:+.1f} ± "
                     f"{100 * gain['standard_error']:.1f} points (mean ± s.e. of {gain['seeds']} seeds)")
    lines += train.decisions_lines(summary["per_seed"])
    return "\n".join(lines)


REPORT_PANELS = (("source", "source only"), ("target", "pixel only"), ("feature", "pixel+feat"),
                 ("self_train", "+ self-training"))


def prediction_figure(config, run_dir, seed, path):
    """image | ground truth | each finished stage's prediction on the first target test images (cf. the
    paper's Figure 5), coloured with the Cityscapes palette; returns the uint8 picture or None."""
    trial = SegmentationRun(config, seed, run_dir)
    panels = [(stage, label) for stage, label in REPORT_PANELS if trial.done(stage) is not None]
    if not panels:
        return None
    x, y = next(iter(trial._load(config.target, "test", batch_size=OVERLAY_IMAGES)))
    predictions = []
    for stage, label in panels:
        view = trial.view_of(stage)
        net = trial.new_task_net(trial.weights(stage))
        seen = view(x, training=False) if view is not None else x
        predictions.append((label, tf.argmax(net(seen, training=False), axis=-1).numpy()))
    picture = figures.segmentation_overlays(x.numpy(), y.numpy(), predictions, trial.source_spec.classes)
    figures.save_png(picture, path, scale=2)
    return picture


def write_report(config, run_dir, summary):
    """<run_dir>/report.md: the table, the translation grids and the prediction figures of each seed."""
    seeds = [int(seed) for seed in summary["seeds"]]
    lines = [f"# CyCADA segmentation: {config.source} -> {config.target}", "", markdown_table(summary), "",
             f"Seeds: {', '.join(map(str, seeds))}; numbers in `results.json`. Target labels are read for the "
             "table and the figures only, never in training.", ""]
    for seed in seeds:
        grid = os.path.join(f"seed_{seed}", "pixel", "translations.png")
        if os.path.exists(os.path.join(run_dir, grid)):
            lines += [f"## Translations, seed {seed} (cf. the paper's Figure 4)", "",
                      "Rows, top to bottom: " + ", ".join(f"`{row}`" for row in figures.TRANSLATION_ROWS), "",
                      f"![translations, seed {seed}]({grid})", ""]
        name = f"predictions_seed_{seed}.png"
        if prediction_figure(config, run_dir, seed, os.path.join(run_dir, name)) is not None:
            lines += [f"## Predictions on target test images, seed {seed} (cf. the paper's Figure 5)", "",
                      "Columns: image, ground truth, then each stage's prediction (Cityscapes colours; black: "
                      "ignored).", "", f"![predictions, seed {seed}]({name})", ""]
    lines += ["## TensorBoard", "", f"`tensorboard --logdir {run_dir}` (one run per seed and stage).", ""]
    with open(os.path.join(run_dir, "report.md"), "w") as handle:
        handle.write("\n".join(lines))


def run(config):
    SegmentationRun(config, config.seeds[0] if config.seeds else 0, config.run_dir or "runs").check_width()
    return train.run(config, SegmentationRun)
