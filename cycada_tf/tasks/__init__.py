"""The two tasks of the paper: digits (section 4.1) and segmentation (section 4.2)."""


def for_config(config):
    """The task of an experiment's config (config.TASK: digits or segmentation)."""
    if config.TASK == "segmentation":
        from cycada_tf.tasks.segmentation import SegmentationTask
        return SegmentationTask(config)
    from cycada_tf.tasks.digits import DigitsTask
    return DigitsTask(config)
