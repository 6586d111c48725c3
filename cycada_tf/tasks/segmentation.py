"""Semantic segmentation (paper section 4.2, Tables 3 and 4): segmenters (small FCN, FCN8s, DRN-26),
CycleGAN's ResNet translators and PatchGAN, random crops of label-mapped images for training and full images
for evaluation, per-class IoU / mIoU / fwIoU / pixel accuracy, and prediction overlays (cf. Figure 5)."""

import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers

from cycada_tf.serving import export
from cycada_tf.reporting import results, segmentation_metrics as metrics
from cycada_tf.train import figures, summaries
from cycada_tf.reporting import report as report_lib
from cycada_tf.data import pipeline, registry, schema, tfrecord, translated
from cycada_tf.models import cyclegan, drn, fcn8s, pretrained, segmenter, small_fcn
from cycada_tf.models.layers import computing_in, initialize, sequential
from cycada_tf.stages import feature, pixel, self_train, source, target
from cycada_tf.stages import registry as stage_registry
from cycada_tf.tasks.base import Task

SEGMENTERS = {"small_fcn": None, "fcn8s": fcn8s.fcn8s, "drn26": drn.drn26}
# What a training crop fitted to a smaller image is rounded down to: each segmenter's output stride (FCN8s
# requires it; DRN and the small FCN keep their grid aligned with it).
CROP_MULTIPLES = {"small_fcn": 4, "fcn8s": fcn8s.FCN_STRIDE, "drn26": 8}
REPORT_PANELS = ((source.STAGE.name, "source only"), (target.STAGE.name, "pixel only"),
                 (feature.STAGE.name, "pixel+feat"), (self_train.STAGE.name, "+ self-training"))
# The stages whose crops of an image smaller than the crop are padded (fit() says why).
PADDED_CROPS = (pixel.STAGE.name, self_train.STAGE.name)
OVERLAY_IMAGES = 4  # test images of the prediction figure
FEATURE_DISCRIMINATOR_WIDTH = 256  # hidden channels of D_feat's 1x1 convolutions (a per-position MLP)


def _pair(values, flag):
    values = tuple(int(v) for v in values)
    if len(values) != 2 or min(values) < 1:
        raise ValueError(f"--{flag} takes height,width (two positive integers), got {','.join(map(str, values))}")
    return values


def feature_discriminator(channels, dtype=None):
    """D_feat: 1x1 convolutions computing in `dtype`, one float32 domain logit per position of the feature (or
    score) map."""
    return sequential([
        keras.Input((None, None, channels)),
        layers.Conv2D(FEATURE_DISCRIMINATOR_WIDTH, 1, activation="relu", dtype=dtype),
        layers.Conv2D(FEATURE_DISCRIMINATOR_WIDTH, 1, activation="relu", dtype=dtype),
        layers.Conv2D(1, 1, dtype="float32"),
    ], "feature_discriminator", dtype)


class SegmentationTask(Task):
    name = "segmentation"
    score_key = "miou"
    ignore_label = schema.IGNORE_LABEL

    def __init__(self, config):
        super().__init__(config)
        c = config
        if c.model not in SEGMENTERS:
            raise ValueError(f"--model must be one of {', '.join(SEGMENTERS)}, got {c.model!r}")
        for spec in (self.source_spec, self.target_spec):
            if not spec.segmentation:
                raise ValueError(f"dataset '{spec.name}' has no label maps: use the digits experiment for it")
        # Each stage trains on its own crop size: the pixel and feature stages on theirs, the others on --crop_size.
        self.crops = {stage.name: _pair(getattr(c, stage.crop), stage.crop) for stage in stage_registry.STAGES
                      if stage.crop}
        self.crop = _pair(c.crop_size, "crop_size")
        self.eval_batch_size = c.eval_batch_size
        self.multiple = 2 ** c.generator_downsamplings  # what a translator's input sides must divide by

    def check_data(self):
        """--width against the width the data was prepared at (clear error instead of a silent mismatch)."""
        super().check_data()
        c = self.config
        for name in (c.source, c.target) if c.width else ():
            info = tfrecord.read_manifest(registry.ensure(name, c.data_dir))["info"]
            if info.get("width") not in (None, c.width):
                raise ValueError(f"--width={c.width} but dataset '{name}' in {c.data_dir} was prepared at width "
                                 f"{info.get('width')}: prepare it again with tools/prepare_data.py "
                                 f"--width={c.width}, or pass --width={info.get('width')}")

    def eval_split(self, domain):
        """--eval_split if the dataset has it, else None (GTA5 and SYNTHIA have a train split only)."""
        split = self.config.eval_split
        return split if split in registry.get(self.domain(domain)).splits else None

    def inputs(self, domain, split, labels=True, batch_size=None, shuffle=False, seed=0, repeat=False,
               drop_remainder=False, stage=None):
        """Training pipelines (shuffle=True) take random crops of `stage`'s size with flips; the others give
        full images (evaluation, translation), at most --eval_batch_size at a time. Split "test" is the
        evaluation split (--eval_split, else train: figures of a dataset without one)."""
        if split == "test":
            split = self.eval_split(domain) or "train"
        split = self.split(domain, split)
        crop = self.crops.get(stage, self.crop) if shuffle else None
        if not shuffle and batch_size:
            batch_size = min(batch_size, self.eval_batch_size)
        return pipeline.load_segmentation(self.domain(domain), split, self.config.data_dir, labels=labels,
                                          crop_size=crop, flip=crop is not None, batch_size=batch_size,
                                          shuffle=shuffle, seed=seed, repeat=repeat, drop_remainder=drop_remainder,
                                          fit=self.fit(stage), **self.resolution(stage, scored=not shuffle))

    def resolution(self, stage, scored=False):
        """How `stage` reads images (pipeline.rescale's arguments). Without --train_short_side: as prepared.
        With it: the pixel stage and its translations at --width (the paper's resize), every other reader at
        the short side; `scored` label maps stay as prepared under --eval_resolution=native."""
        c = self.config
        if not c.train_short_side:
            return {}
        if stage == stage_registry.TRANSLATORS:
            return {"width": c.width or None}
        return {"short_side": c.train_short_side, "resize_label": not (scored and c.eval_resolution == "native")}

    def fit(self, stage):
        """How `stage`'s crops meet an image smaller than the crop: padded where both domains' crops must share
        one shape (the pixel stage's image pools; self-training's one forward pass over both), everywhere else
        taken no larger than the image (pipeline.crop_and_flip), so that neither the task loss nor D_feat sees
        padding (768x768 crops of 512-high Cityscapes images were a third grey padding, of GTA5's 563-high
        ones a quarter: a cue of the domain)."""
        return None if stage in PADDED_CROPS else CROP_MULTIPLES[self.config.model]

    def scores(self, net, domain, translate=None, prefix="", suffix=""):
        return {} if self.eval_split(domain) is None else super().scores(net, domain, translate, prefix, suffix)

    def labelled_scores(self, net, domain, translate=None):
        return metrics.summary(self.confusion(net, domain, translate), self.classes)

    # --- networks ---------------------------------------------------------------------------------------
    def build_network(self, from_scratch=True, dtype=None):
        c = self.config
        if c.model == "small_fcn":
            return small_fcn.small_fcn(self.num_classes, width=c.model_width, dtype=dtype)
        # Loaded weights replace the backbone's: read the ImageNet backbone only for a network from scratch.
        try:
            options = {"skip_scaling": c.fcn8s_skip_scaling} if c.model == "fcn8s" else {}
            return SEGMENTERS[c.model](self.num_classes, dtype=dtype,
                                       weights=(c.backbone_weights or None) if from_scratch else None, **options)
        except pretrained.WeightsFileError as error:  # the run's one line: the flag, then the file
            raise pretrained.WeightsFileError(f"--backbone_weights={c.backbone_weights}: {error}") from None

    def generators(self, dtype=None):
        c = self.config
        return tuple(initialize(cyclegan.resnet_generator(3, 3, c.generator_width, c.generator_blocks,
                                                          c.generator_downsamplings, c.instance_norm_affine,
                                                          name=name, dtype=dtype), c.pixel_init)
                     for name in ("g_st", "g_ts"))

    def applied(self, generator):
        return segmenter.any_size(generator, self.multiple)

    def image_discriminator(self, name, dtype=None):
        c = self.config
        return initialize(cyclegan.patchgan_discriminator(3, c.discriminator_width, c.discriminator_layers,
                                                          c.discriminator_norm, c.instance_norm_affine, name=name,
                                                          dtype=dtype), c.pixel_init)

    def feature_discriminator(self, dtype=None):
        if self.config.feature_layer != segmenter.FEATURES:
            return feature_discriminator(self.num_classes, dtype)
        # Only the features' width is read from this network: no backbone weights (FCN8s' are 553 MB).
        features = self.build_network(from_scratch=False, dtype=dtype).get_layer(segmenter.FEATURES)
        return feature_discriminator(features.output.shape[-1], dtype)

    def feature_options(self, f_ref, f_t):
        def encoder(net):
            return computing_in(keras.Model(net.inputs, net.get_layer(segmenter.FEATURES).output,
                                            name=f"{net.name}_encoder"), net.dtype_policy)
        return {"encoders": (encoder(f_ref), encoder(f_t)), "gate_window": self.config.gate_window,
                "shared": self.config.feature_recipe == "release"}

    def pixel_options(self):
        return {"image_shape": self.crops[stage_registry.TRANSLATORS] + (3,)}

    # --- reverse validation (selection/reverse.py): a small FCN on crops, scored by mIoU on the source ------
    reverse_batch_size = 8

    def reverse_network(self):
        return small_fcn.small_fcn(self.num_classes, width=self.config.model_width)

    def reverse_data(self, images, labels):
        """Every image with its label map, and the crop they are drawn at: --crop_size, within the smallest
        image, in multiples of the small FCN's stride."""
        pairs = [(x, y) for batch, maps in zip(images, labels) for x, y in zip(batch, maps)]
        multiple = CROP_MULTIPLES["small_fcn"]
        crop = [min(side, min(x.shape[axis] for x, _ in pairs)) // multiple * multiple
                for axis, side in enumerate(self.crop)]
        return pairs, crop

    def reverse_batch(self, data, rng):
        pairs, (height, width) = data
        xs, ys = [], []
        for k in rng.randint(len(pairs), size=self.reverse_batch_size):
            x, y = pairs[k]
            top, left = rng.randint(x.shape[0] - height + 1), rng.randint(x.shape[1] - width + 1)
            x, y = x[top:top + height, left:left + width], y[top:top + height, left:left + width]
            if rng.rand() < 0.5:
                x, y = x[:, ::-1], y[:, ::-1]
            xs.append(x)
            ys.append(y)
        return np.stack(xs), np.stack(ys).astype(np.int32)

    def reverse_score(self, net, translate=None):
        """The reverse network's mIoU on the source evaluation split (its training split if it has none), read
        through `translate` if given."""
        split = "test" if self.eval_split("source") else "train"
        return float(metrics.summary(self.confusion(net, "source", translate, split=split))["miou"])

    # --- translated records: image PNG + label map PNG -------------------------------------------------
    make_translated_example = staticmethod(translated.segmentation_example)

    def translated_info(self, direction):
        return {"width": self.config.width or None, "direction": direction, "ignore_label": self.ignore_label}

    def load_translated(self, path, labels, seed, stage=None):
        return translated.load_segmentation(path, labels, self.crops.get(stage, self.crop), seed,
                                            self.ignore_label, self.fit(stage),
                                            self.resolution(stage).get("short_side"))

    # --- figures and serving ----------------------------------------------------------------------------
    def translation_grid(self, g_st, g_ts, path, n=6):
        xs, xt = (next(iter(self.inputs(domain, "test", labels=False, batch_size=n,
                                        stage=stage_registry.TRANSLATORS))) for domain in ("source", "target"))
        return summaries.TranslationGrid(self.applied(g_st), self.applied(g_ts), xs, xt, path)

    def test_summaries(self, net, translate=None):
        def periodic(model):
            counts = self.confusion(net, "target", translate=translate)
            return {"target_test/miou": metrics.summary(counts)["miou"],
                    "target_test/predictions": self.overlays([("prediction", net, translate)])}
        return periodic

    def overlays(self, panels, scale=1):
        """image | ground truth | each (label, net, view)'s prediction on the first target test images, titled,
        with the colours' legend (figures.segmentation_overlays); a panel whose net is None keeps its column,
        marked as not run."""
        x, y = next(iter(self.inputs("target", "test", batch_size=OVERLAY_IMAGES)))
        predictions = [(label, None if net is None else tf.argmax(metrics.at_label_size(
            net(view(x, training=False) if view is not None else x, training=False), y), axis=-1).numpy())
            for label, net, view in panels]
        if x.shape[1:3] != y.shape[1:3]:  # --eval_resolution=native: the image shown at its labels' size
            x = tf.image.resize(x, tf.shape(y)[1:3], method="bilinear")
        return figures.segmentation_overlays(x.numpy(), y.numpy(), predictions, self.classes, scale=scale)

    def serving_model(self, net, view=None):
        return export.Segmenter(net, self.classes, view, self.multiple)

    def serving_translator(self, generator, name):
        return export.Translator(generator, None, 3, name, multiple=self.multiple)

    # --- results ----------------------------------------------------------------------------------------
    def summarize(self, per_seed):
        return results.summarize_segmentation(self.config, per_seed, self.rows, self.classes)

    def markdown_table(self, summary):
        return report_lib.segmentation_table(summary, results.decisions(summary["per_seed"]), self.rows)

    def report_sections(self, run_dir, summary, trials):
        """report.md's translation grids, the feature gate's figures and, per seed, image | ground truth | each
        finished stage's prediction on the first target test images (cf. the paper's Figure 5)."""
        lines = stage_registry.report_sections(run_dir, [trial.seed for trial in trials], self.config.TASK)
        for trial in trials:
            done = [stage for stage, _ in REPORT_PANELS if trial.done(stage) is not None]
            if not done:
                continue
            # Every panel keeps its column, a stage that has not run marked so: the seeds' figures line up.
            panels = [(label, trial.network(stage), trial.view_of(stage)) if stage in done else (label, None, None)
                      for stage, label in REPORT_PANELS]
            name = f"predictions_seed_{trial.seed}.png"
            figures.save_png(self.overlays(panels, scale=2), os.path.join(run_dir, name))
            lines += [f"## Predictions on target test images, seed {trial.seed} (cf. the paper's Figure 5)", "",
                      "Columns: image, ground truth, then each stage's prediction, titled in the figure "
                      "(Cityscapes colours, legend below it; black: ignored).", "",
                      f"![predictions, seed {trial.seed}]({name})", ""]
        return lines

    def title(self):
        return f"CyCADA segmentation: {self.config.source} -> {self.config.target}"
