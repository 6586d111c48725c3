"""Digit classification (paper section 4.1, Table 2): the classifiers (--task_model), the digit translators,
accuracy, and confusion matrices (cf. Figure 10)."""

import os

from cycada_tf.serving import export
from cycada_tf.reporting import results
from cycada_tf.train import figures, summaries
from cycada_tf.reporting import report as report_lib
from cycada_tf.data import pipeline, translated
from cycada_tf.models import digit_gan, dtn, lenet
from cycada_tf.models.layers import initialize, task_init
from cycada_tf.stages import feature, self_train, source
from cycada_tf.stages import registry as stage_registry
from cycada_tf.tasks.base import Task

# --task_model: the classifier f and the width of its features (what D_feat reads under --feature_layer=features)
TASK_MODELS = {"lenet": (lenet.LeNet, lenet.FEATURE_DIM), "dtn": (dtn.DTN, dtn.FEATURE_DIM)}
REPORT_PANELS = ((source.STAGE.name, "Source only"), (feature.STAGE.name, "CyCADA pixel+feat"),
                 (self_train.STAGE.name, "CyCADA + self-training"))  # before/after, cf. Figure 10


def accuracy(counts):
    """Accuracy of a confusion matrix of counts (true class, predicted class)."""
    return int(counts.trace()) / int(counts.sum())


class DigitsTask(Task):
    name = "digits"
    score_key = "accuracy"

    def __init__(self, config):
        super().__init__(config)
        if config.task_model not in TASK_MODELS:
            raise ValueError(f"--task_model: unknown network {config.task_model!r}; choose from "
                             f"{', '.join(TASK_MODELS)}")
        self.network_class, self.feature_dim = TASK_MODELS[config.task_model]
        self.shape = (config.image_size, config.image_size, config.channels)

    def inputs(self, domain, split, labels=True, batch_size=None, shuffle=False, seed=0, repeat=False,
               drop_remainder=False, stage=None):
        """Images in [-1, 1] at --image_size and --channels (and int32 labels); `stage` is the segmentation
        crop's business only."""
        c = self.config
        return pipeline.load(self.domain(domain), self.split(domain, split), c.data_dir, c.image_size, c.channels,
                             labels=labels, batch_size=batch_size, shuffle=shuffle, seed=seed, repeat=repeat,
                             drop_remainder=drop_remainder)

    def labelled_scores(self, net, domain, translate=None):
        return {"accuracy": accuracy(self.confusion(net, domain, translate))}

    # --- networks ---------------------------------------------------------------------------------------
    def build_network(self, from_scratch=True, dtype=None):
        net = self.network_class(self.num_classes, dtype=dtype)
        net.build((None,) + self.shape)
        return task_init(net, self.config.task_init) if from_scratch else net

    def generators(self, dtype=None):
        c = self.config
        return (initialize(digit_gan.generator(c.image_size, c.channels, c.channels, c.generator_width,
                                               c.noise_channels, c.instance_norm_affine, name="g_st", dtype=dtype),
                           c.pixel_init),
                initialize(digit_gan.generator(c.image_size, c.channels, c.channels, c.generator_width,
                                               affine=c.instance_norm_affine, name="g_ts", dtype=dtype), c.pixel_init))

    def image_discriminator(self, name, dtype=None):
        c = self.config
        return initialize(digit_gan.image_discriminator(c.image_size, c.channels, c.discriminator_width,
                                                        c.minibatch_std, c.discriminator_norm,
                                                        c.instance_norm_affine, name=name, dtype=dtype), c.pixel_init)

    def feature_discriminator(self, dtype=None):
        return lenet.feature_discriminator(self.feature_dim if self.config.feature_layer == "features"
                                           else self.num_classes, dtype=dtype)

    def feature_options(self, f_ref, f_t):
        """FeatureAdaptation's task-specific arguments: the task net's own encoder; the gate's window."""
        return {"gate_window": self.config.gate_window}

    def pixel_options(self):
        return {}

    # --- translated records -----------------------------------------------------------------------------
    make_translated_example = staticmethod(translated.classification_example)

    def translated_info(self, direction):
        return {"image_size": self.config.image_size, "direction": direction}

    def load_translated(self, path, labels, seed, stage=None):
        c = self.config
        return translated.load_classification(path, c.image_size, c.channels, labels, seed)

    # --- figures ----------------------------------------------------------------------------------------
    def translation_grid(self, g_st, g_ts, path, n=10):
        """A callback drawing the first `n` test images of each domain through both translators after each
        epoch into the PNG at `path` (figures.translation_grid; cf. Figure 3); .draw() draws it now."""
        xs = next(iter(self.inputs("source", "test", labels=False, batch_size=n)))
        xt = next(iter(self.inputs("target", "test", labels=False, batch_size=n)))
        return summaries.TranslationGrid(g_st, g_ts, xs, xt, path)

    def test_summaries(self, net, translate=None):
        """What a task model's TensorBoard shows at the interval: its confusion matrix and accuracy on the
        target test split (target labels read for reporting only); nothing for a target without labels."""
        if not self.target_spec.labelled:
            return None

        def periodic(model):
            counts = self.confusion(net, "target", translate=translate)
            return {"target_test/confusion": figures.confusion_figure([(self.config.target, counts)],
                                                                      [str(k) for k in self.classes]),
                    "target_test/accuracy": accuracy(counts)}
        return periodic

    # --- serving ----------------------------------------------------------------------------------------
    def serving_model(self, net, view=None):
        """The TF Serving module of the adapted network `net`, naming its classes (export.py)."""
        return export.Classifier(net, self.config.image_size, self.config.channels, self.classes, view)

    def serving_translator(self, generator, name):
        return export.Translator(generator, self.config.image_size, self.config.channels, name)

    # --- results ----------------------------------------------------------------------------------------
    def summarize(self, per_seed):
        if not self.target_spec.labelled:
            return results.summarize_label_free(self.config, per_seed, self.rows)
        return results.summarize_accuracy(self.config, per_seed, self.rows)

    def markdown_table(self, summary):
        if summary.get("label_free"):
            return report_lib.label_free_table(summary, results.decisions(summary["per_seed"], oracle=False))
        return report_lib.accuracy_table(summary, results.decisions(summary["per_seed"]))

    def report_sections(self, run_dir, summary, trials):
        """report.md's translation grids, the feature gate's figures and the confusion matrices before and after
        adaptation, summed over the seeds (`trials`: each seed's Trial) for each REPORT_PANELS stage every seed
        finished."""
        seeds = [trial.seed for trial in trials]
        lines = stage_registry.report_sections(run_dir, seeds, self.config.TASK)
        if not self.target_spec.labelled:
            return lines + ["## No confusion matrices", "", summary.get("why", ""), ""]
        counts = {stage: sum(self.confusion(trial.network(stage), "target", trial.view_of(stage))
                             for trial in trials)
                  for stage, _ in REPORT_PANELS if trials and all(t.done(stage) is not None for t in trials)}
        if not counts:
            return lines
        labels = dict(REPORT_PANELS)
        picture = figures.confusion_figure([(labels[stage], counts[stage]) for stage in counts],
                                           [str(k) for k in self.classes])
        figures.save_png(picture, os.path.join(run_dir, "confusion_matrices.png"))
        return lines + ["## Confusion matrices on the target test split (cf. the paper's Figure 10)", "",
                        "![confusion matrices](confusion_matrices.png)", "",
                        "Rows: true class, columns: predicted class, in % of the row's class; counts summed over "
                        "the seeds.", ""]

    def title(self):
        return f"CyCADA: {self.config.source} -> {self.config.target}"
