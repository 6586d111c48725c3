"""The experiment configuration: one dataclass whose fields carry the help text of their absl flags. Defaults
are the paper's values (appendix 6.1.1) unless the help says why not."""

import dataclasses


def _f(default, help):  # noqa: A002 - the flag's help text
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default_factory=lambda: tuple(default), metadata={"help": help})
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass
class RunOptions:
    """Fields of every experiment (digits and segmentation): how it runs and what it writes besides the
    results, not what it computes (but --precision)."""
    strategy: str = _f(
        "auto", "tf.distribute strategy: auto (multi_worker when the TF_CONFIG environment variable names 2 or "
                "more workers, else MirroredStrategy on a host with several GPUs, else one device), one_device, "
                "mirrored (every GPU of the host, else every logical CPU), or multi_worker "
                "(MultiWorkerMirroredStrategy over the cluster in TF_CONFIG; every worker runs the same command, "
                "only the chief writes --run_dir). Batch-size flags are global: each replica takes its share.")
    worker_dir: str = _f(
        "", "--strategy=multi_worker only: where a worker other than the chief writes its own copies of each "
            "stage's files (checkpoints, summaries, weights), under <worker_dir>/<task>/, kept for inspection; "
            "default: a temporary directory, deleted when the run ends.")
    precision: str = _f(
        "auto", "Numeric precision of the networks: auto (mixed_bfloat16 on CPUs with AVX512-BF16 or AMX and on "
                "GPUs of compute capability 8.0+, float32 elsewhere; the choice is logged), float32, "
                "mixed_bfloat16 or mixed_float16 (GPUs, with loss scaling); variables, checkpoints, losses and "
                "the feature gate stay float32. One value for every stage, then optional exceptions: "
                "mixed_bfloat16,source=float32.")
    jit_compile: str = _f(
        "auto", "XLA compilation of the train steps: auto (on a single GPU, off on CPUs, where it measured "
                "slower), true or false; per-stage exceptions as for --precision (auto,pixel=true).")
    download: bool = _f(
        True, "Download a public dataset (mnist, usps, svhn, mnist_m) that is not prepared in --data_dir into "
              "<data_dir>/raw, check its SHA-256 and prepare it; --nodownload only prepares files placed there "
              "by hand (the error names them and their URLs). Segmentation datasets are never downloaded.")
    export_dir: str = _f(
        "", "If set, the first seed's adapted model (the digit classifier, or the segmenter) and both "
            "translators are exported there after the run, as TF Serving models <export_dir>/<model>/<version>/ "
            "(tools/export.py exports an existing run).")
    accept_lr_change: bool = _f(
        False, "Continue a run directory with other learning rates (--*_lr) than it was made with, e.g. a "
               "lower one after a non-finite loss: the unfinished stage resumes from its last good checkpoint "
               "at the new rate; <run_dir>/config.json records the change in its history. Other changed "
               "flags are still refused.")


@dataclasses.dataclass
class DigitsConfig(RunOptions):
    source: str = _f("uci", "Source dataset (labelled), e.g. uci, fonts, mnist, usps, svhn, tfds:svhn_cropped.")
    target: str = _f("uci_m", "Target dataset (its labels are read only to report accuracy).")
    data_dir: str = _f("data", "Directory of prepared TFRecords (embedded domains are built there on first use).")
    run_dir: str = _f("", "Where checkpoints, translations and results go; default runs/<source>_to_<target>.")
    seeds: tuple = _f((0,), "Seeds; every table number is the mean +- standard error over them.")
    stages: tuple = _f(("source", "pixel", "target", "feature", "self_train", "oracle"),
                       "Stages to run, in this order: source, pixel, target, feature, self_train (AdaMatch, not "
                       "in the paper), oracle.")
    image_size: int = _f(32, "Image side inside the networks (28 for MNIST<->USPS, 32 for SVHN->MNIST).")
    channels: int = _f(3, "Channels inside the networks: 1 (grey) or 3 (RGB); images are converted.")
    source_epochs: int = _f(30, "Source model epochs (paper: 100; 30 suffices on the 900 embedded digits).")
    source_batch_size: int = _f(128, "Batch size of every task-model stage (paper: 128).")
    source_lr: float = _f(1e-4, "Adam learning rate of every task-model stage (paper: 1e-4).")
    pixel_epochs: int = _f(10, "Pixel adaptation epochs over the larger domain (paper: 50; 10 keeps the "
                                "embedded run within 15 minutes on 2 CPU cores).")
    pixel_batch_size: int = _f(32, "Pixel adaptation batch size per domain (paper: 100; 32 gives 3x the "
                                    "updates for the same compute on small data).")
    pixel_lr: float = _f(2e-4, "Adam learning rate of generators and discriminators (paper: 2e-4).")
    pixel_beta_1: float = _f(0.5, "Adam beta_1 of the pixel stage (CycleGAN's, whose learning rate the paper uses).")
    gan_mode: str = _f("log", "GAN objective: log (Eq. 2 as written) or lsgan (CycleGAN's least squares).")
    gan_weight: float = _f(1.0, "Weight of each GAN term (paper: equal weights).")
    cycle_weight: float = _f(1.0, "Weight of the cycle-consistency loss, Eq. 3 (paper: equal weights).")
    semantic_weight: float = _f(1.0, "Weight of Eq. 4's source term: G_S->T(x_s) keeps f_S's label of x_s.")
    semantic_t2s_weight: float = _f(
        0.0, "Weight of Eq. 4's target term: G_T->S(x_t) keeps f_S's label of x_t (paper: 1). Off by default: "
             "it ties G_T->S to f_S's mistakes on the target domain (measured on uci->uci_m: f_S(G_T->S(x_t)) "
             "57% with it, 75% without; source only 57%).")
    pool_size: int = _f(50, "Image history shown to the discriminators (CycleGAN: 50); 0 turns it off.")
    generator_width: int = _f(32, "Filters of the generator's first convolution.")
    noise_channels: int = _f(8, "Dimensions of a style code z given to G_S->T (0: deterministic, as the paper).")
    discriminator_width: int = _f(32, "Filters of the image discriminator's first convolution.")
    minibatch_std: bool = _f(True, "Give the image discriminators the batch's feature std (against collapse).")
    discriminator_norm: str = _f("none", "Image discriminator normalisation: none, or instance (CycleGAN); "
                                         "instance norm hides each image's colours from the discriminator.")
    pixel_direction: str = _f(
        "auto", "How the target model uses the translators: s2t (paper) trains it on G_S->T(X_S) and gives it "
                "target images; t2s gives it G_T->S(x_t) and trains it on G_T->S(G_S->T(X_S)); auto chooses "
                "after the pixel stage without target labels: t2s when the source model is more decisive "
                "(information maximisation) on G_T->S(x_t) than on x_t, else s2t (Run.choose_direction). "
                "Measured on the development pairs: uci->uci_m is better in t2s, fonts->uci in s2t.")
    translations_per_image: int = _f(3, "Translated copies of each source image for the target model "
                                        "(different style codes z).")
    target_epochs: int = _f(30, "Epochs of the target model on translated source images (source recipe).")
    feature_epochs: int = _f(10, "Feature adaptation epochs at most (paper: 200); the gate may end it sooner.")
    feature_batch_size: int = _f(128, "Feature adaptation batch size per domain.")
    feature_lr: float = _f(1e-5, "Adam learning rate of feature adaptation (paper: 1e-5).")
    feature_min_steps_per_epoch: int = _f(
        100, "An epoch of feature adaptation (the gate's stop window) is one pass over the target training "
             "set or this many iterations, whichever is longer: on small data a pass is too short for a "
             "discriminator at lr 1e-5 to ever reach the gate (MNIST's pass is ~470 iterations).")
    feature_layer: str = _f("features", "What D_feat sees: features (paper, the 500-d layer) or logits (code).")
    self_train_epochs: int = _f(4, "Epochs of self-training (AdaMatch, after the feature stage).")
    self_train_steps_per_epoch: int = _f(250, "Iterations of a self-training epoch (its checkpoint interval).")
    self_train_batch_size: int = _f(64, "Labelled images per self-training step (AdaMatch: 64).")
    self_train_target_ratio: int = _f(3, "Unlabelled target images per labelled image in a self-training step "
                                         "(AdaMatch's uratio: 3).")
    self_train_lr: float = _f(3e-4, "Adam learning rate of self-training.")
    self_train_confidence: float = _f(0.9, "AdaMatch's relative confidence threshold tau: a target image's "
                                           "pseudo-label counts when its confidence is at least tau times the "
                                           "mean confidence on the labelled batch (AdaMatch: 0.9).")
    self_train_target_weight: float = _f(1.0, "Weight of the pseudo-label term of self-training.")
    self_train_init: str = _f("feature", "The model self-training starts from: feature (CyCADA's f_T), target "
                                         "or source (f_S).")
    self_train_view: str = _f("target", "What self-training reads: target (source and target images as they "
                                        "are, the final model too) or init (as its init model reads them: "
                                        "under t2s G_T->S(x_t) and the translated source records). Measured "
                                        "on uci->uci_m: target 88.2%, init ~64% (f_T's translated view "
                                        "caps it).")
    oracle_epochs: int = _f(30, "Epochs of the target-trained oracle (labelled target data; reported only).")
    verbose: int = _f(2, "Keras fit verbosity: 0 silent, 1 progress bar, 2 one line per epoch (a progress "
                         "line with the time left is logged after each epoch at every verbosity).")
    summary_every_epochs: int = _f(5, "Epochs between TensorBoard image summaries (translation grids, target "
                                      "test confusion matrices), and after the last; scalars go every epoch to "
                                      "<run_dir>/seed_<k>/<stage>/tb. 0: no TensorBoard summaries.")


def to_json(config):
    """The config as JSON values (tuples as lists): what results.json and a run directory's config.json hold."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in vars(config).items()}


def from_json(values, cls=DigitsConfig):
    """The config of to_json's `values`; keys that are no field of `cls` are ignored (fields added since take
    their defaults)."""
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in fields})


def help_of(field_name, cls=DigitsConfig):
    return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}[field_name]


@dataclasses.dataclass
class SegmentationConfig(RunOptions):
    """`python -m cycada_tf.experiments.segmentation`. Defaults: the embedded road-scene demo on a CPU
    (small FCN, small CycleGAN); experiments/*.flags hold the paper's settings (appendix 6.1.2)."""
    source: str = _f("roads_game", "Source dataset (labelled): roads_game (embedded), gta5, synthia_fall.")
    target: str = _f("roads_camera", "Target dataset (its labels are read only to report mIoU): roads_camera "
                                     "(embedded), cityscapes, synthia_winter.")
    data_dir: str = _f("data", "Directory of prepared TFRecords (embedded domains are built there on first use).")
    run_dir: str = _f("", "Where checkpoints, translations and results go; default runs/<source>_to_<target>.")
    seeds: tuple = _f((0,), "Seeds; every table number is the mean +- standard error over them.")
    stages: tuple = _f(("source", "pixel", "target", "feature", "self_train", "oracle"),
                       "Stages to run, in this order: source, pixel, target, feature, self_train (AdaMatch per "
                       "pixel, not in the paper), oracle.")
    model: str = _f("small_fcn", "Segmenter: small_fcn (embedded demo), fcn8s (VGG16-FCN8s) or drn26 (DRN-C-26).")
    backbone_weights: str = _f("", "fcn8s/drn26: ImageNet backbone weights, a local file, 'imagenet' (Keras "
                                   "download when online) or empty (random init, with a warning).")
    model_width: int = _f(32, "small_fcn: filters of its first layer.")
    width: int = _f(0, "Image width the data was prepared at (tools/prepare_data.py --width; paper: 1024); "
                       "checked against the prepared data. 0: any.")
    crop_size: tuple = _f((64, 128), "Random training crop height,width of the task-model stages (paper: "
                                     "400,400); the embedded images are 64x128.")
    pixel_crop_size: tuple = _f((64, 64), "Random training crop height,width of pixel adaptation (the paper "
                                          "does not say; CycleGAN: 256,256); half the embedded image halves "
                                          "the cost of the most expensive stage.")
    feature_crop_size: tuple = _f((64, 128), "Random crop height,width of feature adaptation (paper: 768,768; "
                                             "images smaller than the crop are padded).")
    eval_split: str = _f("test", "Split every score is measured on (cityscapes: val). A dataset without it is "
                                 "scored on nothing (the source) or shown from its train split (figures).")
    eval_batch_size: int = _f(50, "Images per evaluation batch at full resolution (1 when image sizes vary).")
    task_optimizer: str = _f("adam", "Optimizer of the task-model stages: adam, or sgd (paper: SGD, momentum "
                                     "0.9, lr 1e-3).")
    source_epochs: int = _f(10, "Epochs of the source model (paper: 100k iterations of one crop).")
    source_batch_size: int = _f(16, "Batch size of every task-model stage (paper: 1 crop per step).")
    source_lr: float = _f(1e-3, "Learning rate of every task-model stage (paper: 1e-3 with SGD).")
    momentum: float = _f(0.9, "Momentum of --task_optimizer=sgd (paper: 0.9).")
    pixel_epochs: int = _f(5, "Pixel adaptation epochs over the larger domain (paper: 20).")
    pixel_batch_size: int = _f(4, "Pixel adaptation batch size per domain (paper: 1).")
    pixel_lr: float = _f(2e-4, "Adam learning rate of generators and discriminators (CycleGAN: 2e-4).")
    pixel_beta_1: float = _f(0.5, "Adam beta_1 of the pixel stage (CycleGAN: 0.5).")
    gan_mode: str = _f("lsgan", "GAN objective: lsgan (CycleGAN's least squares, whose recipe the paper "
                                "follows for segmentation) or log (Eq. 2 as written).")
    gan_weight: float = _f(1.0, "Weight of each GAN term.")
    cycle_weight: float = _f(10.0, "Weight of the cycle-consistency loss, Eq. 3 (CycleGAN: 10).")
    semantic_weight: float = _f(0.0, "Weight of Eq. 4's source term, per pixel through the frozen f_S (the "
                                     "paper omitted Eq. 4 for segmentation, for memory; available here).")
    semantic_t2s_weight: float = _f(0.0, "Weight of Eq. 4's target term: G_T->S(x_t) keeps f_S's labels of x_t.")
    pool_size: int = _f(50, "Image history shown to the discriminators (CycleGAN: 50); 0 turns it off.")
    generator_width: int = _f(16, "Filters of the ResNet generator's first convolution (CycleGAN: 64).")
    generator_blocks: int = _f(3, "Residual blocks of the generator (CycleGAN: 9).")
    generator_downsamplings: int = _f(2, "Stride-2 convolutions of the generator (CycleGAN: 2).")
    discriminator_width: int = _f(16, "Filters of the PatchGAN's first convolution (CycleGAN: 64).")
    discriminator_layers: int = _f(3, "Stride-2 layers of the PatchGAN (CycleGAN: 3, 70x70 patches).")
    discriminator_norm: str = _f("instance", "PatchGAN normalisation: instance (CycleGAN) or none.")
    pixel_direction: str = _f("auto", "s2t (paper): the target model learns from G_S->T(X_S) and reads target "
                                      "images; t2s: it reads G_T->S(x_t) and learns from G_T->S(G_S->T(X_S)); "
                                      "auto: chosen after the pixel stage without target labels (as the "
                                      "digits' --pixel_direction).")
    translations_per_image: int = _f(1, "Translated copies of each source image for the target model.")
    target_epochs: int = _f(10, "Epochs of the target model on translated source images (source recipe).")
    feature_epochs: int = _f(3, "Feature adaptation epochs at most (the gate may end it sooner).")
    feature_batch_size: int = _f(8, "Feature adaptation batch size per domain (paper: 1).")
    feature_optimizer: str = _f("adam", "Optimizer of feature adaptation: adam (beta_1 0.5) or sgd (paper: SGD, "
                                        "momentum 0.99, lr 1e-5).")
    feature_lr: float = _f(1e-4, "Learning rate of feature adaptation (paper: 1e-5; at 1e-5 the embedded run's "
                                 "discriminator stayed under the gate for the whole first epoch, so the stage "
                                 "changed nothing).")
    feature_momentum: float = _f(0.99, "Momentum of --feature_optimizer=sgd (paper: 0.99).")
    feature_min_steps_per_epoch: int = _f(100, "An epoch of feature adaptation (the gate's stop window) is a "
                                               "pass over the target training set or this many iterations.")
    feature_layer: str = _f("features", "What D_feat sees: features (the segmenter's 'features' map) or logits "
                                        "(the score map).")
    gate_window: int = _f(100, "The gate reads the discriminator accuracy over this many last iterations "
                               "(appendix 6.1: 100 for segmentation).")
    self_train_epochs: int = _f(3, "Epochs of self-training (AdaMatch per pixel, after the feature stage).")
    self_train_steps_per_epoch: int = _f(100, "Iterations of a self-training epoch (its checkpoint interval).")
    self_train_batch_size: int = _f(8, "Labelled crops per self-training step.")
    self_train_target_ratio: int = _f(2, "Unlabelled target crops per labelled crop in a self-training step.")
    self_train_lr: float = _f(1e-4, "Adam learning rate of self-training.")
    self_train_confidence: float = _f(0.9, "Relative confidence threshold tau of self-training, per class: a "
                                           "pixel's pseudo-label counts when its confidence is at least tau "
                                           "times the model's mean confidence on labelled pixels of that class.")
    self_train_target_weight: float = _f(1.0, "Weight of the pseudo-label term of self-training.")
    self_train_init: str = _f("feature", "The model self-training starts from: feature (CyCADA's f_T), target "
                                         "or source (f_S).")
    self_train_view: str = _f("init", "What self-training reads: init (as its init model reads them: under "
                                      "t2s G_T->S(x_t) and the translated source records) or target (source "
                                      "and target images as they are). On the road scenes, target lost half of "
                                      "f_T's mIoU (seed 0: 59.4 -> 31.3).")
    oracle_epochs: int = _f(10, "Epochs of the target-trained oracle (labelled target data; reported only).")
    verbose: int = _f(0, "Keras fit verbosity (a progress line with the time left is logged after each epoch).")
    summary_every_epochs: int = _f(5, "Epochs between TensorBoard image summaries (translations, prediction "
                                      "overlays), and after the last; 0: no TensorBoard summaries.")
