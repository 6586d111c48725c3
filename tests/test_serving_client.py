"""tools/serving_client.py: the PredictRequest it builds from an image file, and a gRPC round trip to a stand-in
for TF Serving (an in-process PredictionService that runs the exported SavedModel's named signature, answering
the outputs the request's output_filter names): class names printed, a 2048x1024 label map under gRPC's 4 MB
default, the one line that names --max_receive_mb when an answer is over the client's limit, and the one that
says how to start a server when none answers. Then REST-shaped `:classify` and `:predict` bodies, answered by the
exported classifier loaded without the project (tests/tf_serving_rest.py), as the network answers."""

import base64
import json
import os
import socket
import subprocess
import sys
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from cycada_tf.serving import export
from cycada_tf.data import pipeline, registry
from cycada_tf.data.sources import cityscapes
from cycada_tf.models import digit_gan, lenet, small_fcn
from tools import serving_client

GRPC_DEFAULT_MAX = 4 * 2 ** 20  # gRPC's default limit on a message received, 4 MiB


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Exported classifier, G_T->S and a segmenter with Cityscapes' 19 classes (untrained: only the plumbing
    is under test here)."""
    root = str(tmp_path_factory.mktemp("serving"))
    net = lenet.LeNet(10)
    net.build((None, 32, 32, 3))
    g_ts = digit_gan.generator(32, 3, 3, 4, name="g_ts")
    segmenter = small_fcn.small_fcn(len(cityscapes.CLASSES), width=4)
    classifier = export.Classifier(net, 32, 3, registry.DIGIT_CLASSES)
    return {"classifier": (net, export.save(classifier, root, "classifier")),
            "g_ts": (g_ts, export.save(export.Translator(g_ts, 32, 3, "g_ts"), root, "g_ts")),
            "segmenter": (segmenter, export.save(export.Segmenter(segmenter, cityscapes.CLASSES), root, "segmenter"))}


@pytest.fixture
def grey_digit(tmp_path):
    image = np.random.RandomState(0).randint(0, 256, (28, 28)).astype(np.uint8)
    path = str(tmp_path / "digit.png")
    Image.fromarray(image).save(path)
    return path, image


def test_request_from_an_image_file(grey_digit, tmp_path):
    path, image = grey_digit
    request = serving_client.build_request(serving_client.read_image(path)[None], "classifier", version=3)
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())  # what goes on the wire
    assert request.model_spec.name == "classifier" and request.model_spec.signature_name == "classify"
    assert request.model_spec.version.value == 3
    assert list(request.inputs) == ["images"]
    tensor = request.inputs["images"]
    assert tensor.dtype == tf.uint8.as_datatype_enum
    assert [d.size for d in tensor.tensor_shape.dim] == [1, 28, 28, 1]
    np.testing.assert_array_equal(tf.make_ndarray(tensor)[0, ..., 0], image)

    colour = str(tmp_path / "colour.png")
    Image.fromarray(np.zeros((20, 24, 4), np.uint8), "RGBA").save(colour)
    request = serving_client.build_request(serving_client.read_image(colour)[None], "g_st")
    assert request.model_spec.signature_name == "translate" and not request.model_spec.HasField("version")
    assert [d.size for d in request.inputs["images"].tensor_shape.dim] == [1, 20, 24, 3]
    assert list(request.output_filter) == []  # everything

    # a --model_prefix'ed segmenter is known by its name's end; the outputs asked for go on the wire
    request = serving_client.build_request(serving_client.read_image(colour)[None], "roads_segmenter",
                                           output_filter=serving_client.SEGMENTER_OUTPUTS)
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    assert request.model_spec.signature_name == "segment"
    assert list(request.output_filter) == ["label_map", "class_names"]


@pytest.mark.parametrize("images", [np.zeros((28, 28, 1), np.uint8), np.zeros((1, 8, 8, 3), np.float32),
                                    np.zeros((1, 8, 8, 2), np.uint8)])
def test_requests_of_other_arrays_are_refused(images):
    with pytest.raises(ValueError, match="uint8 \\[batch, height, width, 1 or 3\\]"):
        serving_client.build_request(images, "classifier")


class StandIn(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Answers Predict as TF Serving does: the named model's named signature on the request's tensors, the
    outputs named in output_filter only (all if none). Keeps the last response it sent."""

    def __init__(self, directories):
        self.loaded = {name: tf.saved_model.load(directory) for name, directory in directories.items()}
        self.last = None

    def Predict(self, request, context):  # noqa: N802 - the gRPC method's name
        function = self.loaded[request.model_spec.name].signatures[request.model_spec.signature_name]
        unknown = set(request.output_filter) - set(function.structured_outputs)
        if unknown:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"output tensor alias not found: {sorted(unknown)}")
        answer = function(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for name, value in answer.items():
            if not request.output_filter or name in request.output_filter:
                response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
        self.last = response
        return response


@pytest.fixture(scope="module")
def stand_in(models):
    return StandIn({name: directory for name, (_, directory) in models.items()})


@pytest.fixture
def server(stand_in):
    # tensorflow_model_server raises gRPC's 4 MB limits to 2 GB on its side (server.cc: SetMaxMessageSize)
    limits = [("grpc.max_receive_message_length", 2 ** 31 - 1), ("grpc.max_send_message_length", 2 ** 31 - 1)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=limits)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(stand_in, server)
    port = server.add_insecure_port("localhost:0")
    server.start()
    yield port
    server.stop(None)


def test_round_trip_over_grpc(models, server, grey_digit, tmp_path, capsys):
    path, image = grey_digit
    x = pipeline.from_uint8(tf.constant(image[None, ..., None]), 32, 3)

    assert serving_client.main([f"--image={path}", f"--port={server}", "--model=classifier"]) == 0
    answer = json.loads(capsys.readouterr().out)
    expected = tf.nn.softmax(models["classifier"][0](x)).numpy()
    np.testing.assert_allclose(answer["probabilities"], expected, atol=1e-5)
    assert answer["classes"] == [int(expected.argmax())]
    assert answer["names"] == [str(int(expected.argmax()))]  # digits are named '0'-'9'

    output = str(tmp_path / "translated.png")
    assert serving_client.main([f"--image={path}", f"--port={server}", "--model=g_ts", f"--output={output}"]) == 0
    translated = np.asarray(Image.open(output))
    expected = pipeline.to_uint8(models["g_ts"][0](x)).numpy()[0]
    assert translated.shape == (32, 32, 3) and np.abs(translated.astype(int) - expected).max() <= 1
    assert capsys.readouterr().out == f"wrote {output}\n"

    output, saved = str(tmp_path / "labels.png"), str(tmp_path / "probabilities.npy")
    assert serving_client.main([f"--image={path}", f"--port={server}", "--model=segmenter", f"--output={output}",
                                f"--probabilities={saved}"]) == 0
    answer = json.loads(capsys.readouterr().out)
    label_map = np.asarray(Image.open(output))
    logits = models["segmenter"][0](pipeline.from_uint8(tf.constant(image[None, ..., None]), None, 3)).numpy()[0]
    assert label_map.shape == image.shape and label_map.dtype == np.uint8  # one label per pixel of the image
    assert (label_map == logits.argmax(-1)).mean() > 0.99  # near-ties aside
    np.testing.assert_allclose(np.load(saved), tf.nn.softmax(logits).numpy(), atol=1e-5)
    assert answer["label_map"] == output and answer["probabilities"] == saved
    # the class names the model carries, printed, and each class's share by name
    assert answer["class_names"] == list(cityscapes.CLASSES) and len(answer["class_names"]) == 19
    ids, counts = np.unique(label_map, return_counts=True)
    assert answer["class_shares"] == {cityscapes.CLASSES[i]: round(n / label_map.size, 4) for i, n in zip(ids, counts)}


def _png(image, path):
    Image.fromarray(image).save(path)
    return path


def test_a_2048x1024_label_map_answer_fits_grpc_default(models, stand_in, server, tmp_path, capsys):
    """A Cityscapes-sized frame (2048x1024, 19 classes): asked for its label map and class names only, the
    answer the exported segmenter gives is under gRPC's 4 MB default; its probabilities would not be."""
    image = np.random.RandomState(1).randint(0, 256, (1024, 2048, 3)).astype(np.uint8)
    path = _png(image, str(tmp_path / "frame.png"))
    output = str(tmp_path / "labels.png")
    assert serving_client.main([f"--image={path}", f"--port={server}", "--model=segmenter", f"--output={output}",
                                f"--max_receive_mb={GRPC_DEFAULT_MAX / 2 ** 20}"]) == 0
    response = stand_in.last
    assert sorted(response.outputs) == ["class_names", "label_map"]
    assert response.outputs["label_map"].dtype == tf.uint8.as_datatype_enum
    size = len(response.SerializeToString())  # what went over the wire
    assert 2048 * 1024 < size < GRPC_DEFAULT_MAX, size
    assert np.asarray(Image.open(output)).shape == (1024, 2048)
    assert json.loads(capsys.readouterr().out)["class_names"] == list(cityscapes.CLASSES)


def test_an_answer_over_the_limit_names_the_flag(server, tmp_path, capsys):
    """The issue's 1024x512 frame with its probabilities (40 MB at 19 classes) against gRPC's 4 MB: one line
    naming --max_receive_mb."""
    image = np.random.RandomState(2).randint(0, 256, (512, 1024, 3)).astype(np.uint8)
    path = _png(image, str(tmp_path / "frame.png"))
    assert serving_client.main([f"--image={path}", f"--port={server}", "--model=segmenter", "--max_receive_mb=4",
                                f"--output={tmp_path / 'labels.png'}",
                                f"--probabilities={tmp_path / 'p.npy'}"]) == 1
    error = capsys.readouterr().err
    assert error.startswith("error: the answer of localhost:") and error.count("\n") == 1
    assert "raise --max_receive_mb" in error and "leave out --probabilities" in error
    assert not (tmp_path / "p.npy").exists()
    assert serving_client.main([f"--image={path}", "--model=classifier", "--probabilities=p.npy"]) == 2
    assert "--probabilities is a segmenter's" in capsys.readouterr().err


def test_the_segmenter_takes_encoded_images_for_rest(models):
    """segment_encoded (what TF Serving's REST API calls with {"b64": ...}) takes PNG bytes and answers the
    label map and class names only; the label map is the one the uint8 signature gives."""
    images = np.random.RandomState(3).randint(0, 256, (2, 24, 40, 3)).astype(np.uint8)
    files = [tf.io.encode_png(image) for image in images]
    loaded = tf.saved_model.load(models["segmenter"][1])
    answer = loaded.signatures["segment_encoded"](image_bytes=tf.stack(files))
    assert sorted(answer) == ["class_names", "label_map"]
    expected = loaded.signatures["segment"](images=tf.constant(images))
    np.testing.assert_array_equal(answer["label_map"].numpy(), expected["label_map"].numpy())
    assert [name.decode() for name in answer["class_names"].numpy()[1]] == list(cityscapes.CLASSES)


def test_an_unreachable_server_is_one_clear_line(grey_digit, capsys):
    with socket.socket() as probe:  # a port nobody listens on once the probe is closed
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    assert serving_client.main([f"--image={grey_digit[0]}", f"--port={port}", "--timeout=2", "--model=roads_segmenter",
                                "--export_dir=exported"]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: no TF Serving answers at localhost:{port} (") and error.count("\n") == 1
    base = os.path.abspath(os.path.join("exported", "roads_segmenter"))  # the commands that start one, with it
    assert (f"start one with tensorflow_model_server --port={port} --rest_api_port={port + 1} "
            f"--model_name=roads_segmenter --model_base_path={base}, or docker run --rm -p {port}:8500 -p "
            f"{port + 1}:8501 -v {base}:/models/roads_segmenter:ro -e MODEL_NAME=roads_segmenter tensorflow/serving\n"
            ) in error
    assert serving_client.main(["--image=/no/such/file.png"]) == 2


def _rest(directory, verb, body, cwd):
    """tests/tf_serving_rest.py's JSON answer to `body`: a process where the project cannot be imported."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tf_serving_rest.py")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, script, directory, verb], input=json.dumps(body), cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_rest_classify_and_predict_answered_by_the_saved_model_alone(models, tmp_path):
    """The bodies TF Serving's REST API takes (docs/serving.md): :classify with tf.Examples whose "image" is a PNG
    (three sizes and channel counts in one request), :predict with the files (predict_encoded) and with uint8
    pixels (predict). Each image's answer is the network's on it alone; the Classify API refuses a Predict
    signature, as the server does."""
    net, directory = models["classifier"]
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    probe = subprocess.run([sys.executable, "-c", "import cycada_tf"], cwd=cwd, capture_output=True,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert probe.returncode != 0  # the stand-in's process cannot import the project
    images = [np.random.RandomState(k).randint(0, 256, shape).astype(np.uint8)
              for k, shape in enumerate(((28, 28, 1), (40, 24, 3), (17, 53, 3)))]
    expected = np.concatenate([tf.nn.softmax(net(pipeline.from_uint8(tf.constant(image[None]), 32, 3))).numpy()
                               for image in images])
    files = [{"b64": base64.b64encode(tf.io.encode_png(image).numpy()).decode()} for image in images]

    answer = _rest(directory, "classify", {"signature_name": "classification",
                                           "examples": [{"image": f} for f in files]}, cwd)
    assert [[label for label, _ in row] for row in answer["result"]] == [list(registry.DIGIT_CLASSES)] * 3
    np.testing.assert_allclose([[score for _, score in row] for row in answer["result"]], expected, atol=1e-5)

    answer = _rest(directory, "predict", {"signature_name": "predict_encoded",
                                          "instances": [{"image_bytes": f} for f in files]}, cwd)
    np.testing.assert_allclose([row["probabilities"] for row in answer["predictions"]], expected, atol=1e-5)
    assert [row["classes"] for row in answer["predictions"]] == expected.argmax(-1).tolist()
    assert answer["predictions"][0]["class_names"] == list(registry.DIGIT_CLASSES)

    answer = _rest(directory, "predict", {"signature_name": "predict", "instances": [images[0].tolist()]}, cwd)
    np.testing.assert_allclose(answer["predictions"][0]["probabilities"], expected[0], atol=1e-5)

    with pytest.raises(AssertionError, match="method_name to be tensorflow/serving/classify. Was: "
                                             "tensorflow/serving/predict"):
        _rest(directory, "classify", {"signature_name": "predict_encoded", "examples": [{"image": files[0]}]}, cwd)
