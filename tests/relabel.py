"""Target labels rewritten in place, for the label-blindness tests: the data keeps its manifest, so nothing
rebuilds it, and only the labels differ from the clean copy."""

import tensorflow as tf

from cycada_tf.data import registry, tfrecord


def rewrite_train_labels(data_dir, name, relabel):
    """Passes every training example of dataset `name` in `data_dir` to relabel(example), which edits its
    label feature in place, and writes the examples back to their shards."""
    for path in tfrecord.split_files(registry.dataset_dir(data_dir, name), "train"):
        examples = [tf.train.Example.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]
        with tf.io.TFRecordWriter(path) as writer:
            for example in examples:
                relabel(example)
                writer.write(example.SerializeToString())
