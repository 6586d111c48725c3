"""What both tasks share (tensorflow/models' base_task in spirit): a task is composed into the runner and the
stages, never subclassed by them. It builds the networks, gives the inputs, scores a network on a split, and
names the serving modules and draws the figures of its kind of data (tasks/digits.py, tasks/segmentation.py).

The stages ask a task for everything that differs between digits and road scenes; they never ask what task
it is."""

import keras
import numpy as np
import tensorflow as tf

from cycada_tf import label_free, metrics, selection
from cycada_tf.data import pipeline, registry

SELECTION_BATCHES = 20  # batches of 100 target training images the label-free criteria read, at most
SELECTION_BATCH = 100


class Task:
    """The data of one experiment (--source, --target and --data_dir) and the networks of its kind."""

    name = None
    score_key = None      # the key of done.json the table's rows and the decisions' oracle read
    ignore_label = None   # label of the examples (pixels) L_task skips; None: every example counts
    rows = ()             # (stage, key of its done.json, row label) of the results table
    eval_batch_size = 500

    def __init__(self, config):
        self.config = c = config
        self.source_spec, self.target_spec = registry.get(c.source), registry.get(c.target)
        if self.target_spec.labelled and self.source_spec.classes != self.target_spec.classes:
            raise ValueError(class_mismatch(c.source, self.source_spec.classes, c.target, self.target_spec.classes))
        self.classes = self.source_spec.classes
        self.num_classes = self.source_spec.num_classes

    def check_data(self):
        """Refuse prepared data that does not fit the flags (a clear ValueError); called before a run starts."""
        c = self.config
        split = c.target_train_split
        if split == "train" or not set(c.stages) - {"source", "oracle"}:  # no stage reads unlabelled images
            return
        splits = pipeline.splits(c.target, c.data_dir)
        if split not in splits:
            hint = (" (Cityscapes: extract leftImg8bit_trainextra.zip beside leftImg8bit/train and run "
                    "tools/prepare_data.py --dataset=cityscapes again)" if c.target == "cityscapes" else "")
            raise ValueError(f"--target_train_split={split}: dataset '{c.target}' in {c.data_dir} has no split "
                             f"'{split}' (it has {', '.join(sorted(splits))}){hint}; or pass "
                             f"--target_train_split=train")

    def domain(self, domain):
        """--source or --target's dataset name of `domain` ("source", "target"), or a dataset name."""
        return {"source": self.config.source, "target": self.config.target}.get(domain, domain)

    def split(self, domain, split):
        """`split` of `domain`'s dataset; "unlabelled" is the split the unlabelled stages read: the target's
        --target_train_split (Cityscapes: train_extra in the paper), the source's train split."""
        if split != "unlabelled":
            return split
        return self.config.target_train_split if domain == "target" else "train"

    def count(self, domain, split):
        return pipeline.count(self.domain(domain), self.split(domain, split), self.config.data_dir)

    # --- scoring (target labels are read here for reporting only) ---------------------------------------
    def confusion(self, net, domain, translate=None, split="test"):
        """Counts of (true class, predicted class) of `net` (after `translate`, if given) on `split` (default
        the evaluation split) of `domain`; for segmentation per pixel at full resolution, the ignore label
        left out."""
        counts = np.zeros((self.num_classes, self.num_classes), np.int64)
        for x, y in self.inputs(domain, split, batch_size=self.eval_batch_size):
            if translate is not None:
                x = translate(x, training=False)
            counts += metrics.confusion_matrix(y, net(x, training=False), self.num_classes).numpy()
        return counts

    def scores(self, net, domain, translate=None, prefix="", suffix=""):
        """What a stage reports of `net` on the evaluation split of `domain`, as {prefix + key + suffix: value}.
        A dataset without labels gets label-free criteria instead (label_free.py)."""
        if not registry.get(self.domain(domain)).labelled:
            return label_free.scores(self, net, domain, translate, prefix, suffix)
        return {f"{prefix}{key}{suffix}": value for key, value in self.labelled_scores(net, domain, translate).items()}

    def information_maximisation(self, net, translate=None):
        """The label-free criterion (selection.py) of `net` (after `translate`) on the first batches of the
        target training images (no labels read)."""
        score = selection.InformationMaximisation()
        for x in self.inputs("target", "unlabelled", labels=False, batch_size=100).take(SELECTION_BATCHES):
            x = x if translate is None else translate(x, training=False)
            score.update(tf.nn.softmax(tf.cast(net(x, training=False), tf.float32)).numpy())
        return score.result()

    # --- the final model's criteria (selection/final.py, selection/reverse.py) ---------------------------
    reverse_batch_size = 64

    @property
    def reverse_steps(self):
        return self.config.final_reverse_steps

    def selection_images(self):
        """The raw target training images the label-free criteria read (no labels): the first
        SELECTION_BATCHES batches of the unlabelled split, as numpy batches; read once."""
        if getattr(self, "_selection_images", None) is None:
            self._selection_images = [x.numpy() for x in self.inputs(
                "target", "unlabelled", labels=False, batch_size=min(SELECTION_BATCH, self.eval_batch_size)
            ).take(SELECTION_BATCHES)]
        return self._selection_images

    def probabilities(self, net, x, view=None):
        """Class probabilities (float32 numpy) of `net` on the batch `x`, read through `view` if given."""
        x = x if view is None else view(x, training=False)
        return tf.nn.softmax(tf.cast(net(x, training=False), tf.float32)).numpy()

    def reverse_network(self):
        """The network reverse validation trains from scratch."""
        return self.build_network()

    def reverse_data(self, images, labels):
        """What reverse_batch draws from, of `images` and their `labels` (lists of batches alike)."""
        return np.concatenate(images), np.concatenate(labels).astype(np.int32)

    def reverse_batch(self, data, rng):
        """A training batch of reverse validation: reverse_batch_size examples of reverse_data's `data`, drawn
        with `rng` (numpy RandomState)."""
        images, labels = data
        pick = rng.randint(len(images), size=self.reverse_batch_size)
        return images[pick], labels[pick]

    def reverse_score(self, net, translate=None):
        """The score of reverse validation: `net`'s accuracy on the labelled source training images (read
        through `translate` if given)."""
        counts = self.confusion(net, "source", translate, split="train")
        return float(np.trace(counts) / max(counts.sum(), 1))

    # --- networks and optimizers -----------------------------------------------------------------------
    def network(self, weights=None):
        """A new task network (classifier, segmenter), with `weights` (a .weights.h5 file) if given."""
        net = self.build_network(from_scratch=weights is None)
        if weights:
            net.load_weights(weights)
        return net

    def optimizer(self, kind):
        """The optimizer of the task-model stages ("task") or of feature adaptation ("feature"), per
        --task_optimizer / --feature_optimizer: adam, or sgd with momentum."""
        c = self.config
        name, lr = getattr(c, f"{kind}_optimizer"), getattr(c, "source_lr" if kind == "task" else "feature_lr")
        if name == "sgd":
            return keras.optimizers.SGD(lr, momentum=c.momentum if kind == "task" else c.feature_momentum)
        if name != "adam":
            raise ValueError(f"--{kind}_optimizer must be adam or sgd, got {name!r}")
        if kind == "task":
            return keras.optimizers.Adam(lr)
        return keras.optimizers.Adam(lr, beta_1=c.feature_beta_1, beta_2=c.feature_beta_2)

    def applied(self, generator):
        """A translator as the stages apply it to whole images (segmentation: of any size)."""
        return generator


def class_mismatch(source, source_classes, target, target_classes):
    """The error of a source and a target whose classes differ, naming the classes on each side."""
    def listed(classes):
        return ", ".join(classes) if classes else "none"
    line = (f"--source={source} and --target={target} have different classes: source ({len(source_classes)}) "
            f"{listed(source_classes)}; target ({len(target_classes)}) {listed(target_classes)}")
    only_source = [k for k in source_classes if k not in target_classes]
    only_target = [k for k in target_classes if k not in source_classes]
    if only_source or only_target:
        return line + f" (only in the source: {listed(only_source)}; only in the target: {listed(only_target)})"
    return line + " (the same names in another order: class ids follow the order)"
