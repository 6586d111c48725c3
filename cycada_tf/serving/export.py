"""Exports a trained run as TF Serving SavedModels: <export_dir>/<model>/<version>/, one model each for the
adapted classifier (digits) or segmenter (road scenes) and the two translators, taking uint8 images as a client
sends them, or the image files themselves (PNG, JPEG, ...) as TF Serving's REST API sends {"b64": ...}. The
classifier also answers TF Serving's Classify API (`:classify`): tf.Examples whose "image" feature holds the file.

Each model's preprocessing is in its graph (cycada_tf.data.pipeline.from_uint8: grey <-> RGB, bilinear resize
to the digit networks' side, scaling to [-1, 1]), so a client sends uint8 images of any batch size, side and
channel count (1 or 3); image files are decoded and resized one by one, so a batch of them may mix sizes. The
segmenter and its translators are fully convolutional: they take images of any height and width (padded inside
to what the network needs, the output cropped back) and answer at that size, so a batch has one size.
A version directory appears in one step (written beside it under a name TF Serving skips, then renamed), and
each export takes the next integer version of its model; its assets/ name the classes (classes.txt) and the
run it came from (run.json; export_directory.py, which also writes <export_dir>/models.config).
"""

import os
import shutil
import socket
import tempfile

import tensorflow as tf

from cycada_tf.serving import export_directory as export_layout
from cycada_tf.train import atomic_files as files, locks
from cycada_tf.serving.export_directory import versions
from cycada_tf.data import pipeline, tfrecord
from cycada_tf.models import digit_gan, segmenter
from cycada_tf.stages import registry

CLASSIFIER, SEGMENTER, G_ST, G_TS = "classifier", "segmenter", "g_st", "g_ts"
# signature names (each model's serving_default too)
CLASSIFY, SEGMENT, TRANSLATE = "classify", "segment", "translate"
PREDICT = "predict"  # the classifier's signature under the name TF Serving users expect; CLASSIFY is its old name
# The classifier's Classify-API signature (tensorflow_serving's classification_signature_def): serialized
# tf.Examples in, whose IMAGE_FEATURE is an encoded image file; class names (strings) and their scores out.
CLASSIFICATION, CLASSIFY_METHOD = "classification", "tensorflow/serving/classify"
CLASSIFY_INPUTS, CLASSIFY_CLASSES, CLASSIFY_SCORES, IMAGE_FEATURE = "inputs", "classes", "scores", "image"
PARTIAL = ".partial-"  # a version being written: <model>/.partial-<pid>@<host>-<random>/, skipped by TF Serving
IMAGES = "images"  # the input of every signature
PROBABILITIES, CLASSES, LABEL_MAP, TRANSLATED = "probabilities", "classes", "label_map", "translated"
CLASS_NAMES = "class_names"  # [batch, classes] strings: every answer of a task model names its classes
# Each model's signature + ENCODED takes IMAGE_BYTES, one encoded image file (PNG, JPEG, GIF, BMP) per image:
# TF Serving's REST API turns {"b64": ...} into such a string, never into uint8 pixels.
ENCODED, IMAGE_BYTES = "_encoded", "image_bytes"
CLASSES_FILE = "classes.txt"  # asset of a task model: one class name a line, line k naming class id k
# Which run stage's f the classifier (or segmenter) is without a final model: the final model's candidates,
# the most adapted first.
CLASSIFIER_STAGES = tuple(reversed(registry.CANDIDATES))
IMAGE_SPEC = tf.TensorSpec([None, None, None, None], tf.uint8, name=IMAGES)
BYTES_SPEC = tf.TensorSpec([None], tf.string, name=IMAGE_BYTES)
EXAMPLES_SPEC = tf.TensorSpec([None], tf.string, name=CLASSIFY_INPUTS)


class Served(tf.Module):
    """What every exported module shares: its signature's name (and `aliases`, other names of it), its class
    names (a translator has none), the outputs its encoded-image signature answers (all unless
    `encoded_outputs` says), the input side and channels of its network (image_size None: any size), and
    `method_names`, the signatures whose TF Serving method is not Predict. Each subclass defines answer(x): the
    network's input batch (what preprocess or decode gives) -> the signature's outputs."""

    signature = None
    aliases = ()
    encoded_outputs = None
    method_names = {}
    image_size, channels = None, 3

    def __init__(self, name, classes=()):
        super().__init__(name=name)
        self.classes = tuple(str(c) for c in classes)

    def preprocess(self, images):
        """uint8 image(s) as a client sends them -> the network's input (pipeline.from_uint8, as in training)."""
        return pipeline.from_uint8(images, self.image_size, self.channels)

    def decode(self, image_bytes):
        """Encoded image files (PNG, JPEG, GIF, BMP) -> the network's input batch. Each file is decoded and
        preprocessed alone, so files of different sizes batch when the network has one input side. Grey files
        become RGB: from_uint8's RGB -> grey of them gives the grey values back exactly."""
        def one(data):
            return self.preprocess(tf.io.decode_image(data, channels=3, expand_animations=False))
        side = self.image_size
        return tf.map_fn(one, image_bytes, fn_output_signature=tf.TensorSpec([side, side, self.channels]))

    def class_names(self, batch):
        """CLASS_NAMES: the class names once per image, so TF Serving's REST rows each carry them."""
        return tf.tile(tf.constant(self.classes, tf.string)[None], [batch, 1])

    def signatures(self):
        """{signature name: function} to save: serving_default and the signature (and its aliases) take uint8
        images, each of them + ENCODED image files."""
        function, keep = getattr(self, self.signature), self.encoded_outputs

        @tf.function(input_signature=[BYTES_SPEC])
        def from_files(image_bytes):
            answer = self.answer(self.decode(image_bytes))
            return {name: value for name, value in answer.items() if keep is None or name in keep}
        names = (self.signature,) + self.aliases
        return {"serving_default": function, **{name: function for name in names},
                **{name + ENCODED: from_files for name in names}}


class Classifier(Served):
    """uint8 target images -> class probabilities and ids (and the class names), as the Predict signatures
    `predict` and `classify` (its old name); and as CLASSIFICATION, TF Serving's Classify API. `view` (G_T->S,
    for --pixel_direction=t2s) maps the images into the source domain first, as the run's target model was
    trained to read them."""

    signature = CLASSIFY
    aliases = (PREDICT,)
    method_names = {CLASSIFICATION: CLASSIFY_METHOD}

    def __init__(self, net, image_size, channels, classes, view=None):
        super().__init__(CLASSIFIER, classes)
        self.net, self.view = net, view
        self.image_size, self.channels = image_size, channels

    def answer(self, x):
        if self.view is not None:
            x = self.view(x, training=False)
        logits = self.net(x, training=False)
        return {PROBABILITIES: tf.nn.softmax(logits, axis=-1),
                CLASSES: tf.argmax(logits, axis=-1, output_type=tf.int64),
                CLASS_NAMES: self.class_names(tf.shape(x)[0])}

    @tf.function(input_signature=[IMAGE_SPEC])
    def classify(self, images):
        return self.answer(self.preprocess(images))

    def signatures(self):
        """Served's, and CLASSIFICATION: serialized tf.Examples (`inputs`) whose IMAGE_FEATURE is an image file
        -> `classes`, every class name, and `scores`, their probabilities (both [batch, classes]), what
        tensorflow_serving's Classify API reads (save() sets its method name: export_layout.set_method_names)."""
        @tf.function(input_signature=[EXAMPLES_SPEC])
        def classification(inputs):
            files = tf.io.parse_example(inputs, {IMAGE_FEATURE: tf.io.FixedLenFeature([], tf.string)})
            answer = self.answer(self.decode(files[IMAGE_FEATURE]))
            return {CLASSIFY_CLASSES: answer[CLASS_NAMES], CLASSIFY_SCORES: answer[PROBABILITIES]}
        return {**super().signatures(), CLASSIFICATION: classification}


class Segmenter(Served):
    """uint8 road scenes (batch, height, width, 1 or 3) of any size -> per-pixel class probabilities (float32,
    batch, height, width, classes), the label map of train ids (uint8, batch, height, width: 1 byte a pixel,
    what a client asks for alone to stay under gRPC's 4 MB default) and the class names. Its encoded-image
    signature answers the label map and the names only: REST has no output filter, and the probabilities of
    a 2048x1024 Cityscapes frame are 160 MB. `view` (G_T->S, for --pixel_direction=t2s) maps the images into
    the source domain first."""

    signature = SEGMENT
    encoded_outputs = (LABEL_MAP, CLASS_NAMES)

    def __init__(self, net, classes, view=None, view_multiple=1):
        super().__init__(SEGMENTER, classes)
        if len(self.classes) > 255:  # uint8 label maps; 255 is the ignore label
            raise ValueError(f"a uint8 label map holds 255 classes at most, the segmenter has {len(self.classes)}")
        self.net, self.view, self.view_multiple = net, view, view_multiple
        self.multiple = segmenter.input_multiple(net)

    def answer(self, x):
        if self.view is not None:
            x = segmenter.any_size(self.view, self.view_multiple)(x)
        logits = tf.cast(segmenter.any_size(self.net, self.multiple)(x), tf.float32)
        return {PROBABILITIES: tf.nn.softmax(logits, axis=-1),
                LABEL_MAP: tf.cast(tf.argmax(logits, axis=-1), tf.uint8),
                CLASS_NAMES: self.class_names(tf.shape(x)[0])}

    @tf.function(input_signature=[IMAGE_SPEC])
    def segment(self, images):
        return self.answer(self.preprocess(images))


class Translator(Served):
    """uint8 images of one domain -> uint8 images of the other (G_S->T draws its style code z inside, a
    fresh one per image and call). image_size None: images keep their size (a fully convolutional generator
    whose sides must be multiples of `multiple`: padded inside, cropped back)."""

    signature = TRANSLATE

    def __init__(self, generator, image_size, channels, name, multiple=1):
        super().__init__(name)
        self.generator, self.multiple = generator, multiple
        # The style code's random state is a variable Keras does not list among the model's weights; a
        # SavedModel must own every variable its functions use, so it is tracked here.
        self.style_states = [layer.seed.state.value for layer in generator.layers
                             if isinstance(layer, digit_gan.StyleCode)]
        self.image_size, self.channels = image_size, channels

    def answer(self, x):
        return {TRANSLATED: pipeline.to_uint8(segmenter.any_size(self.generator, self.multiple)(x))}

    @tf.function(input_signature=[IMAGE_SPEC])
    def translate(self, images):
        return self.answer(self.preprocess(images))


def _attach_assets(module, directory, record):
    """Write the class names and the run record into `directory` and track them as assets of `module`:
    saving copies them into the version's assets/ (None: no such file)."""
    module.classes_file = module.run_file = None
    if module.classes:
        path = os.path.join(directory, CLASSES_FILE)
        with open(path, "w") as handle:
            handle.write("".join(f"{name}\n" for name in module.classes))
        module.classes_file = tf.saved_model.Asset(path)
    if record is not None:
        path = os.path.join(directory, export_layout.RUN_FILE)
        files.write_json(path, record)
        module.run_file = tf.saved_model.Asset(path)


def remove_stale_partials(model_dir, log=print):
    """Remove the .partial-<pid>@<host>-* directories that exports killed before their rename left in
    `model_dir` (their writer no longer runs; a name without one is older, and stale); returns them."""
    removed = []
    for name in sorted(os.listdir(model_dir)) if os.path.isdir(model_dir) else ():
        path = os.path.join(model_dir, name)
        if name.startswith(PARTIAL) and os.path.isdir(path) and tfrecord.writer_is_gone(name[len(PARTIAL):]):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
            log(f"removed {path}: left by an export that did not finish (a killed one)")
    return removed


def save(module, export_dir, model_name, record=None, log=print):
    """Write `module` (a Served) as the next version of `model_name`, with its class names and `record` (the
    run it came from, export_layout.run_record) as assets; returns the version directory.

    The SavedModel is written under a hidden temporary name beside the version directories and renamed into
    place, so TF Serving (which polls for integer-named directories) never sees a half-written version. If
    another export took the version meanwhile, the rename fails and the next number is tried. What killed
    exports left there is removed first (remove_stale_partials, said to `log`).
    """
    model_dir = os.path.join(export_dir, model_name)
    os.makedirs(model_dir, exist_ok=True)
    remove_stale_partials(model_dir, log)
    tmp = tempfile.mkdtemp(prefix=f"{PARTIAL}{os.getpid()}@{socket.gethostname()}-", dir=model_dir)
    try:
        _attach_assets(module, tmp, record)
        saved = os.path.join(tmp, "model")
        logger, level = tf.get_logger(), tf.get_logger().level
        logger.setLevel("WARNING")  # saving logs a dozen INFO lines per model
        try:
            tf.saved_model.save(module, saved, signatures=module.signatures())
            export_layout.set_method_names(saved, module.method_names)
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


def export_seed(trial, export_dir, log=print, prefix=""):
    """Export one seed of a run (`trial`, a cycada_tf.stages.trial.Trial of a finished run): the adapted classifier
    (segmenter) that the run chose as final (seed_<k>/final.json), else the one of the latest stage that
    finished, and both translators if the pixel stage did; the serving modules are the task's. Model names
    start with `prefix`; a name whose latest version came from another run is refused (ValueError) before
    anything is written. Then <export_dir>/models.config names every model there. Returns {model name:
    version directory}."""
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
    model = task.serving_model(trial.network(stage), view)
    modules = {prefix + model.name: (model, stage)}
    if has_pixel:
        modules.update({prefix + name: (task.serving_translator(generator, name), registry.TRANSLATORS)
                        for name, generator in ((G_ST, g_st), (G_TS, g_ts))})
    record = export_layout.run_record(trial, stage)
    export_layout.check_names(export_dir, modules, record)  # before anything is written
    exported = {}
    with locks.held(export_dir, "--export_dir", locks.EXPORT_LOCK, log):  # one export at a time
        export_layout.check_names(export_dir, modules, record)  # again: another export may have just ended
        for name, (module, from_stage) in modules.items():
            exported[name] = save(module, export_dir, name, {**record, "stage": from_stage}, log)
            log(f"exported the '{from_stage}' stage's {name}" + (" (through G_T->S, --pixel_direction=t2s)"
                                                                  if module is model and view is not None else "")
                + f" to {exported[name]}")
        log(f"wrote {export_layout.write_model_config(export_dir)} (tensorflow_model_server --model_config_file)")
    return exported
