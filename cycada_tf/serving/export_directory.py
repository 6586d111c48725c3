"""The export directory as TF Serving reads it: <model>/<integer version>/ SavedModels, each version's record
of the run it came from (assets/run.json), the refusal of another run's model under a name already taken, the
TF Serving method of each signature, and models.config, the model_config_list that names every model for
`--model_config_file`."""

import os

from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.saved_model import fingerprinting_utils

from cycada_tf.train import atomic_files as files

MODEL_CONFIG = "models.config"  # <export_dir>/models.config, TF Serving's ModelServerConfig as a text proto
RUN_FILE = "run.json"  # asset of every version: the run, task, seed and stage it came from
# What makes two exports the same run (the other fields of run.json only describe it): a model name keeps the
# versions of one run, as TF Serving serves the latest version of a name whatever it is.
RUN_IDENTITY = ("run_dir", "task", "source", "target")
PREFIX_FLAG = "--model_prefix"  # tools/export.py's flag for new model names


def versions(model_dir):
    """The integer versions already exported under `model_dir` (what TF Serving would load), sorted."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(name) for name in os.listdir(model_dir) if name.isdigit())


def run_record(trial, stage):
    """run.json of a model exported from `stage` of `trial` (a cycada_tf.stages.trial.Trial)."""
    config = trial.config
    return {"run_dir": os.path.realpath(os.path.dirname(trial.dir)), "task": trial.task.name,
            "source": config.source, "target": config.target, "seed": trial.seed, "stage": stage}


def recorded_run(version_dir):
    """The run.json of an exported version, or None (a version exported before runs were recorded)."""
    return files.read_json(os.path.join(version_dir, "assets", RUN_FILE))


def _describe(record):
    return f"{record.get('task')} {record.get('source')} -> {record.get('target')} from {record.get('run_dir')}"


def check_names(export_dir, names, record):
    """Refuse (ValueError, one line) to export the run of `record` under any of `names` whose latest version
    in `export_dir` came from another run, or from an unrecorded one: it would silently become the version
    TF Serving serves."""
    taken = []
    for name in names:
        found = versions(os.path.join(export_dir, name))
        if found:
            previous = recorded_run(os.path.join(export_dir, name, str(found[-1])))
            if previous is None or any(previous.get(key) != record[key] for key in RUN_IDENTITY):
                taken.append((name, found[-1], previous))
    if not taken:
        return
    name, version, previous = taken[0]
    others = f" (and {', '.join(repr(n) for n, _, _ in taken[1:])})" if len(taken) > 1 else ""
    owner = _describe(previous) if previous is not None else "a run it does not record"
    raise ValueError(f"--export_dir={export_dir}: model '{name}'{others} already serves another run (version "
                     f"{version}: {owner}); this run ({_describe(record)}) would silently become version "
                     f"{version + 1}: pass {PREFIX_FLAG}=<name>_ (tools/export.py) to export it under new model "
                     f"names, or another --export_dir")


def set_method_names(directory, method_names):
    """Give the signatures named in `method_names` ({signature: TF Serving method}) of the SavedModel in
    `directory` their method: tf.saved_model.save writes tensorflow/serving/predict for every signature, and
    TF Serving's Classify API refuses a signature of any other method. The fingerprint (fingerprint.pb, which
    hashes the signatures) is written again, as tf.saved_model.save writes it."""
    if not method_names:
        return
    path = os.path.join(directory, "saved_model.pb")
    proto = saved_model_pb2.SavedModel()
    with open(path, "rb") as handle:
        proto.ParseFromString(handle.read())
    (meta_graph,) = proto.meta_graphs
    for name, method in method_names.items():
        if name not in meta_graph.signature_def:
            raise KeyError(f"{directory} has no signature {name!r} (it has {', '.join(meta_graph.signature_def)})")
        meta_graph.signature_def[name].method_name = method
    with open(path, "wb") as handle:
        handle.write(proto.SerializeToString(deterministic=True))
    fingerprinting_utils.write_fingerprint(directory)


def write_model_config(export_dir):
    """Write <export_dir>/models.config naming every model there (each directory with an integer version) with
    the absolute path of its directory as base_path; returns its path. Written whole, then renamed over the
    old one, as TF Serving may reread it (--model_config_file_poll_wait_seconds)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    for name in sorted(os.listdir(export_dir)):
        model_dir = os.path.join(export_dir, name)
        if versions(model_dir):
            config.model_config_list.config.add(name=name, base_path=os.path.abspath(model_dir),
                                                model_platform="tensorflow")
    path = os.path.join(export_dir, MODEL_CONFIG)
    files.write_text(path, text_format.MessageToString(config))
    return path
