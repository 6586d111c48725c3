"""Export for TF Serving: the layout and signatures (as saved_model_cli lists them), models.config, the class names
and run record among each version's assets, reloaded models that answer as the Keras networks do on the same uint8
images (and on the same images as PNG or JPEG files), version numbering, atomic versions, and tools/export.py,
which refuses another run's model under a taken name."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from conftest import child_env
from cycada_tf.config import experiment_config as config_lib
from cycada_tf.serving import export
from cycada_tf import tasks
from cycada_tf.train import atomic_files as files
from cycada_tf.data import pipeline, registry
from cycada_tf.models import digit_gan, lenet
from cycada_tf.stages.source import TaskStage
from cycada_tf.stages.trial import Trial
from tools import export as export_tool

TINY = dict(seeds=(0,), generator_width=4, noise_channels=2, pixel_direction="t2s")


def _images(seed, shape):
    return np.random.RandomState(seed).randint(0, 256, shape).astype(np.uint8)


def _make_run(run_dir, data_dir, **overrides):
    """A run directory as runner.run leaves it, with tiny networks trained for a few steps (fast): task models
    of the source, target and feature stages (each different), translators whose style code matters."""
    config = config_lib.DigitsConfig(data_dir=data_dir, run_dir=run_dir, **{**TINY, **overrides})
    trial = Trial(tasks.for_config(config), 0, run_dir)
    batches = trial.task.inputs("source", "train", batch_size=32, repeat=True)
    for index, stage in enumerate(("source", "target", "feature")):
        keras.utils.set_random_seed(index)
        net = trial.task.network()
        model = TaskStage(net)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        model.fit(batches, epochs=1, steps_per_epoch=3, verbose=0, shuffle=False)
        files.save_weights(net, trial.weights(stage))
    keras.utils.set_random_seed(7)
    for generator in trial.task.generators():
        for layer in generator.layers:
            if isinstance(layer, digit_gan.StyleModulation):  # zero-initialised: make z change the image
                layer.set_weights([np.random.RandomState(1).normal(0, 0.5, w.shape) for w in layer.get_weights()])
        files.save_weights(generator, trial.weights("pixel", generator.name))
    with open(os.path.join(run_dir, "results.json"), "w") as handle:
        json.dump({"config": {k: list(v) if isinstance(v, tuple) else v
                              for k, v in dataclasses.asdict(config).items()}}, handle)
    return config, trial


@pytest.fixture(scope="module")
def run(embedded_data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    config, trial = _make_run(str(root / "run"), embedded_data_dir)
    messages = []
    exported = export.export_seed(trial, str(root / "export"), messages.append)
    return {"config": config, "trial": trial, "exported": exported, "root": root, "messages": messages}


def _saved_model_cli(directory):
    result = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir",
                             directory, "--all"], capture_output=True, text=True, timeout=300,
                            env=child_env())
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def _signature(listing, name):
    """The text saved_model_cli prints for one signature."""
    start = listing.index(f"signature_def['{name}']")
    end = listing.find("signature_def[", start + 1)
    return listing[start:end if end >= 0 else listing.index("The MetaGraph", start)]


def _model_config(export_dir):
    """models.config parsed as tensorflow_model_server parses --model_config_file: {name: base_path}."""
    with open(os.path.join(export_dir, "models.config")) as handle:
        config = text_format.Parse(handle.read(), model_server_config_pb2.ModelServerConfig())
    assert all(model.model_platform == "tensorflow" for model in config.model_config_list.config)
    return {model.name: model.base_path for model in config.model_config_list.config}


def test_tf_serving_layout(run):
    root = str(run["root"] / "export")
    assert sorted(os.listdir(root)) == ["classifier", "g_st", "g_ts", "models.config"]
    for model in ("classifier", "g_st", "g_ts"):
        assert os.listdir(os.path.join(root, model)) == ["1"]  # nothing half-written left beside it
        assert run["exported"][model] == os.path.join(root, model, "1")
        assert os.path.isfile(os.path.join(root, model, "1", "saved_model.pb"))
    assert "'feature' stage's classifier (through G_T->S" in run["messages"][0]
    # models.config: a ModelServerConfig naming each model with the absolute path of its directory
    assert _model_config(root) == {m: os.path.abspath(os.path.join(root, m)) for m in ("classifier", "g_st", "g_ts")}
    assert run["messages"][-1].startswith(f"wrote {os.path.join(root, 'models.config')}")


def test_each_version_names_its_classes_and_its_run(run):
    run_dir = os.path.realpath(run["config"].run_dir)
    for model, stage in (("classifier", "feature"), ("g_st", "pixel"), ("g_ts", "pixel")):
        assets = os.path.join(run["exported"][model], "assets")
        assert files.read_json(os.path.join(assets, "run.json")) == {
            "run_dir": run_dir, "task": "digits", "source": "uci", "target": "uci_m", "seed": 0, "stage": stage}
        assert os.path.exists(os.path.join(assets, "classes.txt")) == (model == "classifier")
    with open(os.path.join(run["exported"]["classifier"], "assets", "classes.txt")) as handle:
        assert handle.read().splitlines() == [str(digit) for digit in range(10)]
    loaded = tf.saved_model.load(run["exported"]["classifier"])  # assets are the SavedModel's, not loose files
    assert os.path.basename(loaded.classes_file.asset_path.numpy().decode()) == "classes.txt"
    names = loaded.signatures["classify"](images=tf.zeros([2, 32, 32, 3], tf.uint8))["class_names"].numpy()
    assert names.shape == (2, 10) and [name.decode() for name in names[1]] == list(registry.DIGIT_CLASSES)


@pytest.fixture(scope="module")
def listing(run):
    """saved_model_cli show --all of the exported classifier."""
    return _saved_model_cli(run["exported"]["classifier"])


def test_signatures_take_uint8_images_of_any_batch_and_size(run, listing):
    for name in ("predict", "classify", "serving_default"):
        text = _signature(listing, name)
        assert "inputs['images']" in text and "DT_UINT8" in text and "shape: (-1, -1, -1, -1)" in text
        probabilities = text[text.index("outputs['probabilities']"):]
        assert "DT_FLOAT" in probabilities.split("name:")[0] and "shape: (-1, 10)" in probabilities
        classes = text[text.index("outputs['classes']"):]
        assert "DT_INT64" in classes.split("name:")[0] and "shape: (-1)" in classes
        assert "tensorflow/serving/predict" in text
    for name in ("predict_encoded", "classify_encoded"):  # what TF Serving's REST API feeds {"b64": ...} to
        encoded = _signature(listing, name)
        assert "inputs['image_bytes']" in encoded and "DT_STRING" in encoded and "shape: (-1)" in encoded
        assert "outputs['class_names']" in encoded and "outputs['probabilities']" in encoded
    for model in ("g_st", "g_ts"):  # the same, read in this process (saved_model_cli takes ~10 s to start)
        signatures = tf.saved_model.load(run["exported"][model]).signatures
        assert sorted(signatures) == ["serving_default", "translate", "translate_encoded"]
        function = signatures["translate"]
        (images,) = function.structured_input_signature[1].values()
        assert images.dtype == tf.uint8 and images.shape.as_list() == [None, None, None, None]
        translated = function.structured_outputs["translated"]
        assert translated.dtype == tf.uint8 and translated.shape.as_list() == [None, 32, 32, 3]


def test_the_classification_signature_is_tf_servings_classify_api(run, listing):
    """tensorflow_serving's classification_signature_def: method tensorflow/serving/classify, one DT_STRING input
    `inputs` (serialized tf.Examples), `classes` DT_STRING and `scores` DT_FLOAT, both [batch, classes]. The
    fingerprint, which hashes the signatures, is the one of the rewritten saved_model.pb."""
    text = _signature(listing, "classification")
    assert "Method name is: tensorflow/serving/classify" in text
    assert text.count("inputs['") == 1 and text.count("outputs['") == 2
    inputs = text[text.index("inputs['inputs']"):]
    assert "DT_STRING" in inputs.split("name:")[0] and "shape: (-1)" in inputs.split("name:")[0]
    for output, dtype in (("classes", "DT_STRING"), ("scores", "DT_FLOAT")):
        block = text[text.index(f"outputs['{output}']"):].split("name:")[0]
        assert dtype in block and "shape: (-1, 10)" in block
    assert listing.count("Method name is: tensorflow/serving/classify") == 1  # the others stay Predict
    from tensorflow.core.protobuf import fingerprint_pb2
    from tensorflow.python.saved_model.pywrap_saved_model import fingerprinting
    directory = run["exported"]["classifier"]
    fresh = fingerprint_pb2.FingerprintDef.FromString(fingerprinting.CreateFingerprintDef(directory))
    assert tf.saved_model.experimental.read_fingerprint(directory).signature_def_hash == fresh.signature_def_hash


def test_classification_answers_the_class_names_and_their_probabilities(run):
    """tf.Examples whose "image" feature holds PNG files of different sizes: `classes` names every class for
    each image, `scores` are the probabilities classify gives each image alone."""
    signatures = tf.saved_model.load(run["exported"]["classifier"]).signatures
    images = [_images(k, shape) for k, shape in enumerate(((28, 28, 1), (40, 24, 3), (32, 32, 3)))]
    examples = [tf.train.Example(features=tf.train.Features(feature={"image": tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[tf.io.encode_png(image).numpy()]))})).SerializeToString()
        for image in images]
    answer = signatures["classification"](inputs=tf.constant(examples))
    assert sorted(answer) == ["classes", "scores"]
    assert [[name.decode() for name in row] for row in answer["classes"].numpy()] == [list(registry.DIGIT_CLASSES)] * 3
    for k, image in enumerate(images):
        alone = signatures["predict"](images=tf.constant(image[None]))["probabilities"].numpy()[0]
        np.testing.assert_allclose(answer["scores"].numpy()[k], alone, atol=1e-6)


@pytest.mark.parametrize("shape", [(3, 28, 28, 1), (5, 32, 32, 3), (1, 40, 24, 3)])
def test_the_classifier_answers_as_the_keras_networks(run, shape):
    trial = run["trial"]
    images = _images(sum(shape), shape)
    loaded = tf.saved_model.load(run["exported"]["classifier"])
    answer = loaded.signatures["classify"](images=tf.constant(images))
    # --pixel_direction=t2s (default): f_T of the feature stage reads G_T->S of the target image
    x = pipeline.from_uint8(tf.constant(images), 32, 3)
    g_ts = trial.generators()[1]
    expected = tf.nn.softmax(trial.task.network(trial.weights("feature"))(g_ts(x, training=False))).numpy()
    assert answer["probabilities"].shape == (shape[0], 10)
    np.testing.assert_allclose(answer["probabilities"].numpy(), expected, atol=1e-5)
    np.testing.assert_array_equal(answer["classes"].numpy(), expected.argmax(-1))
    default = loaded.signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_array_equal(default["probabilities"].numpy(), answer["probabilities"].numpy())
    other = tf.nn.softmax(trial.task.network(trial.weights("target"))(g_ts(x, training=False))).numpy()
    assert np.abs(other - expected).max() > 1e-3  # so the check above tells the stages apart


def test_image_files_get_the_answer_their_pixels_get(run):
    """classify_encoded on PNG files (grey, colour) and a JPEG: the answer classify gives on the decoded pixels
    as a client sends them (a grey image as one channel)."""
    function = tf.saved_model.load(run["exported"]["classifier"]).signatures
    for images, encode in ((_images(1, (3, 28, 28, 1)), tf.io.encode_png),
                           (_images(2, (2, 40, 24, 3)), tf.io.encode_png),
                           (_images(3, (2, 32, 32, 3)), tf.io.encode_jpeg)):
        data = tf.stack([encode(image) for image in images])
        pixels = tf.stack([tf.io.decode_image(d, expand_animations=False) for d in data])  # JPEG is lossy
        answer = function["classify_encoded"](image_bytes=data)
        expected = function["classify"](images=pixels)
        np.testing.assert_allclose(answer["probabilities"].numpy(), expected["probabilities"].numpy(), atol=1e-6)
        np.testing.assert_array_equal(answer["classes"].numpy(), expected["classes"].numpy())


def test_a_batch_of_files_of_different_sizes_gets_each_files_answer(run):
    """Three PNGs of different sides and channel counts in one classify_encoded (and translate_encoded) batch:
    each is decoded and resized alone, so each gets the answer it gets alone."""
    shapes = ((28, 28, 1), (40, 24, 3), (17, 53, 3))
    data = tf.stack([tf.io.encode_png(_images(k, shape)) for k, shape in enumerate(shapes)])
    for model, signature, output in (("classifier", "classify_encoded", "probabilities"),
                                     ("g_ts", "translate_encoded", "translated")):
        function = tf.saved_model.load(run["exported"][model]).signatures[signature]
        batch = function(image_bytes=data)[output].numpy()
        assert batch.shape[0] == 3
        for k in range(3):
            alone = function(image_bytes=data[k:k + 1])[output].numpy()[0]
            np.testing.assert_allclose(batch[k], alone, atol=1e-6 if output == "probabilities" else 1)


def test_from_uint8_traces_on_one_image_of_known_channels():
    """One RGB image whose channels are known when traced (a decoded file): the graph's shape is right."""
    for channels in (1, 3):
        function = tf.function(lambda image, c=channels: pipeline.from_uint8(image, 32, c),
                               input_signature=[tf.TensorSpec([None, None, 3], tf.uint8)])
        image = _images(0, (20, 28, 3))
        expected = pipeline.from_uint8(tf.constant(image), 32, channels).numpy()  # eager: one branch run
        np.testing.assert_allclose(function(image).numpy(), expected, atol=1e-6)


def test_the_translators_answer_as_the_keras_networks(run):
    trial = run["trial"]
    images = _images(3, (4, 28, 28, 1))
    x = pipeline.from_uint8(tf.constant(images), 32, 3)
    g_st, g_ts = trial.generators()
    answer = tf.saved_model.load(run["exported"]["g_ts"]).signatures["translate"](images=tf.constant(images))
    expected = pipeline.to_uint8(g_ts(x, training=False)).numpy()
    assert answer["translated"].dtype == tf.uint8 and answer["translated"].shape == (4, 32, 32, 3)
    assert np.abs(answer["translated"].numpy().astype(int) - expected).max() <= 1  # float rounding at .5

    # G_S->T draws its style code inside, a fresh one per call from the random state the model carries: given
    # that state, the Keras network draws the same codes and paints the same images.
    loaded = tf.saved_model.load(run["exported"]["g_st"])
    (state,) = [variable.numpy() for variable in loaded.style_states]
    first, second = (loaded.signatures["translate"](images=tf.constant(images))["translated"].numpy()
                     for _ in range(2))
    assert np.abs(first.astype(int) - second).max() > 10
    (style,) = [layer for layer in g_st.layers if isinstance(layer, digit_gan.StyleCode)]
    style.seed.state.assign(state)
    assert np.abs(first.astype(int) - pipeline.to_uint8(g_st(x, training=False)).numpy()).max() <= 1


def test_s2t_classifier_reads_target_images_as_they_are(run, tmp_path):
    run_dir = str(tmp_path / "run")
    shutil.copytree(run["config"].run_dir, run_dir)
    config = dataclasses.replace(run["config"], run_dir=run_dir, pixel_direction="s2t")
    trial = Trial(tasks.for_config(config), 0, run_dir)
    os.remove(trial.weights("feature"))  # a run whose feature stage has not finished: f_T of the target stage
    messages = []
    exported = export.export_seed(trial, str(tmp_path / "export"), messages.append)
    assert "'target' stage's classifier to" in messages[0]
    images = _images(0, (2, 32, 32, 3))
    answer = tf.saved_model.load(exported["classifier"]).signatures["classify"](images=tf.constant(images))
    net = trial.task.network(trial.weights("target"))
    expected = tf.nn.softmax(net(pipeline.from_uint8(tf.constant(images), 32, 3))).numpy()
    np.testing.assert_allclose(answer["probabilities"].numpy(), expected, atol=1e-5)


def _small_module():
    net = lenet.LeNet(10)
    net.build((None, 32, 32, 3))
    return export.Classifier(net, 32, 3, registry.DIGIT_CLASSES)


def test_each_export_takes_the_next_version(tmp_path):
    module = _small_module()
    first = export.save(module, str(tmp_path), "classifier")
    second = export.save(module, str(tmp_path), "classifier")
    assert (os.path.basename(first), os.path.basename(second)) == ("1", "2")
    # versions TF Serving would see are integers; anything else is ignored when numbering
    for name in ("7", "notes", ".partial-old"):
        os.makedirs(os.path.join(str(tmp_path), "classifier", name))
    assert export.versions(str(tmp_path / "classifier")) == [1, 2, 7]
    assert os.path.basename(export.save(module, str(tmp_path), "classifier")) == "8"


def test_a_failed_export_leaves_no_version(tmp_path, monkeypatch):
    module = _small_module()
    export.save(module, str(tmp_path), "classifier")
    real_save = tf.saved_model.save

    def crash(obj, directory, **kwargs):
        real_save(obj, directory, **kwargs)
        os.remove(os.path.join(directory, "saved_model.pb"))  # half written
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        export.save(module, str(tmp_path), "classifier")
    assert os.listdir(str(tmp_path / "classifier")) == ["1"]


def test_a_version_taken_meanwhile_is_never_overwritten(tmp_path, monkeypatch):
    module = _small_module()
    taken = export.save(module, str(tmp_path), "classifier")
    marker = os.path.join(taken, "marker")
    open(marker, "w").close()
    real_versions, calls = export.versions, []

    def stale(model_dir):  # the first look misses version 1, as if another export wrote it meanwhile
        calls.append(model_dir)
        return [] if len(calls) == 1 else real_versions(model_dir)

    monkeypatch.setattr(export, "versions", stale)
    assert os.path.basename(export.save(module, str(tmp_path), "classifier")) == "2"
    assert os.path.exists(marker) and len(calls) == 2


def test_export_tool_exports_an_existing_run(run, tmp_path, capsys):
    """The tool's main called from Python exports, and leaves its caller's SIGINT and SIGTERM handlers as they
    were (the command, once exported, ignores both while it exits: that is its entry points')."""
    import signal
    run_dir = run["config"].run_dir
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    assert export_tool.main([f"--run_dir={run_dir}", "--seed=0", f"--export_dir={tmp_path}"]) == 0
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers
    printed = json.loads(capsys.readouterr().out)
    assert printed == {m: os.path.join(str(tmp_path), m, "1") for m in ("classifier", "g_st", "g_ts")}

    assert export_tool.main([f"--run_dir={run_dir}", "--seed=3", f"--export_dir={tmp_path}"]) == 2
    assert "--seed=3" in capsys.readouterr().err
    assert export_tool.main([f"--run_dir={tmp_path / 'nothing'}", f"--export_dir={tmp_path}"]) == 2
    assert "results.json does not exist" in capsys.readouterr().err
    assert sorted(os.listdir(str(tmp_path / "classifier"))) == ["1"]


def test_a_t2s_classifier_without_its_translator_is_refused(run, tmp_path, capsys):
    run_dir = str(tmp_path / "run")
    shutil.copytree(run["config"].run_dir, run_dir)
    os.remove(os.path.join(run_dir, "seed_0", "pixel", "g_ts.weights.h5"))
    assert export_tool.main([f"--run_dir={run_dir}", f"--export_dir={tmp_path / 'export'}"]) == 2
    error = capsys.readouterr().err
    assert "--pixel_direction=t2s" in error and "g_ts.weights.h5 is missing" in error
    assert not os.path.exists(str(tmp_path / "export"))


def test_another_runs_models_are_refused_under_their_taken_names(run, tmp_path, capsys):
    export_dir = str(tmp_path / "export")
    shutil.copytree(str(run["root"] / "export"), export_dir)  # version 1 of each model, from the fixture's run
    other = str(tmp_path / "other_run")
    shutil.copytree(run["config"].run_dir, other)  # another run: same task, its own directory
    assert export_tool.main([f"--run_dir={other}", f"--export_dir={export_dir}"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: --export_dir={export_dir}: model 'classifier' (and 'g_st', 'g_ts') already "
                            f"serves another run (version 1: digits uci -> uci_m from "
                            f"{os.path.realpath(run['config'].run_dir)}); this run (digits uci -> uci_m from "
                            f"{os.path.realpath(other)}) would silently become version 2: pass --model_prefix=")
    assert error.count("\n") == 1
    assert sorted(os.listdir(export_dir)) == ["classifier", "g_st", "g_ts", "models.config"]  # nothing written
    assert all(os.listdir(os.path.join(export_dir, m)) == ["1"] for m in ("classifier", "g_st", "g_ts"))
    assert export_tool.main([f"--run_dir={other}", f"--export_dir={export_dir}", "--model_prefix=a/b"]) == 2
    assert "--model_prefix='a/b'" in capsys.readouterr().err

    # Under new names it goes; exported again, the same run becomes version 2 and version 1 stays as it was.
    # (Only the other run's source model, one SavedModel per export, to keep the test fast.)
    for stage in ("target", "feature", "pixel"):
        shutil.rmtree(os.path.join(other, "seed_0", stage))
    versions = []
    for _ in range(2):
        assert export_tool.main([f"--run_dir={other}", f"--export_dir={export_dir}", "--model_prefix=other_"]) == 0
        versions.append(json.loads(capsys.readouterr().out)["other_classifier"])
        if len(versions) == 1:
            with open(os.path.join(versions[0], "saved_model.pb"), "rb") as handle:
                first = handle.read()
    assert versions == [os.path.join(export_dir, "other_classifier", v) for v in ("1", "2")]
    with open(os.path.join(versions[0], "saved_model.pb"), "rb") as handle:
        assert handle.read() == first
    assert export.export_layout.recorded_run(versions[1])["run_dir"] == os.path.realpath(other)
    assert export.export_layout.recorded_run(versions[1])["stage"] == "source"
    assert _model_config(export_dir) == {m: os.path.join(os.path.abspath(export_dir), m)
                                         for m in ("classifier", "g_st", "g_ts", "other_classifier")}
