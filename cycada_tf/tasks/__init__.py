"""The two tasks of the paper: digits (section 4.1) and segmentation (section 4.2)."""

import importlib

# {config.TASK: (module, class)} of every task; a task's module is imported only when a run asks for it.
TASKS = {"digits": ("cycada_tf.tasks.digits", "DigitsTask"),
         "segmentation": ("cycada_tf.tasks.segmentation", "SegmentationTask")}


def for_config(config):
    """The task of an experiment's config, looked up by its TASK in TASKS.

    Args:
        config: an experiment's config (config.Config).
    Returns:
        a tasks.base.Task of that config.
    Raises:
        ValueError: naming the unknown task and the known ones."""
    if config.TASK not in TASKS:
        raise ValueError(f"unknown task {config.TASK!r} (config {type(config).__name__}); the tasks are "
                         f"{', '.join(TASKS)}")
    module, name = TASKS[config.TASK]
    return getattr(importlib.import_module(module), name)(config)
