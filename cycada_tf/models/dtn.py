"""The digit task net of the authors' release for SVHN -> MNIST (its "DTN"), offered as --task_model=dtn: three
5x5 stride-2 convolutions of 64, 128 and 256 filters, each with batch norm, ReLU and dropout, then a 512-d
fully connected layer with batch norm, ReLU and dropout (the features D_feat sees), then the class logits.
The paper's text names the LeNet of Figure 7 (lenet.py) for every digit shift; its SVHN -> MNIST numbers may
come from this network. Pixels are in [-1, 1]; 28x28 and 32x32 inputs both end in a 4x4x256 map.

Batch statistics, stage by stage (the networks are called as the stages call every task net):
- source, target, oracle: one domain per batch, in training mode: the moving statistics are that domain's
  (the target model's: translated source images).
- pixel: f_S is frozen (trainable=False), so Keras runs its batch norm in inference mode.
- feature: f_ref and f_T embed their batches separately and, by default, both in inference mode
  (stages/feature.py, for dropout's sake): the moving statistics of the target stage normalise both domains
  alike, D_feat sees the features exactly as the classifier will at test time, and the stage changes no
  moving statistic, only the weights (and batch norm's scale and offset) of f_T's encoder. Normalising target
  batches by their own statistics instead would align the first two moments by itself (AdaBN), out of
  D_feat's sight. That is what --feature_dropout does to f_T (training mode: each target batch normalised by
  its own statistics, which its moving statistics then follow), while the frozen f_ref stays in inference
  mode.
- self_train: source and both target views go through the net as one concatenated batch in training mode
  (AdaMatch's combined pass), so its statistics mix the domains, mostly target (--self_train_target_ratio).
Under a multi-replica strategy each replica normalises its own share of the batch (no synchronised batch
norm).
"""

import keras
from keras import layers

from cycada_tf.models.layers import batch_norm, sequential
from cycada_tf.models.lenet import EncoderClassifier

FEATURE_DIM = 512  # width of the fully connected layer before the logits: the features D_feat sees
FILTERS = (64, 128, 256)
CONV_DROPOUT = (0.1, 0.3, 0.5)  # the release's channel dropout after each convolution, growing with depth
# Batch norm with PyTorch's defaults (layers.batch_norm), which the release trained with: the moving statistics
# move 0.1 of the way to the batch's each step. Keras' default (0.99) would leave 12% of the initial statistics
# in them after the 210 steps of the embedded source model (30 epochs of 7).


@keras.saving.register_keras_serializable("cycada_tf")
class DTN(EncoderClassifier):
    """`features(x)` is the 512-d representation, `call(x)` the class logits; `encoder` and `classifier`
    as in lenet.LeNet (stages/feature.py adapts the encoder). The convolutions and fc1 have no bias: the
    batch norm after each adds its own offset."""

    feature_dim = FEATURE_DIM

    def __init__(self, num_classes=10, dropout=0.5, conv_dropout=CONV_DROPOUT, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.dropout, self.conv_dropout = num_classes, dropout, tuple(conv_dropout)
        dtype, blocks = self.dtype_policy, []  # its layers compute in its own precision (the `dtype` it is given)
        for index, (filters, rate) in enumerate(zip(FILTERS, self.conv_dropout), start=1):
            blocks += [layers.Conv2D(filters, 5, strides=2, padding="same", use_bias=False, name=f"conv{index}",
                                     dtype=dtype),
                       batch_norm(f"bn{index}", dtype), layers.ReLU(dtype=dtype),
                       layers.SpatialDropout2D(rate, dtype=dtype)]
        self.encoder = sequential(blocks + [
            layers.Flatten(dtype=dtype),
            layers.Dense(FEATURE_DIM, use_bias=False, name="fc1", dtype=dtype),
            batch_norm("bn_fc1", dtype), layers.ReLU(dtype=dtype),
            layers.Dropout(dropout, dtype=dtype),
        ], "encoder", dtype)
        self.classifier = layers.Dense(num_classes, name="logits", dtype=dtype)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "dropout": self.dropout,
                "conv_dropout": list(self.conv_dropout)}
