"""The experiment configuration: `Config` declares every flag of both experiments once, with its help text;
DigitsConfig and SegmentationConfig add the fields only their task has and set the defaults of their task.
Defaults are the paper's values (appendix 6.1) unless the help says why not."""

import dataclasses
import typing

from cycada_tf.config import flag_checks as accepts
from cycada_tf.config.run_fields import CROP, FRACTION, NON_NEGATIVE, PER_TASK, POSITIVE, RATE, WEIGHT  # noqa: F401
from cycada_tf.config.run_fields import RunOptions, _f, _field, _note, _Override, _override, _task_config  # noqa: F401
from cycada_tf.config.self_training_fields import FINAL_CRITERIA, UNIT, SelfTrainingFields  # noqa: F401
from cycada_tf.stages import NAMES as STAGE_NAMES  # the stages a run trains, in order (no TensorFlow)

OPTIMIZERS, GAN_MODES = ("adam", "sgd"), ("log", "lsgan")


@dataclasses.dataclass
class Config(SelfTrainingFields):
    """Every field that both experiments have. A field whose default is PER_TASK gets it from the task class."""
    TASK: typing.ClassVar[str] = ""  # recorded in config.json and results.json ("task"), not a flag

    source: str = _f(PER_TASK, "Labelled source dataset: a name or folder:<path> (docs/data.md).")
    target: str = _f(PER_TASK, "Target dataset, labels read only for scores: a name or folder:<path> "
                               "(docs/data.md).")
    data_dir: str = _f("data", "Directory of prepared TFRecords (embedded domains are built there on first use).")
    run_dir: str = _f("", "Where checkpoints, translations and results go; default runs/<source>_to_<target>.",
                      rerun=True)
    seeds: tuple = _f((0,), "Seeds; every table number is the mean +- standard error over them (each seed has "
                            "its own directory: seeds may be added to a run).", rerun=True,
                      at_least=0, at_most=2**32 - 1, distinct=True)
    stages: tuple = _f(STAGE_NAMES,
                       f"Stages to run, in this order: {', '.join(STAGE_NAMES)} (self-training is not in the "
                       "paper).", rerun=True, choices=STAGE_NAMES, distinct=True)

    task_optimizer: str = _f("adam", "Optimizer of the task-model stages: adam or sgd (with --momentum).",
                             choices=OPTIMIZERS)
    source_epochs: int = _f(PER_TASK, "Epochs of the source model.", **POSITIVE)
    source_batch_size: int = _f(PER_TASK, "Batch size of every task-model stage.", **POSITIVE)
    source_lr: float = _f(PER_TASK, "Learning rate of every task-model stage (--task_optimizer).", **RATE)
    momentum: float = _f(0.9, "Momentum of --task_optimizer=sgd (segmentation paper: 0.9).", **FRACTION)
    source_steps: int = _f(0, "Iterations of the source model, in equal epochs of about a pass each; 0: "
                              "--source_epochs passes.", **NON_NEGATIVE)
    weight_decay: float = _f(0.0, "L2 weight decay added to the gradients of the task-model and feature stages' "
                                  "optimizers, as PyTorch's (release: 5e-4 for segmentation).", **WEIGHT)

    pixel_epochs: int = _f(PER_TASK, "Pixel adaptation epochs over the larger domain.", **POSITIVE)
    pixel_batch_size: int = _f(PER_TASK, "Pixel adaptation batch size per domain.", **POSITIVE)
    pixel_lr: float = _f(2e-4, "Adam learning rate of generators and discriminators (paper, CycleGAN: 2e-4).", **RATE)
    pixel_beta_1: float = _f(0.5, "Adam beta_1 of the pixel stage (CycleGAN's, whose learning rate the paper "
                                  "uses: 0.5).", **FRACTION)
    gan_mode: str = _f(PER_TASK, "The pixel stage's GAN loss: log (Eq. 2) or lsgan (CycleGAN's least squares).",
                       choices=GAN_MODES)
    gan_weight: float = _f(1.0, "Weight of each GAN term (digits paper: equal weights on all losses).", **WEIGHT)
    cycle_weight: float = _f(PER_TASK, "Weight of the cycle-consistency loss, Eq. 3.", **WEIGHT)
    semantic_weight: float = _f(PER_TASK, "Weight of Eq. 4's source term: G_S->T(x_s) keeps the frozen f_S's "
                                          "label of x_s.", **WEIGHT)
    semantic_t2s_weight: float = _f(
        0.0, "Weight of Eq. 4's target term: G_T->S(x_t) keeps f_S's label of x_t (paper: 1; why 0: "
             "docs/paper_departures.md).", **WEIGHT)
    identity_weight: float = _f(0.0, "CycleGAN's identity loss, weighted this x --cycle_weight (CycleGAN: 0.5; "
                                     "paper: 0; the authors' segmentation run: 1).", **WEIGHT)
    pixel_lr_decay: str = _f("none", "The pixel stage's learning rate: constant, or CycleGAN's linear decay "
                                     "to 0 over the second half.", choices=("none", "linear"))
    pixel_init: str = _f("glorot", "Kernel init of the translators and image discriminators: Keras' glorot "
                                   "or CycleGAN's N(0, 0.02).",
                         choices=("glorot", "normal"))
    instance_norm_affine: bool = _f(True, "Learned scale and offset in the pixel stage's instance norms "
                                          "(CycleGAN's have none: false).")
    pool_size: int = _f(50, "Image history shown to the discriminators (CycleGAN: 50); 0 turns it off.", **NON_NEGATIVE)
    generator_width: int = _f(PER_TASK, "Filters of the generator's first convolution.", **POSITIVE)
    discriminator_width: int = _f(PER_TASK, "Filters of the image discriminator's first convolution.", **POSITIVE)
    discriminator_norm: str = _f(PER_TASK, "Image discriminator normalisation (CycleGAN: instance, which "
                                           "hides each image's colours from it).",
                                 choices=("none", "instance"))
    pixel_direction: str = _f(
        "auto", "The target model trains on G_S->T(X_S) (s2t, paper) or reads G_T->S(x_t) (t2s); auto: "
                "picked without labels.",
        choices=("auto", "s2t", "t2s"))
    translations_per_image: int = _f(PER_TASK, "Translated copies of each source image for the target model.",
                                     **POSITIVE)
    target_epochs: int = _f(PER_TASK, "Epochs of the target model on translated source images (source recipe).",
                            **POSITIVE)

    feature_epochs: int = _f(PER_TASK, "Feature adaptation epochs at most (the gate may end it sooner).", **POSITIVE)
    feature_batch_size: int = _f(PER_TASK, "Feature adaptation batch size per domain.", **POSITIVE)
    feature_optimizer: str = _f("adam", "Feature adaptation's optimizer (sgd: --feature_momentum).",
                                choices=OPTIMIZERS)
    feature_lr: float = _f(PER_TASK, "Learning rate of feature adaptation (--feature_optimizer).", **RATE)
    feature_beta_1: float = _f(0.5, "Adam beta_1 of feature adaptation (--feature_optimizer=adam).", **FRACTION)
    feature_beta_2: float = _f(0.999, "Adam beta_2 of feature adaptation (--feature_optimizer=adam).", **FRACTION)
    feature_momentum: float = _f(0.99, "Momentum of --feature_optimizer=sgd (segmentation paper: 0.99).", **FRACTION)
    feature_min_steps_per_epoch: int = _f(
        100, "A feature epoch (the gate's window) is a target pass or this many iterations, whichever is "
             "longer.", **NON_NEGATIVE)
    feature_layer: str = _f("features", "What D_feat sees: features (paper: the 500-d layer; the segmenter's "
                                        "'features' map) or class scores (release).",
                            choices=("features", "logits"))
    feature_trainable: str = _f("adapted", "f_T's weights the feature stage updates: under what D_feat reads, "
                                           "the encoder's, or all (release).",
                                choices=("adapted", "encoder", "all"))
    feature_gan_mode: str = _f("log", "D_feat's loss, Eq. 5: log (paper) or lsgan; the gate reads D_feat's "
                                      "accuracy either way.",
                               choices=GAN_MODES)
    feature_g_weight: float = _f(1.0, "Weight of f_T's representation (fooling) loss against D_feat's loss "
                                      "(appendix 6.1.2: ten times less for segmentation, 0.1).", **WEIGHT)
    feature_task_weight: float = _f(0.0, "Weight of Eq. 6's L_task on labelled G_S->T(X_S) in f_T's gated "
                                          "feature update (paper: 1; 0: the adversarial term alone).", **WEIGHT)
    feature_dropout: bool = _f(False, "Feature adaptation embeds in training mode (dropout, batch statistics); "
                                      "off: inference mode (the paper is silent).")
    target_train_split: str = _f("train", "Target split of the unlabelled stages and criteria (Cityscapes: "
                                          "train_extra); the oracle trains on train.")
    gate_window: int = _f(PER_TASK, "f_T is updated only while D_feat's accuracy over this many last "
                                    "iterations is above 60%.", **POSITIVE)

    oracle_epochs: int = _f(PER_TASK, "Epochs of the target-trained oracle (labelled target data; reported only).",
                            **POSITIVE)
    verbose: int = _f(PER_TASK, "0 and 2: our progress lines only (docs/output.md); 1: Keras' progress bar "
                                "as well.",
                      rerun=True, choices=(0, 1, 2))
    summary_every_epochs: int = _f(5, "Epochs between TensorBoard image summaries (scalars: every epoch); 0: "
                                      "none (docs/output.md).", rerun=True, **NON_NEGATIVE)

    def __post_init__(self):
        unset = [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is PER_TASK]
        if unset:
            raise TypeError(f"{type(self).__name__} has no value for {', '.join(unset)}: each task's config "
                            f"({', '.join(c.__name__ for c in TASKS.values())}) sets its default")
        accepts.check(self)  # FlagError naming the flag: a wrong value is refused before anything runs


@_task_config
class DigitsConfig(Config):
    """`python -m cycada_tf.experiments.digits`. Defaults: the embedded uci -> uci_m demo on a CPU;
    experiments/*.flags hold the paper's settings (appendix 6.1.1)."""
    TASK = "digits"
    image_size: int = _f(32, "Image side inside the networks (28 for MNIST<->USPS, 32 for SVHN->MNIST).", at_least=16)
    channels: int = _f(3, "Channels inside the networks: 1 (grey) or 3 (RGB); images are converted.", choices=(1, 3))
    noise_channels: int = _f(8, "Dimensions of a style code z given to G_S->T (0: deterministic, as the paper).",
                             **NON_NEGATIVE)
    minibatch_std: bool = _f(True, "Give the image discriminators the batch's feature std (against collapse).")
    task_model: str = _f("lenet", "Classifier f: lenet (the paper's, Figure 7) or dtn (the release's SVHN->MNIST net).",
                         choices=("lenet", "dtn"))
    task_init: str = _f("glorot_uniform", "Kernel init of f from scratch: Keras' default, or the release's "
                                          "xavier_normal_.",
                        choices=("glorot_uniform", "glorot_normal"))

    source = _override("uci", "E.g. uci, fonts, mnist, usps, svhn, tfds:<name>.")
    target = _override("uci_m", "E.g. uci_m, mnist, usps, tfds:<name>.")
    task_optimizer = _note("Paper: Adam.")
    source_epochs = _override(30, "Paper: 100; 30 suffices on the 900 embedded digits.")
    source_batch_size = _override(128, "Paper: 128.")
    source_lr = _override(1e-4, "Paper: 1e-4 (Adam).")
    pixel_epochs = _override(10, "Paper: 50; 10 keeps the embedded run within 15 minutes on 2 CPU cores.")
    pixel_batch_size = _override(32, "Paper: 100; 32 gives 3x the updates for the same compute on small data.")
    gan_mode = _override("log")
    cycle_weight = _override(1.0, "Paper: equal weights.")
    semantic_weight = _override(1.0)
    generator_width = _override(32)
    discriminator_width = _override(32)
    discriminator_norm = _override("none")
    translations_per_image = _override(3, "Each with its own style code z.")
    target_epochs = _override(30)
    feature_epochs = _override(10, "Paper: 200.")
    feature_batch_size = _override(128)
    feature_optimizer = _note("Paper: Adam.")
    feature_lr = _override(1e-5, "Paper: 1e-5 (Adam).")
    final_reverse_steps = _override(500)
    gate_window = _override(1, "Paper: 1, the last batch.")
    self_train_epochs = _override(4)
    self_train_method = _override("adamatch")
    self_train_steps_per_epoch = _override(250)
    self_train_batch_size = _override(64, "AdaMatch: 64.")
    self_train_target_ratio = _override(3, "AdaMatch's uratio: 3.")
    self_train_lr = _override(3e-4)
    self_train_view = _override("target")
    oracle_epochs = _override(30)
    verbose = _override(2)


@_task_config
class SegmentationConfig(Config):
    """`python -m cycada_tf.experiments.segmentation`. Defaults: the embedded road-scene demo on a CPU
    (small FCN, small CycleGAN); experiments/*.flags hold the paper's settings (appendix 6.1.2)."""
    TASK = "segmentation"
    model: str = _f("small_fcn", "Segmenter: small_fcn (embedded demo), fcn8s (VGG16-FCN8s) or drn26 (DRN-C-26).",
                    choices=("small_fcn", "fcn8s", "drn26"))
    backbone_weights: str = _f("", "fcn8s/drn26 backbone: imagenet (Keras' cache), a local weights file, or "
                                   "empty: random init (docs/segmentation.md).")
    model_width: int = _f(32, "small_fcn: filters of its first layer.", **POSITIVE)
    width: int = _f(0, "Width the data was prepared at (paper: 1024), checked; with --train_short_side, "
                       "the pixel stage's, resized to. 0: any.", **NON_NEGATIVE)
    train_short_side: int = _f(0, "Task and feature stages resize images to this short side (release: 1024; "
                                  "docs/segmentation.md). 0: as prepared.", **NON_NEGATIVE)
    eval_resolution: str = _f("train", "Score on labels at the training resolution, or as prepared (native: "
                                       "logits upsampled bilinearly to them).", choices=("train", "native"))
    crop_size: tuple = _f((64, 128), "Random training crop height,width of the task-model stages (paper: "
                                     "400,400); the embedded images are 64x128.", **CROP)
    pixel_crop_size: tuple = _f((64, 64), "Random training crop height,width of pixel adaptation (paper: "
                                          "silent; CycleGAN: 256,256).", **CROP)
    feature_crop_size: tuple = _f((64, 128), "Random crop height,width of feature adaptation (paper: 768,768; "
                                             "no larger than the image).", **CROP)
    feature_recipe: str = _f("paper", "release: D_feat's reference is f_T, not the frozen f_S (needs "
                                      "--feature_layer=logits, --feature_task_weight>0).",
                             choices=("paper", "release"))
    eval_split: str = _f("test", "Split every score is measured on (cityscapes: val); a dataset without it "
                                 "gets no score.")
    eval_batch_size: int = _f(50, "Images per evaluation batch at full resolution (1 when image sizes vary).",
                              **POSITIVE)
    generator_blocks: int = _f(3, "Residual blocks of the generator (CycleGAN: 9).", **NON_NEGATIVE)
    generator_downsamplings: int = _f(2, "Stride-2 convolutions of the generator (CycleGAN: 2).", **NON_NEGATIVE)
    discriminator_layers: int = _f(3, "Stride-2 layers of the PatchGAN (CycleGAN: 3, 70x70 patches).", **POSITIVE)
    fcn8s_skip_scaling: bool = _f(False, "fcn8s: pool4 x0.01 and pool3 x0.0001 before their score layers (FCN's "
                                         "at-once model, the release).")

    source = _override("roads_game", "E.g. roads_game (embedded), gta5, synthia_fall.")
    target = _override("roads_camera", "E.g. roads_camera (embedded), cityscapes, synthia_winter.")
    task_optimizer = _note("Paper: SGD, momentum 0.9, lr 1e-3.")
    source_epochs = _override(10, "Paper: 100k iterations of one crop.")
    source_batch_size = _override(16, "Paper: 1 crop per step.")
    source_lr = _override(1e-3, "Paper: 1e-3 with SGD.")
    pixel_epochs = _override(5, "Paper: 20.")
    pixel_batch_size = _override(4, "Paper: 1.")
    gan_mode = _override("lsgan", "Paper: lsgan (CycleGAN's).")
    cycle_weight = _override(10.0, "CycleGAN: 10.")
    semantic_weight = _override(0.0, "Paper: 0 (for memory).")
    generator_width = _override(16, "A ResNet generator (CycleGAN: 64).")
    discriminator_width = _override(16, "A PatchGAN (CycleGAN: 64).")
    discriminator_norm = _override("instance")
    translations_per_image = _override(1)
    target_epochs = _override(10)
    feature_epochs = _override(3)
    feature_batch_size = _override(8, "Paper: 1.")
    feature_optimizer = _note("Paper: SGD, momentum 0.99, lr 1e-5.")
    feature_gan_mode = _override("lsgan", "Flagfiles: log.")
    feature_lr = _override(1e-4, "Paper: 1e-5 with SGD (docs/results.md).")
    gate_window = _override(100, "Paper: 100.")
    final_reverse_steps = _override(300)
    self_train_epochs = _override(20)
    self_train_method = _override("dacs")
    self_train_steps_per_epoch = _override(100)
    self_train_batch_size = _override(8)
    self_train_target_ratio = _override(1)
    self_train_lr = _override(1e-4)
    self_train_guide_steps = _override(1000, "Half the stage.")
    self_train_confidence = _note("Segmentation: per class.")
    self_train_view = _override("target")
    oracle_epochs = _override(10)
    verbose = _override(0)


TASKS = {cls.TASK: cls for cls in (DigitsConfig, SegmentationConfig)}


def rerun_fields(cls=Config):
    """The fields of `cls` that do not change what a run computes: a run directory may be continued with other
    values of them (resume.check_run_config)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("rerun"))


def to_json(config):
    """The config as JSON values (tuples as lists) and its task: what results.json and config.json hold."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    return {"task": config.TASK, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()}}


def from_json(values, cls=None):
    """The config of to_json's `values`, of the class its "task" names; `cls` for files written before the
    task was recorded (default DigitsConfig). Keys that are no field of the class are ignored (fields added
    since take their defaults, which are the behaviour of the runs made before)."""
    task = values.get("task")
    if task is not None:
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r} in the config (known: {', '.join(TASKS)})")
        if cls is not None and not issubclass(TASKS[task], cls):
            raise ValueError(f"the config is of a {task} run, not a {cls.__name__}")
        cls = TASKS[task]
    cls = cls or DigitsConfig
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in fields})


def help_of(field_name, cls=DigitsConfig):
    """The help of `field_name`'s flag in the experiment of `cls` (Config's help and the task's note)."""
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}[field_name]
