"""Exports a trained run as TF Serving SavedModels: <export_dir>/<model>/<version>/, one model each for the
adapted classifier (digits) or segmenter (road scenes) and the two translators, taking uint8 images as a client
sends them.

Each model's preprocessing is in its graph (cycada_tf.data.pipeline.from_uint8: grey <-> RGB, bilinear resize
to the digit networks' side, scaling to [-1, 1]), so a client sends uint8 images of any batch size, side and
channel count (1 or 3). The segmenter and its translators are fully convolutional: they take images of any
height and width (padded inside to what the network needs, the output cropped back) and answer at that size.
A version directory appears in one step (written beside it under a name TF Serving skips, then renamed), and
each export takes the next integer version of its model.
"""

import os
import shutil
import tempfile

import tensorflow as tf

from cycada_tf.data import pipeline
from cycada_tf.models import digit_gan, segmenter

CLASSIFIER, SEGMENTER, G_ST, G_TS = "classifier", "segmenter", "g_st", "g_ts"
# signature names (each model's serving_default too)
CLASSIFY, SEGMENT, TRANSLATE = "classify", "segment", "translate"
IMAGES = "images"  # the input of every signature
PROBABILITIES, CLASSES, LABEL_MAP, TRANSLATED = "probabilities", "classes", "label_map", "translated"
# Which run stage's f the classifier (or segmenter) is, best first: f_T after feature adaptation, else the
# pixel-only f_T, else the source model.
CLASSIFIER_STAGES = ("self_train", "feature", "target", "source")
IMAGE_SPEC = tf.TensorSpec([None, None, None, None], tf.uint8, name=IMAGES)


class Classifier(tf.Module):
    """uint8 target images -> class probabilities and ids. `view` (G_T->S, for --pixel_direction=t2s) maps
    the images into the source domain first, as the run's target model was trained to read them."""

    def __init__(self, net, image_size, channels, view=None):
        super().__init__(name=CLASSIFIER)
        self.net, self.view = net, view
        self.image_size, self.channels = image_size, channels

    @tf.function(input_signature=[IMAGE_SPEC])
    def classify(self, images):
        x = pipeline.from_uint8(images, self.image_size, self.channels)
        if self.view is not None:
            x = self.view(x, training=False)
        logits = self.net(x, training=False)
        return {PROBABILITIES: tf.nn.softmax(logits, axis=-1),
                CLASSES: tf.argmax(logits, axis=-1, output_type=tf.int64)}


class Segmenter(tf.Module):
    """uint8 road scenes (batch, height, width, 1 or 3) of any size -> per-pixel class probabilities (float32,
    batch, height, width, classes) and the label map of train ids (uint8, batch, height, width). `view`
    (G_T->S, for --pixel_direction=t2s) maps the images into the source domain first."""

    def __init__(self, net, view=None, view_multiple=1):
        super().__init__(name=SEGMENTER)
        self.net, self.view, self.view_multiple = net, view, view_multiple
        self.multiple = segmenter.input_multiple(net)

    @tf.function(input_signature=[IMAGE_SPEC])
    def segment(self, images):
        x = pipeline.from_uint8(images, None, 3)
        if self.view is not None:
            x = segmenter.any_size(self.view, self.view_multiple)(x)
        logits = tf.cast(segmenter.any_size(self.net, self.multiple)(x), tf.float32)
        return {PROBABILITIES: tf.nn.softmax(logits, axis=-1),
                LABEL_MAP: tf.cast(tf.argmax(logits, axis=-1), tf.uint8)}


class Translator(tf.Module):
    """uint8 images of one domain -> uint8 images of the other (G_S->T draws its style code z inside, a
    fresh one per image and call). image_size None: images keep their size (a fully convolutional generator
    whose sides must be multiples of `multiple`: padded inside, cropped back)."""

    def __init__(self, generator, image_size, channels, name, multiple=1):
        super().__init__(name=name)
        self.generator, self.multiple = generator, multiple
        # The style code's random state is a variable Keras does not list among the model's weights; a
        # SavedModel must own every variable its functions use, so it is tracked here.
        self.style_states = [layer.seed.state.value for layer in generator.layers
                             if isinstance(layer, digit_gan.StyleCode)]
        self.image_size, self.channels = image_size, channels

    @tf.function(input_signature=[IMAGE_SPEC])
    def translate(self, images):
        x = pipeline.from_uint8(images, self.image_size, self.channels)
        return {TRANSLATED: pipeline.to_uint8(segmenter.any_size(self.generator, self.multiple)(x))}


def versions(model_dir):
    """The integer versions already exported under `model_dir` (what TF Serving would load), sorted."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir) if name.isdigit())


def save(module, export_dir, model_name, signature):
    """Write `module` as the next version of `model_name`; returns the version directory.

    The SavedModel is written under a hidden temporary name beside the version directories and renamed into
    place, so TF Serving (which polls for integer-named directories) never sees a half-written version. If
    another export took the version meanwhile, the rename fails and the next number is tried.
    """
    model_dir = os.path.join(export_dir, model_name)
    os.makedirs(model_dir, exist_ok=True)
    function = getattr(module, signature)
    tmp = tempfile.mkdtemp(prefix=".partial-", dir=model_dir)
    try:
        saved = os.path.join(tmp, "model")
        logger, level = tf.get_logger(), tf.get_logger().level
        logger.setLevel("WARNING")  # saving logs a dozen INFO lines per model
        try:
            tf.saved_model.save(module, saved, signatures={"serving_default": function, signature: function})
        finally:
            logger.setLevel(level)
        while True:
            version = (versions(model_dir) or [0])[-1] + 1
            target = os.path.join(model_dir, str(version))
            try:
                os.rename(saved, target)  # fails if `target` appeared meanwhile (a non-empty directory)
                return target
            except OSError:
                if not os.path.isdir(target):
                    raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_seed(trial, export_dir, log=print):
    """Export one seed of a run (`trial`, a cycada_tf.trial.Trial of a finished run): the adapted classifier
    (segmenter) that the run chose as final (seed_<k>/final.json), else the one of the latest stage that
    finished, and both translators if the pixel stage did; the serving modules are the task's. Returns
    {model name: version directory}."""
    task = trial.task
    stage = next((s for s in CLASSIFIER_STAGES if os.path.exists(trial.weights(s))), None)
    final = trial.final()  # the model chosen without target labels (selection.final_model)
    if final is not None:
        stage = final["choice"]
    if stage is None:
        raise ValueError(f"nothing to export in {trial.dir}: no finished source, target or feature stage "
                         f"(run those stages first, or check --run_dir and --seed)")
    has_pixel = trial.has_generators()
    translated = trial.reads_translated(stage)
    if translated and not has_pixel:
        raise ValueError(f"the '{stage}' stage of {trial.dir} reads target images through G_T->S "
                         f"(--pixel_direction=t2s), but pixel/g_st.weights.h5 or g_ts.weights.h5 is missing")
    g_st, g_ts = trial.trained_generators() if has_pixel else (None, None)
    view = g_ts if translated else None
    module, signature = task.serving_model(trial.network(stage), view)
    name = module.name
    exported = {name: save(module, export_dir, name, signature)}
    log(f"exported the '{stage}' stage's {name}"
        + (" (through G_T->S, --pixel_direction=t2s)" if view is not None else "") + f" to {exported[name]}")
    if has_pixel:
        for name, generator in ((G_ST, g_st), (G_TS, g_ts)):
            exported[name] = save(task.serving_translator(generator, name), export_dir, name, TRANSLATE)
            log(f"exported {name} to {exported[name]}")
    return exported
