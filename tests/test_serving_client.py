"""tools/serving_client.py: the PredictRequest it builds from an image file, and a gRPC round trip to a stand-in
for TF Serving (an in-process PredictionService that runs the exported SavedModel's named signature), with the
class names the models carry printed."""

import json
import socket
from concurrent import futures

import grpc
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from cycada_tf import export
from cycada_tf.data import pipeline, registry
from cycada_tf.data.sources import cityscapes
from cycada_tf.models import digit_gan, lenet, small_fcn
from tools import serving_client


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
    # a --model_prefix'ed segmenter is known by its name's end
    request = serving_client.build_request(serving_client.read_image(colour)[None], "roads_segmenter")
    assert request.model_spec.signature_name == "segment"


@pytest.mark.parametrize("images", [np.zeros((28, 28, 1), np.uint8), np.zeros((1, 8, 8, 3), np.float32),
                                    np.zeros((1, 8, 8, 2), np.uint8)])
def test_requests_of_other_arrays_are_refused(images):
    with pytest.raises(ValueError, match="uint8 \\[batch, height, width, 1 or 3\\]"):
        serving_client.build_request(images, "classifier")


class StandIn(prediction_service_pb2_grpc.PredictionServiceServicer):
    """Answers Predict as TF Serving does: the named model's named signature on the request's tensors."""

    def __init__(self, directories):
        self.loaded = {name: tf.saved_model.load(directory) for name, directory in directories.items()}

    def Predict(self, request, context):  # noqa: N802 - the gRPC method's name
        function = self.loaded[request.model_spec.name].signatures[request.model_spec.signature_name]
        answer = function(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for name, value in answer.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
        return response


@pytest.fixture
def server(models):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        StandIn({name: directory for name, (_, directory) in models.items()}), server)
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

    output = str(tmp_path / "labels.png")
    assert serving_client.main([f"--image={path}", f"--port={server}", "--model=segmenter",
                                f"--output={output}"]) == 0
    answer = json.loads(capsys.readouterr().out)
    label_map = np.asarray(Image.open(output))
    logits = models["segmenter"][0](pipeline.from_uint8(tf.constant(image[None, ..., None]), None, 3)).numpy()[0]
    assert label_map.shape == image.shape and label_map.dtype == np.uint8  # one label per pixel of the image
    assert (label_map == logits.argmax(-1)).mean() > 0.99  # near-ties aside
    assert answer["label_map"] == output
    # the class names the model carries, printed, and each class's share by name
    assert answer["class_names"] == list(cityscapes.CLASSES) and len(answer["class_names"]) == 19
    ids, counts = np.unique(label_map, return_counts=True)
    assert answer["class_shares"] == {cityscapes.CLASSES[i]: round(n / label_map.size, 4) for i, n in zip(ids, counts)}


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
    assert serving_client.main([f"--image={grey_digit[0]}", f"--port={port}", "--timeout=2"]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"error: localhost:{port} answered ") and "\n" == error[-1] and error.count("\n") == 1
    assert serving_client.main(["--image=/no/such/file.png"]) == 2
