"""Each flagfile of experiments/ parses into the paper's protocol for its row of Table 2 (appendix 6.1.1); the
config hierarchy behind the flags: every flag declared once in config.Config with its help, each task class
setting only defaults (and a note on the help), and the task recorded in the config's JSON."""

import ast
import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest
from absl import flags

from cycada_tf.config import experiment_config as config_lib
from cycada_tf.reporting import paper
from conftest import REPO
from cycada_tf.experiments.flags import config_from_flags, define_from
from cycada_tf.stages import registry

ROWS = {"mnist_usps.flags": ("mnist", "usps", 28, 1), "usps_mnist.flags": ("usps", "mnist", 28, 1),
        "svhn_mnist.flags": ("svhn", "mnist", 32, 3)}


def parse(*argv):
    flag_values = flags.FlagValues()
    define_from(config_lib.DigitsConfig, flag_values)
    flag_values(["digits", *argv])
    return config_from_flags(config_lib.DigitsConfig, flag_values)


# Segmentation flagfiles (Tables 3 and 4): source, target, model, evaluation split.
SEGMENTATION_ROWS = {"gta5_cityscapes.flags": ("gta5", "cityscapes", "fcn8s", "val"),
                     "synthia_fall_winter.flags": ("synthia_fall", "synthia_winter", "fcn8s", "train")}


def parse_segmentation(*argv):
    flag_values = flags.FlagValues()
    define_from(config_lib.SegmentationConfig, flag_values)
    flag_values(["segmentation", *argv])
    return config_from_flags(config_lib.SegmentationConfig, flag_values)


# Shifts the paper has no row for: flagfile -> (source, target, published anchors its comments must carry).
ANCHOR_ROWS = {"mnist_mnistm.flags": ("mnist", "mnist_m", ("52.25", "76.66", "98.2"))}


def test_every_flagfile_is_a_row_of_the_papers_tables_or_names_its_anchors():
    """Each row's flagfile, and beside it the row as the authors' release runs it (<name>_release.flags)."""
    rows = sorted({**ROWS, **SEGMENTATION_ROWS, **ANCHOR_ROWS})
    assert sorted(os.listdir(os.path.join(REPO, "experiments"))) == paper.flagfiles() == sorted(
        rows + [name[:-len(".flags")] + "_release.flags" for name in rows])
    assert sorted(paper.PROTOCOL) == rows


def row_of(name):
    """The row's flagfile of `name`, itself or the one its <row>_release.flags is of."""
    return name[:-len(paper.RELEASE_SUFFIX)] + ".flags" if name.endswith(paper.RELEASE_SUFFIX) else name


def named_flags(path):
    return {line.split("=", 1)[0][2:] for line in open(path) if line.startswith("--")}


@pytest.mark.parametrize("name", paper.flagfiles())
def test_flagfile_resolves_to_the_papers_record_and_names_every_field_of_it(name, monkeypatch):
    """paper.PROTOCOL holds two records of each row: the paper's (appendix 6.1: its values and the declared gaps)
    and the release's (that record with what jhoffman/cycada_release runs). Each flagfile, through the real flag
    parser, gives exactly its record; every field of the config is in the record, a field of how a run runs, or
    one the flagfile's own choices leave unused; and the flagfiles name each recorded field themselves (the
    release's file every value of the release, over the row's), so that no default of experiment_config.py (the
    embedded recipe) leaks into them."""
    monkeypatch.chdir(REPO)  # a release flagfile reads its row's as the commands do, from the repository root
    path = os.path.join(REPO, "experiments", name)
    config = (parse_segmentation if row_of(name) in SEGMENTATION_ROWS else parse)(f"--flagfile={path}")
    record = paper.protocol(name)
    assert {field: getattr(config, field, "<no such flag>") for field in record} == record
    fields = {f.name for f in dataclasses.fields(config)}
    assert fields - set(record) - paper.RUN_FIELDS - paper.unused(config, registry.STAGES) == set()
    named = named_flags(path) | named_flags(os.path.join(REPO, "experiments", row_of(name)))
    assert set(record) - named == set()
    if name != row_of(name):
        assert set(paper.PROTOCOL[row_of(name)]["release"]) - named_flags(path) == set()
        assert record != paper.protocol(row_of(name))


# A release value's source: a file of jhoffman/cycada_release and its lines ("scripts/train_adda.py:38",
# "cycada/models/fcn8s.py:123,128", "scripts/train_fcn_adda.py:163-166").
CITATION = re.compile(r"^(?P<file>[\w/.-]+):\d+(-\d+)?(,\d+(-\d+)?)*$")


@pytest.mark.parametrize("name", sorted(paper.PROTOCOL))
def test_every_release_value_names_its_file_in_the_release(name):
    """Each value of the release's record cites a file of jhoffman/cycada_release (paper.RELEASE_FILES) and its
    lines, and the release's flagfile gives that citation on the line above the flag, so that a reader can
    open it."""
    release = paper.PROTOCOL[name]["release"]
    assert release
    lines = open(os.path.join(REPO, "experiments", paper.release_flagfile(name))).read().splitlines()
    for field, (value, where) in release.items():
        match = CITATION.match(where)
        assert match and match["file"] in paper.RELEASE_FILES, (field, where)
        flag = next(k for k, line in enumerate(lines) if line.startswith(f"--{field}="))
        assert lines[flag - 1] == f"# {where}", (field, lines[flag - 1])


def test_departure_table_of_the_docs_is_the_records():
    """docs/paper_departures.md's tables of what the embedded recipe changes (python -m cycada_tf.reporting.paper)
    and of what the release changes in a digit and a segmentation row (... paper <flagfile>) are printed from the
    records, so they cannot drift from the flagfiles or the defaults."""
    doc = open(os.path.join(REPO, "docs", "paper_departures.md")).read()

    def block(command):
        return doc.split(f"<!-- departures: {command} -->\n", 1)[1].split("\n<!-- end -->", 1)[0]
    assert block("python -m cycada_tf.reporting.paper") == paper.departures(config_lib.DigitsConfig,
                                                                            "svhn_mnist.flags")
    for row in ("svhn_mnist.flags", "gta5_cityscapes.flags"):
        assert block(f"python -m cycada_tf.reporting.paper {row}") == paper.release_departures(row)


@pytest.mark.parametrize("name", sorted(ANCHOR_ROWS))
def test_a_flagfile_outside_the_paper_keeps_its_protocol_and_anchors(name):
    from cycada_tf.data import registry
    source, target, anchors = ANCHOR_ROWS[name]
    path = os.path.join(REPO, "experiments", name)
    config = parse(f"--flagfile={path}")
    assert (config.source, config.target) == (source, target) and not paper.reported(source, target)
    assert registry.get(source).classes == registry.get(target).classes
    comments = "".join(line for line in open(path) if line.startswith("#"))
    assert all(anchor in comments for anchor in anchors)
    reference = parse(f"--flagfile={os.path.join(REPO, 'experiments', 'svhn_mnist.flags')}")
    same = {k: v for k, v in vars(config).items() if k not in ("source", "target", "run_dir")}
    assert same == {k: v for k, v in vars(reference).items() if k in same}  # the paper's digit protocol
    assert config.run_dir == f"runs/{name[:-len('.flags')]}"


@pytest.mark.parametrize("name", [n for n in paper.flagfiles() if row_of(n) in SEGMENTATION_ROWS])
def test_segmentation_flagfile_names_its_tables_data(name, monkeypatch):
    """The values themselves are paper.PROTOCOL's (test above); here, that the row's data fits them."""
    from cycada_tf.data import registry
    monkeypatch.chdir(REPO)
    source, target, model, split = SEGMENTATION_ROWS[row_of(name)]
    config = parse_segmentation(f"--flagfile={os.path.join(REPO, 'experiments', name)}")
    assert (config.source, config.target, config.model, config.eval_split) == (source, target, model, split)
    assert registry.get(source).classes == registry.get(target).classes
    assert split in registry.get(target).splits
    from cycada_tf.data.sources import cityscapes
    assert config.target_train_split in registry.get(target).splits + cityscapes.IMAGE_ONLY_SPLITS
    assert config.run_dir == f"runs/{name[:-len('.flags')]}"


@pytest.mark.parametrize("name", [n for n in paper.flagfiles() if row_of(n) in ROWS])
def test_flagfile_names_its_tables_row(name, monkeypatch):
    monkeypatch.chdir(REPO)
    source, target, size, channels = ROWS[row_of(name)]
    config = parse(f"--flagfile={os.path.join(REPO, 'experiments', name)}")
    assert (config.source, config.target, config.image_size, config.channels) == (source, target, size, channels)
    assert paper.reported(config.source, config.target)  # the table prints the paper's numbers beside ours
    assert config.run_dir == f"runs/{name[:-len('.flags')]}"


def test_a_flag_given_after_the_flagfile_overrides_it():
    config = parse(f"--flagfile={os.path.join(REPO, 'experiments', 'svhn_mnist.flags')}", "--seeds=7",
                   "--data_dir=/elsewhere")
    assert config.seeds == (7,) and config.data_dir == "/elsewhere" and config.source == "svhn"


def test_an_unknown_flag_in_a_flagfile_is_refused(tmp_path):
    path = tmp_path / "bad.flags"
    path.write_text("--source=svhn\n--pixel_epoch=5\n")
    with pytest.raises(flags.UnrecognizedFlagError, match="pixel_epoch"):
        parse(f"--flagfile={path}")


@pytest.mark.slow
def test_paper_flagfile_feature_stage_updates_f_t_on_small_data(embedded_data_dir, tmp_path):
    """experiments/mnist_usps.flags as given, on small embedded grey digits (900 target training images, 7
    iterations a pass), with fewer epochs and narrower translators (width 8, not 32 and 64: the pixel stage
    is not what is tested) for the CPU: the gate opens (appendix 6.1) and f_T changes (with
    an epoch of 100 iterations it did not: D_feat stayed under 60% and the stage ended after epoch 1). One
    feature epoch: a second runs only when the first had an update, which is what this test asks for."""
    import h5py
    import numpy as np

    from cycada_tf.experiments import runner
    config = parse(f"--flagfile={os.path.join(REPO, 'experiments', 'mnist_usps.flags')}", "--source=fonts",
                   "--target=uci", f"--data_dir={embedded_data_dir}", f"--run_dir={tmp_path / 'run'}", "--seeds=0",
                   "--stages=source,pixel,target,feature", "--source_epochs=5", "--pixel_epochs=1",
                   "--target_epochs=5", "--feature_epochs=1", "--final_criterion=information_maximisation",
                   "--generator_width=8", "--discriminator_width=8",
                   "--summary_every_epochs=0",
                   "--verbose=0")
    assert config.feature_lr == 1e-5 and config.feature_min_steps_per_epoch == 500
    feature = runner.run(config)["per_seed"]["0"]["feature"]
    assert feature["gated_updates"] > 0, feature

    def weights(stage):
        with h5py.File(tmp_path / "run" / "seed_0" / stage / "f.weights.h5") as handle:
            arrays = []
            handle.visititems(lambda n, o: arrays.append(o[()]) if hasattr(o, "shape") else None)
        return arrays
    assert any(not np.array_equal(a, b) for a, b in zip(weights("target"), weights("feature")))


# --- the config hierarchy ------------------------------------------------------------------------------
TASK_CLASSES = (config_lib.DigitsConfig, config_lib.SegmentationConfig)

# to_json(cls()) before the hierarchy (commit 60f6dfa), written down so that no default moves with it.
_COMMON = {
    "accept_lr_change": False, "data_dir": "data", "download": True, "export_dir": "", "feature_layer": "features",
    "feature_min_steps_per_epoch": 100, "gan_weight": 1.0, "jit_compile": "auto", "pixel_beta_1": 0.5,
    "pixel_direction": "auto", "pixel_lr": 0.0002, "pool_size": 50, "precision": "auto", "run_dir": "",
    "seeds": [0], "self_train_confidence": 0.9, "self_train_init": "feature", "self_train_target_weight": 1.0,
    "semantic_t2s_weight": 0.0, "stages": ["source", "pixel", "target", "feature", "self_train", "oracle"],
    "strategy": "auto", "summary_every_epochs": 5, "worker_dir": ""}
DIGITS_BEFORE = {
    **_COMMON, "channels": 3, "cycle_weight": 1.0, "discriminator_norm": "none", "discriminator_width": 32,
    "feature_batch_size": 128, "feature_epochs": 10, "feature_lr": 1e-05, "gan_mode": "log", "generator_width": 32,
    "image_size": 32, "minibatch_std": True, "noise_channels": 8, "oracle_epochs": 30, "pixel_batch_size": 32,
    "pixel_epochs": 10, "self_train_batch_size": 64, "self_train_epochs": 4, "self_train_lr": 0.0003,
    "self_train_steps_per_epoch": 250, "self_train_target_ratio": 3, "self_train_view": "target",
    "semantic_weight": 1.0, "source": "uci", "source_batch_size": 128, "source_epochs": 30, "source_lr": 0.0001,
    "target": "uci_m", "target_epochs": 30, "translations_per_image": 3, "verbose": 2}
SEGMENTATION_BEFORE = {
    **_COMMON, "backbone_weights": "", "crop_size": [64, 128], "cycle_weight": 10.0, "discriminator_layers": 3,
    "discriminator_norm": "instance", "discriminator_width": 16, "eval_batch_size": 50, "eval_split": "test",
    "feature_batch_size": 8, "feature_crop_size": [64, 128], "feature_epochs": 3, "feature_lr": 0.0001,
    "feature_momentum": 0.99, "feature_optimizer": "adam", "gan_mode": "lsgan", "gate_window": 100,
    "generator_blocks": 3, "generator_downsamplings": 2, "generator_width": 16, "model": "small_fcn",
    "model_width": 32, "momentum": 0.9, "oracle_epochs": 10, "pixel_batch_size": 4, "pixel_crop_size": [64, 64],
    "pixel_epochs": 5, "self_train_batch_size": 8, "self_train_epochs": 3, "self_train_lr": 0.0001,
    "self_train_steps_per_epoch": 100, "self_train_target_ratio": 2, "self_train_view": "init",
    "semantic_weight": 0.0, "source": "roads_game", "source_batch_size": 16, "source_epochs": 10,
    "source_lr": 0.001, "target": "roads_camera", "target_epochs": 10, "task_optimizer": "adam",
    "translations_per_image": 1, "verbose": 0, "width": 0}
# The fields added with the hierarchy, at the values the code used before they were flags.
DIGITS_NEW = {"gate_window": 1, "task_optimizer": "adam", "momentum": 0.9, "feature_optimizer": "adam",
              "feature_momentum": 0.99, "feature_beta_1": 0.5}
SEGMENTATION_NEW = {"feature_beta_1": 0.5}
# The paper-protocol flags (the CycleGAN recipe, the feature stage's own objective, weight, betas and dropout,
# the target's unlabelled split), at the values the code used before they were flags: D_feat's objective was
# --gan_mode's (digits log, segmentation lsgan).
PROTOCOL_NEW = {"identity_weight": 0.0, "pixel_lr_decay": "none", "pixel_init": "glorot",
                "instance_norm_affine": True, "feature_beta_2": 0.999, "feature_g_weight": 1.0,
                "feature_dropout": False, "target_train_split": "train"}
# Issue 25: the release's details, at the behaviour of the runs made before them.
RELEASE_SINCE = {"source_steps": 0, "weight_decay": 0.0, "feature_trainable": "adapted"}
# --deterministic and --task_model, at the behaviour of the runs made before them.
COMMON_SINCE = {"deterministic": False}
DIGITS_SINCE = {"task_model": "lenet"}
# Issue 22: the final model's criterion and the segmentation self-training's objective. Defaults changed here
# change what runs compute: the README's tables were measured with them.
SELECTION_SINCE = {"final_criterion": "veto", "final_margin": 0.0, "self_train_ema": 0.99,
                   "self_train_teacher_confidence": 0.968, "self_train_guide_steps": 0, "self_train_guide_weight": 0.0,
                   "self_train_align": False, "self_train_source_view": "translated"}
# Issue 22: the road scenes' self-training is DACS reading target images as they are, labelled by the init model
# through G_T->S with class mixing.
SEGMENTATION_DACS = {"self_train_method": "dacs", "final_reverse_steps": 300, "self_train_epochs": 10,
                     "self_train_target_ratio": 1, "self_train_view": "target", "self_train_guide_steps": 1000}
# Issue 22, the road must-shows: the guide labels the first 1,000 steps, then the teacher the next 1,000.
SEGMENTATION_TEACHER = {"self_train_epochs": 20}
# Issue 25: Eq. 6's task term in the feature stage, off (the adversarial term alone, as before), and the
# segmentation feature stage's recipe, the paper's (the frozen reference model).
TASK_TERM_SINCE = {"feature_task_weight": 0.0}
SEGMENTATION_RECIPE_SINCE = {"feature_recipe": "paper"}
# Issue 25: the resolution flags, at today's behaviour: images as prepared, scored at that resolution.
SEGMENTATION_RESOLUTION = {"train_short_side": 0, "eval_resolution": "train"}
TODAY = {config_lib.DigitsConfig: {"task": "digits", **DIGITS_BEFORE, **DIGITS_NEW, **PROTOCOL_NEW,
                                   "feature_gan_mode": "log", **COMMON_SINCE, **DIGITS_SINCE, **SELECTION_SINCE,
                                   "self_train_method": "adamatch", "final_reverse_steps": 500, **RELEASE_SINCE,
                                   "task_init": "glorot_uniform", **TASK_TERM_SINCE},
         config_lib.SegmentationConfig: {"task": "segmentation", **SEGMENTATION_BEFORE, **SEGMENTATION_NEW,
                                         **PROTOCOL_NEW, "feature_gan_mode": "lsgan", **COMMON_SINCE,
                                         **SELECTION_SINCE, **SEGMENTATION_DACS, **SEGMENTATION_TEACHER,
                                         **RELEASE_SINCE, "fcn8s_skip_scaling": False,
                                         **TASK_TERM_SINCE, **SEGMENTATION_RECIPE_SINCE,
                                         **SEGMENTATION_RESOLUTION}}
# The flags a run directory could be continued with before the metadata (resume.RESULT_INDEPENDENT_FLAGS).
RERUN_BEFORE = {"verbose", "summary_every_epochs", "export_dir", "seeds", "stages", "run_dir", "strategy",
                "jit_compile", "worker_dir", "download", "accept_lr_change"}
# Issue 22: the final model is decided again from the saved weights when its criterion or margin changes.
RERUN_SINCE = {"final_criterion", "final_margin", "final_reverse_steps"}


@pytest.mark.parametrize("cls", TASK_CLASSES, ids=lambda c: c.__name__)
def test_the_defaults_are_todays_plus_the_new_fields(cls):
    assert config_lib.to_json(cls()) == TODAY[cls]


def _declarations():
    """{class name: (names declared with an annotation, names given a task default by _override/_note)},
    read from the source of experiment_config.py, self_training_fields.py (SelfTrainingFields) and run_fields.py
    (RunOptions: the fields of how a run runs)."""
    from cycada_tf.config import run_fields as run_options, self_training_fields as config_self_training
    body = [node for module in (config_lib, config_self_training, run_options)
            for node in ast.parse(open(module.__file__).read()).body]
    found = {}
    for node in body:
        if isinstance(node, ast.ClassDef) and node.name in ("RunOptions", "SelfTrainingFields", "Config",
                                                             "DigitsConfig", "SegmentationConfig"):
            declared = [s.target.id for s in node.body if isinstance(s, ast.AnnAssign) and s.target.id != "TASK"]
            overridden = [s.targets[0].id for s in node.body if isinstance(s, ast.Assign)
                          and isinstance(s.value, ast.Call) and getattr(s.value.func, "id", "") in ("_override",
                                                                                                    "_note")]
            found[node.name] = (declared, overridden)
    return found


def test_every_field_is_declared_once():
    found = _declarations()
    declared = [name for own, _ in found.values() for name in own]
    assert sorted(declared) == sorted(set(declared))  # no field is declared twice
    base = {f.name for f in dataclasses.fields(config_lib.Config)}
    assert set(found["Config"][0]) | set(found["SelfTrainingFields"][0]) | set(found["RunOptions"][0]) == base
    assert not found["Config"][1] and not found["SelfTrainingFields"][1]
    digits_only, segmentation_only = (set(found[cls.__name__][0]) for cls in TASK_CLASSES)
    assert digits_only == {"image_size", "channels", "noise_channels", "minibatch_std", "task_model", "task_init"}
    assert segmentation_only == {"model", "backbone_weights", "model_width", "width", "crop_size",
                                 "pixel_crop_size", "feature_crop_size", "eval_split", "eval_batch_size",
                                 "generator_blocks", "generator_downsamplings", "discriminator_layers",
                                 "fcn8s_skip_scaling", "feature_recipe",
                                 "train_short_side", "eval_resolution"}
    for cls in TASK_CLASSES:
        overridden = found[cls.__name__][1]
        assert len(overridden) == len(set(overridden)) and set(overridden) <= base
        assert {f.name for f in dataclasses.fields(cls)} == base | set(found[cls.__name__][0])
        # every field whose default is a task's is given one by each task
        per_task = {f.name for f in dataclasses.fields(config_lib.Config) if f.default is config_lib.PER_TASK}
        assert per_task <= set(overridden)


@pytest.mark.parametrize("cls", TASK_CLASSES, ids=lambda c: c.__name__)
def test_a_task_class_changes_only_defaults_and_appends_a_note(cls):
    task_fields = {f.name: f for f in dataclasses.fields(cls)}
    for base in dataclasses.fields(config_lib.Config):
        field = task_fields[base.name]
        assert field.type is base.type and field.metadata["rerun"] == base.metadata["rerun"], base.name
        note = field.metadata.get("note", "")
        assert field.metadata["help"] == f"{base.metadata['help']} {note}".strip(), base.name
        assert config_lib.help_of(base.name, cls) == field.metadata["help"]


def test_the_base_config_has_no_task_defaults():
    with pytest.raises(TypeError, match=r"no value for self_train_epochs, .*source, target, .*DigitsConfig, "
                                        r"SegmentationConfig"):
        config_lib.Config()
    assert config_lib.PER_TASK not in {getattr(cls(), f.name) for cls in TASK_CLASSES
                                       for f in dataclasses.fields(cls)}


def test_a_task_class_may_not_declare_a_base_field_again_or_override_a_missing_one():
    with pytest.raises(TypeError, match="declares pixel_epochs again"):
        @config_lib._task_config
        class Twice(config_lib.Config):
            pixel_epochs: int = config_lib._f(3, "Pixel epochs.")
    with pytest.raises(TypeError, match="overrides pixel_epoch, which is no field"):
        @config_lib._task_config
        class Typo(config_lib.Config):
            pixel_epoch = config_lib._override(3)


@pytest.mark.parametrize("cls", TASK_CLASSES, ids=lambda c: c.__name__)
def test_each_experiments_flags_have_its_defaults_and_help(cls):
    flag_values = flags.FlagValues()
    define_from(cls, flag_values)
    flag_values(["experiment"])
    assert config_lib.to_json(config_from_flags(cls, flag_values)) == TODAY[cls]
    for field in dataclasses.fields(cls):
        choices = field.metadata["accepts"].get("choices")
        enum = f"<{'|'.join(choices)}>: " if choices and isinstance(field.default, str) else ""  # absl's enums
        assert flag_values[field.name].help == enum + field.metadata["help"]
    assert flag_values["gate_window"].default == {"digits": 1, "segmentation": 100}[cls.TASK]
    assert flag_values["pixel_epochs"].help.endswith(
        {"digits": "Paper: 50; 10 keeps the embedded run within 15 minutes on 2 CPU cores.",
         "segmentation": "Paper: 20."}[cls.TASK])


@pytest.mark.parametrize("module,default,note", [("digits", "1", "Paper: 1, the last batch."),
                                                 ("segmentation", "100", "Paper: 100.")])
def test_helpfull_shows_the_tasks_default_and_note(module, default, note):
    result = subprocess.run([sys.executable, "-m", f"cycada_tf.experiments.{module}", "--helpfull"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    text = " ".join(result.stdout.split())
    base = " ".join(config_lib.Config.__dataclass_fields__["gate_window"].metadata["help"].split())
    assert f"--gate_window: {base} {note} (default: '{default}')" in text


@pytest.mark.parametrize("cls", TASK_CLASSES, ids=lambda c: c.__name__)
def test_from_json_picks_the_class_of_the_recorded_task(cls):
    values = config_lib.to_json(cls(seeds=(1, 2), source_epochs=7))
    config = config_lib.from_json(json.loads(json.dumps(values)))
    assert type(config) is cls and config == cls(seeds=(1, 2), source_epochs=7)
    assert config_lib.from_json(values, cls) == config  # an explicit class that agrees
    assert type(config_lib.from_json(values, config_lib.Config)) is cls
    other = next(c for c in TASK_CLASSES if c is not cls)
    with pytest.raises(ValueError, match=f"of a {cls.TASK} run, not a {other.__name__}"):
        config_lib.from_json(values, other)


def test_from_json_without_a_task_reads_an_old_file_as_its_class():
    # DIGITS_BEFORE: a config.json written before the task and the new fields were recorded
    config = config_lib.from_json({**DIGITS_BEFORE, "source_epochs": 5})
    assert type(config) is config_lib.DigitsConfig and config.source_epochs == 5 and config.gate_window == 1
    config = config_lib.from_json({**SEGMENTATION_BEFORE, "model": "fcn8s"}, config_lib.SegmentationConfig)
    assert type(config) is config_lib.SegmentationConfig and config.model == "fcn8s"
    with pytest.raises(ValueError, match="unknown task 'pose'"):
        config_lib.from_json({"task": "pose"})

def test_what_may_change_on_a_rerun_is_field_metadata():
    """The rerun rule of resume.check_run_config, read from the fields: the same flags as before."""
    for cls in (config_lib.Config, *TASK_CLASSES):
        assert set(config_lib.rerun_fields(cls)) == RERUN_BEFORE | RERUN_SINCE
    assert not [name for name in config_lib.rerun_fields(config_lib.Config) if name.endswith("_lr")]


def test_the_unlabelled_stages_read_target_train_split_and_a_missing_one_is_named(embedded_data_dir):
    from cycada_tf import tasks
    task = tasks.for_config(parse("--target_train_split=test", f"--data_dir={embedded_data_dir}"))
    task.check_data()
    assert task.count("target", "unlabelled") == task.count("target", "test") != task.count("target", "train")
    assert task.count("source", "unlabelled") == task.count("source", "train")
    missing = tasks.for_config(parse("--target_train_split=train_extra", f"--data_dir={embedded_data_dir}"))
    with pytest.raises(ValueError, match=r"^--target_train_split=train_extra: dataset 'uci_m' in .* has no split "
                                         r"'train_extra' \(it has test, train\); or pass --target_train_split=train"):
        missing.check_data()
    tasks.for_config(parse("--target_train_split=train_extra", "--stages=source,oracle",
                           f"--data_dir={embedded_data_dir}")).check_data()  # no stage reads it


def _python(code, **env):
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=dict(environment, PYTHONPATH=REPO, **env),
                          capture_output=True, text=True, timeout=120)


def test_tensorflow_starts_without_a_line_on_stderr():
    """What every main and tool does first (cycada_tf/train/quiet_tensorflow.py): TensorFlow's start-up lines
    (C++ logs before absl is set up) and its C++ errors (no GPU driver here) stay off stderr; the process's own
    lines do not."""
    result = _python("import os, sys\n"
                     "from cycada_tf.train import quiet_tensorflow as quiet\n"
                     "quiet.import_tensorflow()\n"
                     "import tensorflow as tf\n"
                     "assert float(tf.constant(1.0) + 1.0) == 2.0\n"
                     "print('ours', file=sys.stderr)\n")
    assert result.returncode == 0, result.stderr
    assert result.stderr == "ours\n"


def test_only_the_block_loses_stderr_and_verbosity_is_read_as_absl_spells_it():
    from cycada_tf.train import quiet_tensorflow as quiet
    result = _python("import os\n"
                     "from cycada_tf.train import quiet_tensorflow as quiet\n"
                     "with quiet.stderr_discarded():\n"
                     "    os.write(2, b'hidden\\n')\n"
                     "os.write(2, b'shown\\n')\n")
    assert result.stderr == "shown\n"
    assert quiet.verbosity_given(["main", "--verbosity=0"]) and quiet.verbosity_given(["main", "-v", "1"])
    assert not quiet.verbosity_given(["main", "--verbose=2"]) and not quiet.verbosity_given(["--verbosity"])
