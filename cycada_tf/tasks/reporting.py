"""What TensorBoard, the results table, the report and the export ask of a task (part of tasks/base.Task's
contract): each task draws and serves its own kind of data."""

import abc


class Reporting(abc.ABC):
    """The task's figures, tables and serving modules; every method is the task's own."""

    @abc.abstractmethod
    def translation_grid(self, g_st, g_ts, path, n):
        """The pixel stage's callback drawing test images of both domains through both translators.

        Args:
            g_st, g_ts: the translators as built (Keras models).
            path: the PNG it draws after each epoch (cf. the paper's Figure 3).
            n: test images of each domain.
        Returns:
            a keras.callbacks.Callback with .draw() (draw now) and .latest (the last picture)."""

    @abc.abstractmethod
    def test_summaries(self, net, translate=None):
        """What a task model's TensorBoard shows at its interval (target labels read for reporting only).

        Args:
            net: the task network being trained.
            translate: what it is given of a target image (G_T->S), or None.
        Returns:
            model -> {tag: scalar or image}, or None for nothing."""

    @abc.abstractmethod
    def serving_model(self, net, view=None):
        """The TF Serving module of the final network (export.py).

        Args:
            net: the task network; view: what it is given of an image (G_T->S), or None.
        Returns:
            an export.Served module naming the task's classes."""

    @abc.abstractmethod
    def serving_translator(self, generator, name):
        """The TF Serving module of a translator (export.Served), named `name` (g_st or g_ts)."""

    @abc.abstractmethod
    def summarize(self, per_seed):
        """The run's results (results.json) of each seed's stage results.

        Args:
            per_seed: {seed: {stage: its done.json, "final": the final model's decision}}.
        Returns:
            a dict with at least "seeds", "table" (a row per stage that finished) and "per_seed"."""

    @abc.abstractmethod
    def markdown_table(self, summary):
        """results.md's table (str) of `summary` (summarize's)."""

    @abc.abstractmethod
    def report_sections(self, run_dir, summary, trials):
        """report.md's sections after the table.

        Args:
            run_dir: the run directory (figures are written there).
            summary: summarize's results; trials: each seed's trial.Trial.
        Returns:
            the sections' markdown lines (list of str)."""

    @abc.abstractmethod
    def title(self):
        """report.md's title (str)."""
