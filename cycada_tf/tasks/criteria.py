"""What the final model's criteria (selection/final.py, selection/reverse.py) ask of a task, with the
implementation both tasks share: the raw target images they read, a network's probabilities there, and
reverse validation's network, batches and score."""

import numpy as np
import tensorflow as tf

SELECTION_BATCHES = 20  # batches of 100 target training images the label-free criteria read, at most
SELECTION_BATCH = 100


class FinalModelCriteria:
    """Part of tasks/base.Task: reads its inputs, build_network, confusion, config and eval_batch_size."""

    reverse_batch_size = 64

    @property
    def reverse_steps(self):
        """Steps of the fresh network reverse validation and learnability train (--final_reverse_steps)."""
        return self.config.final_reverse_steps

    def selection_images(self):
        """The raw target training images the label-free criteria read (no labels), read once.

        Returns:
            the first SELECTION_BATCHES batches of the unlabelled split, as numpy batches."""
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
