"""A stand-in for TF Serving's REST API on one exported SavedModel, importing nothing of this project: it loads
the model as the server does (tf.saved_model.load, the MetaGraphDef's SignatureDefs read from saved_model.pb),
turns a `:classify` or `:predict` JSON body into the ClassificationRequest or PredictRequest the server builds
from it (tensorflow_serving.apis; {"b64": ...} is bytes, a feature's value a bytes, int64 or float list),
refuses a Classify request on a signature whose method is not tensorflow/serving/classify (classifier.cc),
runs the signature, and answers the JSON the server writes ({"result": [[[label, score], ...], ...]} and
{"predictions": [...]}, tensorflow_serving/g3doc/api_rest.md).

    python tests/tf_serving_rest.py <version dir> classify|predict < body.json
"""

import base64
import json
import os
import sys

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import classification_pb2, model_pb2, predict_pb2

CLASSIFY_METHOD = "tensorflow/serving/classify"
DEFAULT_SIGNATURE = "serving_default"


def _value(value):
    """A JSON value as the REST API reads it: {"b64": ...} bytes, a string UTF-8 bytes, else itself."""
    if isinstance(value, dict):
        return base64.b64decode(value["b64"])
    return value.encode() if isinstance(value, str) else value


def _feature(value):
    values = [_value(v) for v in (value if isinstance(value, list) else [value])]
    if all(isinstance(v, bytes) for v in values):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
    if all(isinstance(v, int) for v in values):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=values))
    return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def classification_request(body, model):
    request = classification_pb2.ClassificationRequest(model_spec=model_pb2.ModelSpec(
        name=model, signature_name=body.get("signature_name", DEFAULT_SIGNATURE)))
    for example in body["examples"]:
        features = {name: _feature(value) for name, value in example.items()}
        request.input.example_list.examples.add().CopyFrom(tf.train.Example(
            features=tf.train.Features(feature=features)))
    return request


def predict_request(body, model, signature):
    """Row format ("instances"): one object of named inputs per instance, or the one input's value."""
    request = predict_pb2.PredictRequest(model_spec=model_pb2.ModelSpec(
        name=model, signature_name=body.get("signature_name", DEFAULT_SIGNATURE)))
    specs = signature.structured_input_signature[1]
    rows = [row if isinstance(row, dict) else {next(iter(specs)): row} for row in body["instances"]]
    for name, spec in specs.items():
        values = [_value(row[name]) for row in rows]
        array = np.array(values, dtype=object) if spec.dtype == tf.string else np.array(values)
        request.inputs[name].CopyFrom(tf.make_tensor_proto(array, dtype=spec.dtype))
    return request


def classify(loaded, signature_defs, request):
    """ClassificationResponse to `request`, as tensorflow_model_server's RunClassify gives it."""
    name = request.model_spec.signature_name
    method = signature_defs[name].method_name
    if method != CLASSIFY_METHOD:
        raise ValueError(f"Expected classification signature method_name to be {CLASSIFY_METHOD}. Was: {method}")
    (input_name,) = signature_defs[name].inputs
    examples = [example.SerializeToString() for example in request.input.example_list.examples]
    answer = loaded.signatures[name](**{input_name: tf.constant(examples)})
    classes, scores = answer["classes"].numpy(), answer["scores"].numpy()
    assert classes.ndim == scores.ndim == 2 and classes.shape == scores.shape == (len(examples), classes.shape[1])
    response = classification_pb2.ClassificationResponse(model_spec=request.model_spec)
    for labels, values in zip(classes, scores):
        row = response.result.classifications.add()
        for label, score in zip(labels, values):
            row.classes.add(label=label.decode(), score=float(score))
    return response


def predict(loaded, request):
    function = loaded.signatures[request.model_spec.signature_name]
    answer = function(**{name: tf.constant(tf.make_ndarray(proto)) for name, proto in request.inputs.items()})
    response = predict_pb2.PredictResponse(model_spec=request.model_spec)
    for name, value in answer.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
    return response


def _json(value):
    return value.decode() if isinstance(value, bytes) else value


def answer(version_dir, verb, body):
    """The JSON TF Serving answers `body` with on `verb` (classify, predict) of the model in `version_dir`."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(version_dir, "saved_model.pb"), "rb") as handle:
        proto.ParseFromString(handle.read())
    signature_defs = proto.meta_graphs[0].signature_def
    loaded = tf.saved_model.load(version_dir)
    model = os.path.basename(os.path.dirname(os.path.abspath(version_dir)))
    if verb == "classify":
        response = classify(loaded, signature_defs, classification_request(body, model))
        return {"result": [[[c.label, c.score] for c in row.classes] for row in response.result.classifications]}
    request = predict_request(body, model, loaded.signatures[body.get("signature_name", DEFAULT_SIGNATURE)])
    outputs = {name: tf.make_ndarray(proto) for name, proto in predict(loaded, request).outputs.items()}
    rows = len(next(iter(outputs.values())))
    return {"predictions": [{name: np.vectorize(_json, otypes=[object])(value[k]).tolist() if value.dtype == object
                             else value[k].tolist() for name, value in outputs.items()} for k in range(rows)]}


if __name__ == "__main__":
    print(json.dumps(answer(sys.argv[1], sys.argv[2], json.load(sys.stdin))))
