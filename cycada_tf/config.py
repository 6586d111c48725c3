"""The experiment configuration: one dataclass, whose defaults are the paper's values (appendix 6.1.1)
unless a comment says why not. The absl flags of the experiment mains are generated from it."""

import dataclasses


@dataclasses.dataclass
class DigitsConfig:
    source: str = "uci"
    target: str = "uci_m"
    data_dir: str = "data"
    run_dir: str = ""                 # default: runs/<source>_to_<target>
    seeds: tuple = (0,)
    stages: tuple = ("source", "pixel", "target", "feature", "oracle")
    image_size: int = 32
    channels: int = 3
    # Source model (Eq. 1): Adam 1e-4, batch 128, 100 epochs in the paper.
    source_epochs: int = 100
    source_batch_size: int = 128
    source_lr: float = 1e-4
    # Pixel adaptation (Eq. 2-4): Adam 2e-4, batch 100, 50 epochs, equal weights.
    pixel_epochs: int = 50
    pixel_batch_size: int = 100
    pixel_lr: float = 2e-4
    pixel_beta_1: float = 0.5          # CycleGAN's Adam beta_1, whose learning rate the paper takes
    gan_mode: str = "log"              # Eq. 2 as written; "lsgan" is CycleGAN's least-squares form
    gan_weight: float = 1.0
    cycle_weight: float = 1.0
    semantic_weight: float = 1.0
    pool_size: int = 50                # CycleGAN's image history
    generator_width: int = 32
    noise_channels: int = 0
    discriminator_width: int = 64
    translations_per_image: int = 1    # translated copies of each source image for the target model
    # Target model on translated source (Eq. 1 on G_S->T(X_S)), same recipe as the source model.
    target_epochs: int = 100
    # Feature adaptation (Eq. 5): Adam 1e-5, at most 200 epochs, 60% gate.
    feature_epochs: int = 200
    feature_batch_size: int = 128
    feature_lr: float = 1e-5
    feature_layer: str = "features"
    # Target-trained oracle: same recipe as the source model, on labelled target data (report only).
    oracle_epochs: int = 100
    verbose: int = 2
