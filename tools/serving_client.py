"""Send one image to a TF Serving server running an exported model (tools/export.py) over gRPC.

    tensorflow_model_server --port=8500 --model_config_file=$PWD/export/models.config
    python tools/serving_client.py --image=digit.png --model=classifier --host=localhost --port=8500
    python tools/serving_client.py --image=digit.png --model=g_ts --output=translated.png
    python tools/serving_client.py --image=street.png --model=segmenter --output=label_map.png

The image (PNG, JPEG, ...; grey or colour, any side) goes as it is, uint8 [1, height, width, channels]: the
exported models resize and convert it themselves. A classifier's answer is printed (class id, its name,
probabilities); a translator's image is written to --output (default translated.png); a segmenter's label map
(train ids, one grey PNG pixel per image pixel) is written to --output (default label_map.png) and the class
names and the share of each class printed. A segmenter is asked for its label map and class names only
(output_filter), 1 byte a pixel, unless --probabilities asks for its 4 x classes bytes a pixel too. When no
server answers, the error names the commands that start one for --model from --export_dir.
"""

import argparse
import json
import os
import sys

import numpy as np

if __package__ in (None, ""):  # run as `python tools/serving_client.py`: make the repository importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from cycada_tf.train import quiet_tensorflow as quiet  # noqa: E402

# Each exported model's signature (cycada_tf/serving/export.py; all also answer as serving_default). A model exported
# with tools/export.py --model_prefix (roads_segmenter) is known by how its name ends.
SIGNATURES = {"classifier": "classify", "segmenter": "segment", "g_st": "translate", "g_ts": "translate"}
INPUT = "images"
PROBABILITIES, LABEL_MAP, CLASS_NAMES = "probabilities", "label_map", "class_names"
# What a segmenter is asked for unless --probabilities: a 2048x1024 frame's answer is then 2 MB, under gRPC's
# 4 MB default, where its probabilities alone would be 160 MB (19 Cityscapes classes, float32).
SEGMENTER_OUTPUTS = (LABEL_MAP, CLASS_NAMES)
MAX_RECEIVE_MB = 64  # the client's gRPC receive limit (gRPC's own default: 4)
SERVING_IMAGE, IMAGE_GRPC_PORT, IMAGE_REST_PORT = "tensorflow/serving", 8500, 8501  # the docker image's ports


def kind(model):
    """The exported model `model` (a name on the server) is: classifier, segmenter, g_st or g_ts (else None)."""
    return next((name for name in SIGNATURES if model.endswith(name)), None)


def read_image(path):
    """uint8 (height, width, 1 or 3) array of an image file."""
    from PIL import Image
    with Image.open(path) as picture:
        picture = picture.convert("L" if picture.mode in ("1", "L", "I;16", "I", "F") else "RGB")
        image = np.asarray(picture, dtype=np.uint8)
    return image[..., None] if image.ndim == 2 else image


def build_request(images, model, signature=None, version=None, output_filter=()):
    """A PredictRequest for `model` with `images` (uint8 [batch, height, width, channels]) as its input, asking
    for the outputs in `output_filter` only (empty: all)."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be uint8 [batch, height, width, 1 or 3], got {images.dtype} "
                         f"{list(images.shape)}")
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature or SIGNATURES.get(kind(model), "serving_default")
    if version is not None:
        request.model_spec.version.value = int(version)
    request.inputs[INPUT].CopyFrom(tf.make_tensor_proto(images, dtype=tf.uint8))
    request.output_filter.extend(output_filter)
    return request


def outputs(response):
    """{output name: numpy array} of a PredictResponse."""
    import tensorflow as tf
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}


def names(answer):
    """The class names a classifier or segmenter answered (CLASS_NAMES, the same for every image), or None
    (a model exported before they were)."""
    if CLASS_NAMES not in answer:
        return None
    return [name.decode() for name in answer[CLASS_NAMES][0]]


def predict(request, host, port, timeout, max_receive_mb=MAX_RECEIVE_MB):
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc
    options = [("grpc.max_receive_message_length", int(max_receive_mb * 2 ** 20))]
    with grpc.insecure_channel(f"{host}:{port}", options=options) as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=timeout)


def start_command(model, export_dir, port):
    """The commands that serve `model` from <export_dir>/<model>/ with gRPC on `port` (REST on port + 1): the
    server binary, or the tensorflow/serving docker image (which serves /models/$MODEL_NAME)."""
    base = os.path.abspath(os.path.join(export_dir, model))
    return (f"tensorflow_model_server --port={port} --rest_api_port={port + 1} --model_name={model} "
            f"--model_base_path={base}, or docker run --rm -p {port}:{IMAGE_GRPC_PORT} -p {port + 1}:"
            f"{IMAGE_REST_PORT} -v {base}:/models/{model}:ro -e MODEL_NAME={model} {SERVING_IMAGE}")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="serving_client", description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="image file to send")
    parser.add_argument("--model", default="classifier", help="model name on the server: "
                                                              + ", ".join(SIGNATURES))
    parser.add_argument("--signature", help="signature name (default: the model's, see tools/export.py)")
    parser.add_argument("--version", type=int, help="model version (default: the server's latest)")
    parser.add_argument("--host", default="localhost", help="TF Serving host")
    parser.add_argument("--port", type=int, default=8500, help="TF Serving gRPC port")
    parser.add_argument("--export_dir", default="export",
                        help="where tools/export.py wrote the model: named in how to start a server if none answers")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the answer")
    parser.add_argument("--output", help="where a translator's image (default translated.png) or a segmenter's "
                                         "label map (default label_map.png) goes")
    parser.add_argument("--probabilities", help="a segmenter's per-pixel class probabilities are asked for too "
                                                "(float32, 4 bytes x classes a pixel) and saved to this .npy file")
    parser.add_argument("--max_receive_mb", type=float, default=MAX_RECEIVE_MB,
                        help="the largest answer the client takes, in MiB (gRPC's default is 4)")
    quiet.add_verbosity_flag(parser)
    return parser.parse_args(argv)


def _error(message, status):
    print(f"error: {message}", file=sys.stderr)
    return status


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not os.path.isfile(args.image):
        return _error(f"--image={args.image} is not a file", 2)
    if args.max_receive_mb <= 0:
        return _error(f"--max_receive_mb={args.max_receive_mb:g} must be positive", 2)
    segmenter = kind(args.model) == "segmenter"
    if args.probabilities and not segmenter:
        return _error(f"--probabilities is a segmenter's (--model={args.model} answers all its outputs anyway)", 2)
        print(f"error: --image={args.image} is not a file", file=sys.stderr)
        return 2
    quiet.import_tensorflow(args.verbosity is not None)  # tensorflow_serving's protos import it: start-up lines
    import grpc
    wanted = (SEGMENTER_OUTPUTS + ((PROBABILITIES,) if args.probabilities else ())) if segmenter else ()
    request = build_request(read_image(args.image)[None], args.model, args.signature, args.version, wanted)
    try:
        answer = outputs(predict(request, args.host, args.port, args.timeout, args.max_receive_mb))
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in (error.details() or ""):
            return _error(f"the answer of {args.host}:{args.port} is larger than --max_receive_mb="
                          f"{args.max_receive_mb:g} ({error.details()}): raise --max_receive_mb"
                          + (", or leave out --probabilities" if args.probabilities else ""), 1)
        if error.code() == grpc.StatusCode.UNAVAILABLE:
            return _error(f"no TF Serving answers at {args.host}:{args.port} ({error.details()}); start one with "
                          + start_command(args.model, args.export_dir, args.port), 1)
        return _error(f"{args.host}:{args.port} answered {error.code().name}: {error.details()}", 1)
    print(show(answer, args))
    return 0


def show(answer, args):
    """Write a translator's image or a segmenter's label map (and probabilities) where `args` say; returns the
    line to print."""
    from PIL import Image
    class_names = names(answer)
    if "translated" in answer:
        image = answer["translated"][0]
        output = args.output or "translated.png"
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(output)
        return f"wrote {output}"
    if LABEL_MAP in answer:
        label_map = answer[LABEL_MAP][0].astype(np.uint8)
        output = args.output or "label_map.png"
        Image.fromarray(label_map).save(output)
        ids, counts = np.unique(label_map, return_counts=True)
        printed = {"label_map": output, "class_names": class_names,
                   "class_shares": {class_names[i] if class_names and i < len(class_names) else str(i):
                                    round(float(n) / label_map.size, 4) for i, n in zip(ids, counts)}}
        if args.probabilities:
            printed["probabilities"] = args.probabilities + ("" if args.probabilities.endswith(".npy") else ".npy")
            np.save(printed["probabilities"], answer[PROBABILITIES][0])
        return json.dumps(printed)
    printed = {name: value.tolist() for name, value in answer.items() if name != CLASS_NAMES}
    if class_names and "classes" in answer:
        printed["names"] = [class_names[i] for i in answer["classes"]]
    return json.dumps(printed)


if __name__ == "__main__":
    sys.exit(main())
