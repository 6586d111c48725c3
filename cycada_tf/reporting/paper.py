"""The published numbers this implementation is compared with (Hoffman et al., ICML 2018, Table 2):
accuracy % on the target test set, mean and standard error of 4 runs, keyed by (source, target) and stage."""

TABLE_2 = {
    ("mnist", "usps"): {"source": (82.2, 0.8), "target": (95.6, 0.2), "feature": (95.6, 0.2),
                        "oracle": (96.3, 0.1)},
    ("usps", "mnist"): {"source": (69.6, 3.8), "target": (96.4, 0.1), "feature": (96.5, 0.1),
                        "oracle": (99.2, 0.1)},
    ("svhn", "mnist"): {"source": (67.1, 0.6), "target": (70.3, 0.2), "feature": (90.4, 0.4),
                        "oracle": (99.2, 0.1)},
}


def _dataset(name):
    """tfds:svhn_cropped -> svhn, so a tfds source is compared with the same row."""
    name = name.split(":", 1)[-1]
    return {"svhn_cropped": "svhn"}.get(name, name)


def reported(source, target):
    """{stage: (mean, standard error)} of the paper for this shift, or {} when the paper has none."""
    return TABLE_2.get((_dataset(source), _dataset(target)), {})


# Tables 3 and 4: IoU % per class in each dataset's class order (cycada_tf/data/sources), then mIoU, fwIoU and
# pixel accuracy %, one run each (no standard errors reported); None where the paper prints a dash. Keyed by
# (source, target, segmenter) and stage (the rows the paper has; FCNs in the wild and feat-only are other
# methods or ablations, not stages of a run, and are left out).
_SYNTHIA = {
    "source": (91.7, 80.6, 79.7, 12.1, 71.8, 44.2, 26.1, 42.8, 49.0, 38.7, 45.1, 41.3, 24.5, 49.8, 71.7, 82.3),
    "target": (92.5, 90.1, 91.9, 79.9, 85.7, 47.1, 36.9, 82.6, 45.0, 49.1, 46.2, 54.6, 21.5, 63.3, 85.7, 92.1),
    "oracle": (93.8, 92.2, 94.7, 90.7, 90.2, 64.4, 38.1, 88.5, 55.4, 51.0, 52.0, 68.9, 37.3, 70.5, 89.9, 94.5),
}
_GTA5_FCN8S = {
    "source": (26.0, 14.9, 65.1, 5.5, 12.9, 8.9, 6.0, 2.5, 70.0, 2.9, 47.0, 24.5, 0.0, 40.0, 12.1, 1.5, 0.0, 0.0,
               0.0, 17.9, 41.9, 54.0),
    "target": (83.5, 38.3, 76.4, 20.6, 16.5, 22.2, 26.2, 21.9, 80.4, 28.7, 65.7, 49.4, 4.2, 74.6, 16.0, 26.6, 2.0,
               8.0, 0.0, 34.8, 73.1, 82.8),
    "feature": (85.2, 37.2, 76.5, 21.8, 15.0, 23.8, 22.9, 21.5, 80.5, 31.3, 60.7, 50.5, 9.0, 76.9, 17.1, 28.2, 4.5,
                9.8, 0.0, 35.4, 73.8, 83.6),
    "oracle": (96.4, 74.5, 87.1, 35.3, 37.8, 36.4, 46.9, 60.1, 89.0, 54.3, 89.8, 65.6, 35.9, 89.4, 38.6, 64.1, 38.6,
               40.5, 65.1, 60.3, 87.6, 93.1),
}
_GTA5_DRN26 = {
    "source": (42.7, 26.3, 51.7, 5.5, 6.8, 13.8, 23.6, 6.9, 75.5, 11.5, 36.8, 49.3, 0.9, 46.7, 3.4, 5.0, 0.0, 5.0,
               1.4, 21.7, 47.4, 62.5),
    "target": (63.7, 24.7, 69.3, 21.2, 17.0, 30.3, 33.0, 32.0, 80.5, 25.3, 62.3, 62.0, 15.1, 73.1, 19.8, 23.6, 5.5,
               16.2, 28.7, 37.0, 63.8, 75.4),
    "feature": (79.1, 33.1, 77.9, 23.4, 17.3, 32.1, 33.3, 31.8, 81.5, 26.7, 69.0, 62.8, 14.7, 74.5, 20.9, 25.6, 6.9,
                18.8, 20.4, 39.5, 72.4, 82.3),
    "oracle": (97.3, 79.8, 88.6, 32.5, 48.2, 56.3, 63.6, 73.3, 89.0, 58.9, 93.0, 78.2, 55.2, 92.2, 45.0, 67.3, 39.6,
               49.9, 73.6, 67.4, 89.6, 94.3),
}
SEGMENTATION_TABLES = {("synthia_fall", "synthia_winter", "fcn8s"): ("Table 3", _SYNTHIA),
                       ("gta5", "cityscapes", "fcn8s"): ("Table 4 (A)", _GTA5_FCN8S),
                       ("gta5", "cityscapes", "drn26"): ("Table 4 (B)", _GTA5_DRN26)}


def reported_segmentation(source, target, model, classes):
    """(table name, {stage: {"per_class_iou": {class: IoU}, "miou", "fwiou", "pixel_accuracy"}}) of the paper
    for this shift and segmenter, as fractions like ours, or (None, {}) when the paper has none. `classes`:
    the dataset's class names, in the paper's column order."""
    name, rows = SEGMENTATION_TABLES.get((source, target, model), (None, {}))
    table = {}
    for stage, values in rows.items():
        if len(values) != len(classes) + 3:
            raise ValueError(f"the paper's {name} has {len(values) - 3} classes, {source} has {len(classes)}")
        fractions = [None if v is None else v / 100 for v in values]
        table[stage] = {"per_class_iou": dict(zip(classes, fractions)), "miou": fractions[-3],
                        "fwiou": fractions[-2], "pixel_accuracy": fractions[-1]}
    return name, table


# The protocol of each experiment flagfile as data: appendix 6.1 and sections 5.1-5.2 (PAPER: what the paper
# gives, as our flags' values) and the choices where the paper is silent or that depart from it (GAPS: value
# and why). tests/test_experiments.py checks that each experiments/<name>.flags, through the real flag parser,
# resolves to exactly this record and names every field of it; docs/paper_departures.md's departure table is
# printed from it (`python -m cycada_tf.reporting.paper`). Fields of how a run runs (RUN_FIELDS), of the final
# model's choice after the paper's rows (the paper has none), and of stages a flagfile does not run or options
# its choices switch off (unused) are outside the record.
RUN_FIELDS = frozenset({"strategy", "worker_dir", "jit_compile", "download", "export_dir", "accept_lr_change",
                        "deterministic", "data_dir", "run_dir", "verbose", "summary_every_epochs",
                        "eval_batch_size", "final_criterion", "final_margin", "final_reverse_steps"})

_DIGITS_PAPER = {  # appendix 6.1.1, every digit shift
    "seeds": (0, 1, 2, 3),  # "We ran each experiment 4 times"
    "stages": ("source", "pixel", "target", "feature", "oracle"),  # Table 2's rows
    "task_optimizer": "adam", "source_lr": 1e-4, "source_epochs": 100, "source_batch_size": 128,
    "pixel_lr": 2e-4, "pixel_batch_size": 100, "pixel_epochs": 50,
    # "equal weighting on all losses" (both terms of Eq. 4)
    "gan_weight": 1.0, "cycle_weight": 1.0, "semantic_weight": 1.0, "semantic_t2s_weight": 1.0,
    "feature_optimizer": "adam", "feature_lr": 1e-5, "feature_epochs": 200,
    "feature_g_weight": 1.0,  # "we equally weight the generator and discriminator losses"
    "feature_task_weight": 1.0,  # Eq. 6 keeps L_task(f_T, G_S->T(X_S), Y_S) beside the feature GAN loss, unweighted
    "gate_window": 1,  # "above 60% over the last batch (digits)"
    "feature_gan_mode": "log",  # Eq. 5
    "target_train_split": "train",  # "using the full training sets"
    # The method as the paper defines it: G_S->T translates source images for f_T, deterministic generators.
    "pixel_direction": "s2t", "noise_channels": 0, "minibatch_std": False, "translations_per_image": 1,
    "task_model": "lenet",  # "a variant of the LeNet architecture" (Figure 7 left)
}
_DIGITS_GAPS = {
    "gan_mode": ("log", "Eq. 2 as written; the authors' digit CycleGAN used least squares (--gan_mode=lsgan)"),
    "discriminator_norm": ("instance", "Figure 7 does not say; CycleGAN's instance norm, whose learning rate "
                                       "the paper uses"),
    "instance_norm_affine": (True, "Figure 7's networks; the paper gives no norm details"),
    "identity_weight": (0.0, "no identity loss in the paper's digit objective"),
    "pixel_lr_decay": ("none", "the paper gives a learning rate, no schedule"),
    "pixel_init": ("glorot", "the paper does not say"),
    "pixel_beta_1": (0.5, "CycleGAN's Adam, whose learning rate the paper uses"),
    "pool_size": (50, "CycleGAN's image history"),
    "generator_width": (32, "Figure 7 as we read it"), "discriminator_width": (64, "Figure 7 as we read it"),
    "feature_beta_1": (0.5, "the ADDA TensorFlow code's (erictzeng/adda tools/train_adda.py: Adam(lr, 0.5)); "
                            "the CyCADA release uses Adam's default 0.9 (scripts/train_adda.py: betas)"),
    "feature_beta_2": (0.999, "Adam's default"),
    "feature_layer": ("features", "the paper does not say what D_feat reads: the task net's 500-d features "
                                  "here; the release's digit ADDA reads the 10-d scores and updates the whole net"),
    "feature_batch_size": (128, "not given: the source net's"),
    "feature_dropout": (False, "not given: both nets embed in inference mode (dropout on one side is a tell)"),
    "feature_min_steps_per_epoch": (500, "the gate's epoch: a pass or 500 iterations, whichever is longer "
                                         "(see mnist_usps.flags)"),
    "target_epochs": (100, "not given: the source net's recipe"),
    "oracle_epochs": (100, "not given: the source net's recipe"),
    "precision": ("auto", "mixed_bfloat16 where the hardware has it (same accuracy measured, faster); "
                          "--precision=float32 for the paper's arithmetic"),
    "feature_trainable": ("adapted", "the paper does not say: the layers under the features D_feat reads, the "
                                     "encoder; the release's digit ADDA updates the whole net"),
    "weight_decay": (0.0, "the paper gives none (nor do the release's digit scripts)"),
    "task_init": ("glorot_uniform", "the paper does not say: Keras' default; the release draws Xavier normal"),
    "source_steps": (0, "the paper counts the digit recipes in epochs"),
}
_SEGMENTATION_PAPER = {  # appendix 6.1.2 and section 5.2
    "stages": ("source", "pixel", "target", "feature", "oracle"), "seeds": (0,),  # one run: no std. errors
    "width": 1024,  # "resized to have width of 1024 pixels while keeping the aspect ratio" (its CycleGAN paragraph)
    "model": "fcn8s", "backbone_weights": "imagenet",  # VGG16-FCN8s (Long et al.), ImageNet VGG16
    "task_optimizer": "sgd", "source_lr": 1e-3, "momentum": 0.9, "source_batch_size": 1,
    # "followed the network architecture and hyperparameters of CycleGAN": ResNet-9 generator, 70x70
    # PatchGAN with instance norm (no affine), least squares, cycle 10, Adam 2e-4 beta_1 0.5, pool 50,
    # batch 1, N(0, 0.02), linear decay over the second half; "randomly cropped patches of size 400 by 400",
    # "we trained only 20 epochs"
    "generator_width": 64, "generator_blocks": 9, "generator_downsamplings": 2, "discriminator_width": 64,
    "discriminator_layers": 3, "discriminator_norm": "instance", "instance_norm_affine": False,
    "gan_mode": "lsgan", "gan_weight": 1.0, "cycle_weight": 10.0, "pixel_lr": 2e-4, "pixel_beta_1": 0.5,
    "pool_size": 50, "pixel_batch_size": 1, "pixel_init": "normal", "pixel_lr_decay": "linear",
    "pixel_crop_size": (400, 400), "pixel_epochs": 20,
    "semantic_weight": 0.0, "semantic_t2s_weight": 0.0,  # Eq. 4 left out for memory (section 4.2)
    "pixel_direction": "s2t", "translations_per_image": 1,
    # "SGD with momentum, 0.99, and learning rate 1e-5"; "the representation loss ten times less"; "a single
    # source and single target image at a time (crops of size 768x768)"; "last 100 iterations"
    "feature_optimizer": "sgd", "feature_momentum": 0.99, "feature_lr": 1e-5, "feature_g_weight": 0.1,
    "feature_batch_size": 1, "feature_crop_size": (768, 768), "gate_window": 100, "feature_gan_mode": "log",
    "feature_task_weight": 1.0,  # Eq. 6 keeps L_task(f_T, G_S->T(X_S), Y_S) beside the feature GAN loss
    "feature_recipe": "paper",  # Eq. 5: D_feat's reference side is f_S(G_S->T(X_S)), the frozen model's
}
_SEGMENTATION_GAPS = {
    "identity_weight": (1.0, "CycleGAN's identity loss, at the authors' segmentation run's weight"),
    "crop_size": ((768, 768), "the task models' crop is not given: the feature stage's 768x768, the release's "
                              "(scripts/train_fcn.sh: crop=768); it fits the 1024 short side"),
    # The paper's width 1024 stays the pixel stage's (--width); the release's task and feature stages read the
    # short side at 1024: scripts/train_fcn.py lines 85-90 Scale(1024), cycada/data/data_loader.py lines 56-57
    # (get_transform2: Resize(1024), which train_fcn_adda.py's AddaDataLoader uses).
    "train_short_side": (1024, "the release's task and feature stages: scripts/train_fcn.py Scale(1024), "
                               "cycada/data/data_loader.py Resize(1024); the paper's width 1024 is the pixel stage's"),
    # The release scores val at 2048x1024: scripts/eval_fcn.py lines 46-47 (images and labels as they are).
    "eval_resolution": ("native", "not given: Cityscapes' standard full-size labels, as the release scores val "
                                  "(scripts/eval_fcn.py: no resize)"),
    "feature_layer": ("features", "what D_feat sees is not given: the segmenter's last hidden map (the "
                                  "release: its score maps, --feature_layer=logits)"),
    "feature_dropout": (False, "not given: both nets embed in inference mode"),
    "feature_epochs": (3, "not given: at most 3 epochs (the gate may stop sooner)"),
    "feature_min_steps_per_epoch": (0, "an epoch is one pass, as the paper's gate rule says"),
    "target_epochs": (4, "the source model's recipe"),
    "precision": ("auto", "as for the digits"),
    "feature_trainable": ("adapted", "not given: the layers under the map D_feat reads (the release: all)"),
    "weight_decay": (0.0, "not given (the release: 5e-4)"),
    "fcn8s_skip_scaling": (False, "FCN8s as cited, the staged net's unscaled skips (the release scales them as "
                                  "FCN's at-once net)"),
}
# What the authors' release (github.com/jhoffman/cycada_release at RELEASE_COMMIT) runs, as our flags' values,
# each with the file and line it comes from. The pixel stage is its CycleGAN fork's (a git submodule, another
# repository): not recorded here, the paper's values stay. Fields not listed keep the paper record's values.
RELEASE_COMMIT = "e04d72fb2a16c7c5c187438f5ed1c431d32d7472"
RELEASE_FILES = frozenset({  # the release's files that a recorded value may cite
    "scripts/train_adda.py", "scripts/train_fcn.py", "scripts/train_fcn.sh", "scripts/train_fcn_adda.py",
    "scripts/train_fcn_adda.sh", "scripts/eval_fcn.py", "cycada/tools/train_task_net.py",
    "cycada/tools/train_adda_net.py", "cycada/models/adda_net.py", "cycada/models/task_net.py",
    "cycada/models/util.py", "cycada/models/fcn8s.py", "cycada/models/drn.py", "cycada/data/data_loader.py",
    "cycada/data/adda_datasets.py", "README.md"})
_DIGITS_RELEASE = {
    "task_optimizer": ("adam", "cycada/tools/train_task_net.py:87"), "source_lr": (1e-4, "scripts/train_adda.py:42"),
    "source_epochs": (100, "scripts/train_adda.py:43"), "source_batch_size": (128, "scripts/train_adda.py:40"),
    "weight_decay": (0.0, "scripts/train_adda.py:39"), "task_init": ("glorot_normal", "cycada/models/util.py:7-8"),
    "feature_optimizer": ("adam", "cycada/tools/train_adda_net.py:157-159"),
    "feature_lr": (1e-5, "scripts/train_adda.py:47"), "feature_epochs": (200, "scripts/train_adda.py:46"),
    "feature_batch_size": (128, "scripts/train_adda.py:40,71"),
    "feature_beta_1": (0.9, "scripts/train_adda.py:38"), "feature_beta_2": (0.999, "scripts/train_adda.py:38"),
    "feature_layer": ("logits", "cycada/tools/train_adda_net.py:51-56"),
    "feature_trainable": ("all", "cycada/tools/train_adda_net.py:156-157"),
    "feature_dropout": (True, "cycada/tools/train_adda_net.py:28"),
    "feature_gan_mode": ("log", "cycada/models/adda_net.py:19"),
    "gate_window": (1, "cycada/tools/train_adda_net.py:82"),
    "feature_task_weight": (0.0, "cycada/tools/train_adda_net.py:99-104"),  # the fooling loss alone
}
_SEGMENTATION_RELEASE = {
    "task_optimizer": ("sgd", "scripts/train_fcn.py:103"), "source_lr": (1e-3, "scripts/train_fcn.py:53"),
    "momentum": (0.9, "scripts/train_fcn.py:56"), "source_batch_size": (1, "scripts/train_fcn.py:52"),
    "source_steps": (100000, "scripts/train_fcn.py:55"), "weight_decay": (5e-4, "scripts/train_fcn.py:104"),
    "fcn8s_skip_scaling": (True, "cycada/models/fcn8s.py:123,128"),
    "feature_optimizer": ("sgd", "scripts/train_fcn_adda.py:163-166"),
    "feature_lr": (1e-5, "scripts/train_fcn_adda.sh:7"), "feature_momentum": (0.99, "scripts/train_fcn_adda.sh:8"),
    "feature_g_weight": (0.1, "scripts/train_fcn_adda.sh:10"),
    "feature_batch_size": (1, "scripts/train_fcn_adda.sh:18"),
    "feature_crop_size": ((768, 768), "scripts/train_fcn_adda.sh:16"),
    "feature_layer": ("logits", "scripts/train_fcn_adda.sh:21"),
    "feature_trainable": ("all", "scripts/train_fcn_adda.py:165"),
    "feature_gan_mode": ("log", "scripts/train_fcn_adda.sh:50"),
    "feature_dropout": (True, "scripts/train_fcn_adda.py:181"),
    "gate_window": (100, "scripts/train_fcn_adda.py:175,267"),
    # --weights_shared --discrim_score, and the supervised step on translated GTA5 when the gate opens
    "feature_recipe": ("release", "scripts/train_fcn_adda.sh:20,50"),
    "feature_task_weight": (1.0, "scripts/train_fcn_adda.py:307-329"),
}

_PAPER = {  # experiments/<name>.flags -> (the paper's values, the declared gaps)
    "mnist_usps.flags": ({**_DIGITS_PAPER, "source": "mnist", "target": "usps"}, {
        **_DIGITS_GAPS, "image_size": (28, "not given: MNIST's 28x28 (USPS's 16x16 resized up)"),
        "channels": (1, "both domains are grey")}),
    "usps_mnist.flags": ({**_DIGITS_PAPER, "source": "usps", "target": "mnist"}, {
        **_DIGITS_GAPS, "image_size": (28, "not given: MNIST's 28x28 (USPS's 16x16 resized up)"),
        "channels": (1, "both domains are grey")}),
    "svhn_mnist.flags": ({**_DIGITS_PAPER, "source": "svhn", "target": "mnist"}, {
        **_DIGITS_GAPS, "image_size": (32, "not given: SVHN's 32x32 (MNIST resized up)"),
        "channels": (3, "SVHN's colour (MNIST's grey copied)")}),
    # Not a row of the paper: the paper's digit protocol on MNIST -> MNIST-M.
    "mnist_mnistm.flags": ({**_DIGITS_PAPER, "source": "mnist", "target": "mnist_m"}, {
        **_DIGITS_GAPS, "image_size": (32, "as svhn_mnist.flags"), "channels": (3, "MNIST-M's colour")}),
    "gta5_cityscapes.flags": ({
        **_SEGMENTATION_PAPER, "source": "gta5", "target": "cityscapes",
        "source_steps": 100000,  # "100k iterations", batch 1
        "target_train_split": "train_extra",  # "19998 images without annotation for training"
        "eval_split": "val",  # "500 images for validation"
    }, {**_SEGMENTATION_GAPS, "oracle_epochs": (34, "the source recipe's 100k iterations on Cityscapes' "
                                                     "2,975 train images")}),
    "synthia_fall_winter.flags": ({**_SEGMENTATION_PAPER, "source": "synthia_fall", "target": "synthia_winter"}, {
        **_SEGMENTATION_GAPS,
        "source_epochs": (20, "iterations are given for GTA5 only"), "source_steps": (0, "epochs, as above"),
        "target_epochs": (20, "as the source"),
        "oracle_epochs": (20, "as the source"),
        "target_train_split": ("train", "SYNTHIA-SEQS has one split"),
        "eval_split": ("train", "no official split: the winter images pixel adaptation sees, so the row is "
                                "transductive"),
    }),
}
_RELEASE = {  # the release has no SYNTHIA or MNIST-M scripts: its recipe for the kind of data
    "mnist_usps.flags": _DIGITS_RELEASE, "usps_mnist.flags": _DIGITS_RELEASE, "mnist_mnistm.flags": _DIGITS_RELEASE,
    "svhn_mnist.flags": {**_DIGITS_RELEASE, "task_model": ("dtn", "cycada/models/task_net.py:75-77")},
    "gta5_cityscapes.flags": _SEGMENTATION_RELEASE, "synthia_fall_winter.flags": _SEGMENTATION_RELEASE,
}
# experiments/<name>.flags -> {"paper": (the paper's values, the declared gaps), "release": {field: (value, the
# file and line of the release it comes from)}}; experiments/<name>_release.flags resolves to the release record.
PROTOCOL = {name: {"paper": _PAPER[name], "release": _RELEASE[name]} for name in _PAPER}
RELEASE_SUFFIX = "_release.flags"


def flagfiles():
    """Every flagfile the records describe: each row's <name>.flags and its <name>_release.flags."""
    return sorted(list(PROTOCOL) + [release_flagfile(name) for name in PROTOCOL])


def release_flagfile(flagfile):
    """experiments/<name>_release.flags of the row <name>.flags."""
    return flagfile[:-len(".flags")] + RELEASE_SUFFIX


def protocol(flagfile):
    """{field: value} that experiments/`flagfile` must resolve to: for a row's <name>.flags the paper's values and
    the declared gaps; for its <name>_release.flags, that record with the release's values where it sets them."""
    if flagfile.endswith(RELEASE_SUFFIX):
        row = flagfile[:-len(RELEASE_SUFFIX)] + ".flags"
        return {**protocol(row), **{name: value for name, (value, _) in PROTOCOL[row]["release"].items()}}
    given, gaps = PROTOCOL[flagfile]["paper"]
    overlap = set(given) & set(gaps)
    if overlap:
        raise ValueError(f"{flagfile}: {', '.join(sorted(overlap))} both given by the paper and declared a gap")
    return {**given, **{name: value for name, (value, _) in gaps.items()}}


def unused(config, stages):
    """The fields `config`'s own choices leave without effect: those of `stages` (their records) it does not
    run (a record's flags), the other optimizer's settings, another segmenter's, --source_epochs under
    --source_steps."""
    fields = set()
    for stage in stages:
        if stage.name not in config.stages and stage.flags:
            fields |= {f for f in vars(config) if f.startswith(stage.flags)}
    for kind, adam, sgd in (("task", (), ("momentum",)),
                            ("feature", ("feature_beta_1", "feature_beta_2"), ("feature_momentum",))):
        fields |= set(sgd if getattr(config, f"{kind}_optimizer") == "adam" else adam)
    if getattr(config, "model", "small_fcn") != "small_fcn":
        fields.add("model_width")
    if getattr(config, "model", "fcn8s") != "fcn8s":
        fields.add("fcn8s_skip_scaling")
    if config.source_steps:
        fields.add("source_epochs")
    return fields


def departures(cls, flagfile):
    """Markdown table rows of the fields whose default in `cls` (a config class) differs from `flagfile`'s
    record: what the embedded recipe changes from the paper's protocol."""
    record, defaults = protocol(flagfile), cls()
    rows = ["| flag | default (embedded) | paper's flagfiles |", "|---|---|---|"]
    for name in sorted(record):
        if name in ("source", "target", "seeds") or not hasattr(defaults, name):
            continue
        ours = getattr(defaults, name)
        if ours != record[name]:
            rows.append(f"| `--{name}` | {_flag_value(ours)} | {_flag_value(record[name])} |")
    return "\n".join(rows)


def release_departures(flagfile):
    """Markdown table rows of the fields in which the release's record of `flagfile`'s row differs from its paper
    record: what <name>_release.flags changes, with the file and line of jhoffman/cycada_release for each."""
    record = protocol(flagfile)
    rows = ["| flag | paper's flagfile | release's flagfile | in jhoffman/cycada_release |", "|---|---|---|---|"]
    for name, (value, where) in sorted(PROTOCOL[flagfile]["release"].items()):
        if value != record[name]:
            rows.append(f"| `--{name}` | {_flag_value(record[name])} | {_flag_value(value)} | `{where}` |")
    return "\n".join(rows)


def _flag_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


if __name__ == "__main__":  # docs/paper_departures.md's tables: the embedded recipe's; with a flagfile, the release's
    import sys
    from cycada_tf.config import experiment_config as _config
    print(release_departures(sys.argv[1]) if len(sys.argv) > 1 else departures(_config.DigitsConfig,
                                                                                 "svhn_mnist.flags"))
