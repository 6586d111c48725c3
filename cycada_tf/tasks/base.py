"""The contract of a task (tensorflow/models' base_task in spirit): a task is composed into the runner and the
stages, never subclassed by them. It builds the networks, gives the inputs, scores a network on a split, and
names the serving modules and draws the figures of its kind of data (tasks/digits.py, tasks/segmentation.py).

Task declares every method the stages, the runner, the trial, selection, the report, the results and the
export call, each abstract one with its Args/Returns, in four parts: the data and the scores here, the
networks in networks.py, the final model's criteria in criteria.py (shared), the figures, tables and serving
modules in reporting.py. A task implements the abstract ones; those both tasks share are implemented there.
The stages ask a task for everything that differs between digits and road scenes; they never ask what task
it is."""

import abc

import numpy as np
import tensorflow as tf

from cycada_tf.reporting import results, segmentation_metrics as metrics, unlabelled_target as label_free
from cycada_tf import selection
from cycada_tf.data import pipeline, registry
from cycada_tf.stages import registry as stage_registry
from cycada_tf.tasks.criteria import SELECTION_BATCHES, FinalModelCriteria
from cycada_tf.tasks.networks import Networks
from cycada_tf.tasks.reporting import Reporting


class Task(Networks, FinalModelCriteria, Reporting):
    """The data of one experiment (--source, --target and --data_dir) and the networks of its kind."""

    ignore_label = None   # label of the examples (pixels) L_task skips; None: every example counts
    eval_batch_size = 500

    def __init__(self, config):
        self.config = c = config
        self.source_spec, self.target_spec = registry.get(c.source), registry.get(c.target)
        if self.target_spec.labelled and self.source_spec.classes != self.target_spec.classes:
            raise ValueError(class_mismatch(c.source, self.source_spec.classes, c.target, self.target_spec.classes))
        self.classes = self.source_spec.classes
        self.num_classes = self.source_spec.num_classes

    @property
    @abc.abstractmethod
    def name(self):
        """The task's name: its config's TASK, its key in tasks.TASKS."""

    @property
    @abc.abstractmethod
    def score_key(self):
        """The key of done.json the table's rows and the decisions' oracle read (accuracy, miou)."""

    @property
    def rows(self):
        """(stage, key of its done.json, row label) of the results table (results.rows)."""
        return results.rows(self.config, self.score_key)

    def check_data(self):
        """Refuse prepared data that does not fit the flags (a clear ValueError); called before a run starts."""
        c = self.config
        split = c.target_train_split
        if split == "train" or not any(stage_registry.get(name).reads_unlabelled_target for name in c.stages):
            return
        splits = pipeline.splits(c.target, c.data_dir)
        if split not in splits:
            hint = (" (Cityscapes: extract leftImg8bit_trainextra.zip beside leftImg8bit/train and run "
                    "tools/prepare_data.py --dataset=cityscapes again)" if c.target == "cityscapes" else "")
            raise ValueError(f"--target_train_split={split}: dataset '{c.target}' in {c.data_dir} has no split "
                             f"'{split}' (it has {', '.join(sorted(splits))}){hint}; or pass "
                             f"--target_train_split=train")

    # --- data -------------------------------------------------------------------------------------------
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
        """How many examples `split` of `domain` holds."""
        return pipeline.count(self.domain(domain), self.split(domain, split), self.config.data_dir)

    @abc.abstractmethod
    def inputs(self, domain, split, labels=True, batch_size=None, shuffle=False, seed=0, repeat=False,
               drop_remainder=False, stage=None):
        """A split of a domain's images, as a network reads them (pixels in [-1, 1]).

        Args:
            domain: "source", "target" or a dataset name; split: a split, "test" (the evaluation split) or
                "unlabelled" (see split()).
            labels: with int32 labels (maps); batch_size: None for single examples; shuffle, seed, repeat,
                drop_remainder: as tf.data's; stage: the stage it is for (training crops, segmentation).
        Returns:
            a tf.data.Dataset of images, or of (image, label) pairs."""

    @staticmethod
    @abc.abstractmethod
    def make_translated_example(image, label, key):
        """One record of the translated TFRecords (data/translated.py): a serialized tf.train.Example of
        `image` (uint8), its source `label` (None: none) and its `key`."""

    @abc.abstractmethod
    def translated_info(self, direction):
        """The manifest's info of the translated records written in `direction` (s2t, t2s): a dict."""

    @abc.abstractmethod
    def load_translated(self, path, labels, seed, stage=None):
        """The translated records under `path`, shuffled with `seed`, as `stage` trains on them.

        Returns:
            (tf.data.Dataset of images, or (image, label) pairs if `labels`; how many records)."""

    # --- scoring (target labels are read here for reporting only) ---------------------------------------
    @abc.abstractmethod
    def labelled_scores(self, net, domain, translate=None):
        """What a stage reports of `net` on the evaluation split of a labelled `domain` (after `translate`).

        Returns:
            {score name: value}, the task's score_key among them."""

    def confusion(self, net, domain, translate=None, split="test"):
        """Counts of (true class, predicted class) of `net` (after `translate`, if given) on `split` (default
        the evaluation split) of `domain`; for segmentation per pixel of the label maps as inputs() gives them
        (logits upsampled to them first: metrics.at_label_size), the ignore label left out."""
        counts = np.zeros((self.num_classes, self.num_classes), np.int64)
        for x, y in self.inputs(domain, split, batch_size=self.eval_batch_size):
            if translate is not None:
                x = translate(x, training=False)
            logits = metrics.at_label_size(net(x, training=False), y)
            counts += metrics.confusion_matrix(y, logits, self.num_classes).numpy()
        return counts

    def scores(self, net, domain, translate=None, prefix="", suffix=""):
        """What a stage reports of `net` on the evaluation split of `domain`, as {prefix + key + suffix: value}.
        A dataset without labels gets label-free criteria instead (unlabelled_target.py)."""
        if not registry.get(self.domain(domain)).labelled:
            return label_free.scores(self, net, domain, translate, prefix, suffix)
        return {f"{prefix}{key}{suffix}": value for key, value in self.labelled_scores(net, domain, translate).items()}

    def information_maximisation(self, net, translate=None):
        """The label-free criterion (selection/criteria.py) of `net` (after `translate`) on the first batches of the
        target training images (no labels read)."""
        score = selection.InformationMaximisation()
        for x in self.inputs("target", "unlabelled", labels=False, batch_size=100).take(SELECTION_BATCHES):
            x = x if translate is None else translate(x, training=False)
            score.update(tf.nn.softmax(tf.cast(net(x, training=False), tf.float32)).numpy())
        return score.result()


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
