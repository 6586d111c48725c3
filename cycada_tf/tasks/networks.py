"""What the stages build of a task (part of tasks/base.Task's contract): the task network f, its optimizers, the
translators and the discriminators of its kind of data.

Every network is built in the precision it is given: `dtype`, a Keras dtype policy name ("float32",
"mixed_bfloat16", "mixed_float16"; None: Keras' default, float32), goes to each of its layers. The stage that
builds a network passes its own --precision (stages/trial.Trial.dtype); Keras' global policy is never set."""

import abc

from cycada_tf.train import weight_decay


class Networks(abc.ABC):
    """The task's networks; reads the task's config."""

    def network(self, weights=None, dtype=None):
        """A new task network (classifier, segmenter) computing in `dtype`, with `weights` (a .weights.h5
        file) if given."""
        net = self.build_network(from_scratch=weights is None, dtype=dtype)
        if weights:
            net.load_weights(weights)
        return net

    def optimizer(self, kind, decayed=False):
        """The optimizer of the task-model stages (kind "task": --task_optimizer, --source_lr, --momentum) or of
        the stage whose flags `kind` prefixes (--<kind>_optimizer, _lr, _momentum, _beta_1, _beta_2): adam, or
        sgd with momentum; `decayed`: with --weight_decay (PyTorch's kind, train/weight_decay.py)."""
        c = self.config
        name, lr = getattr(c, f"{kind}_optimizer"), getattr(c, "source_lr" if kind == "task" else f"{kind}_lr")
        decay = c.weight_decay if decayed else 0.0
        if name == "sgd":
            momentum = c.momentum if kind == "task" else getattr(c, f"{kind}_momentum")
            return weight_decay.optimizer("sgd", decay, learning_rate=lr, momentum=momentum)
        if name != "adam":
            raise ValueError(f"--{kind}_optimizer must be adam or sgd, got {name!r}")
        if kind == "task":
            return weight_decay.optimizer("adam", decay, learning_rate=lr)
        return weight_decay.optimizer("adam", decay, learning_rate=lr, beta_1=getattr(c, f"{kind}_beta_1"),
                                      beta_2=getattr(c, f"{kind}_beta_2"))

    @abc.abstractmethod
    def build_network(self, from_scratch=True, dtype=None):
        """A new task network f (classifier, segmenter), built, computing in `dtype`; `from_scratch`: with its
        backbone's pretrained weights, if it has any (False: weights will be loaded into it)."""

    @abc.abstractmethod
    def generators(self, dtype=None):
        """The pixel stage's new translators (g_st, g_ts), Keras models from images to images, computing in
        `dtype`."""

    def applied(self, generator):
        """A translator as the stages apply it to whole images (segmentation: of any size)."""
        return generator

    @abc.abstractmethod
    def image_discriminator(self, name, dtype=None):
        """A new image discriminator (d_s or d_t, its `name`) computing in `dtype`: images -> real/fake
        logits (float32)."""

    @abc.abstractmethod
    def feature_discriminator(self, dtype=None):
        """A new D_feat (Eq. 5) for what --feature_layer feeds it, computing in `dtype`: features -> domain
        logits (float32)."""

    @abc.abstractmethod
    def feature_options(self, f_ref, f_t):
        """FeatureAdaptation's task-specific keyword arguments (dict) for the networks `f_ref` and `f_t`."""

    @abc.abstractmethod
    def pixel_options(self):
        """PixelAdaptation's task-specific keyword arguments (dict)."""
