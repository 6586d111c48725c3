"""Runs the CyCADA stages in order for each seed, checkpointing each stage in the run directory, and writes
the paper-style results table. Stages talk through the run directory only.

<run_dir>/seed_<k>/<stage>/ holds the stage's weights and done.json (its numbers); a stage whose done.json
exists is skipped when the command runs again. <run_dir>/results.json and results.md hold the table.
"""

import json
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

from cycada_tf import config as config_lib, paper
from cycada_tf.data import pipeline, registry, schema, tfrecord
from cycada_tf.models import digits as nets
from cycada_tf.stages.feature import FeatureAdaptation, GateStop
from cycada_tf.stages.pixel import PixelAdaptation
from cycada_tf.stages.source import TaskStage

# (stage, key in its done.json, row label): the paper's Table 2 rows, plus the pixel stage's other direction.
ROWS = (("source", "accuracy", "Source only"),
        ("pixel", "accuracy_t2s", "f_S on G_T->S(x_t) (pixel, target to source)"),
        ("target", "accuracy", "CyCADA pixel only"),
        ("feature", "accuracy", "CyCADA pixel+feat"),
        ("oracle", "accuracy", "Target only (oracle)"))
STAGE_ORDER = ("source", "pixel", "target", "feature", "oracle")
# Which earlier stages each stage reads from the run directory.
NEEDS = {"source": (), "pixel": ("source",), "target": ("pixel",), "feature": ("target",), "oracle": ()}


def log(message):
    print(f"[cycada {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _write_json(path, value):
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        json.dump(value, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


def _save_weights(model, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path[: -len(".weights.h5")] + ".partial.weights.h5"
    model.save_weights(tmp)
    os.replace(tmp, path)


class Run:
    """One seed of one experiment: the data, the networks and the stages."""

    def __init__(self, config, seed, run_dir):
        self.config, self.seed = config, seed
        self.dir = os.path.join(run_dir, f"seed_{seed}")
        c = config
        self.source_spec, self.target_spec = registry.get(c.source), registry.get(c.target)
        if self.source_spec.classes != self.target_spec.classes:
            raise ValueError(f"--source={c.source} and --target={c.target} have different classes")
        self.num_classes = self.source_spec.num_classes
        self.shape = (c.image_size, c.image_size, c.channels)

    # --- data -------------------------------------------------------------------------------------------
    def _load(self, name, split, **kwargs):
        c = self.config
        return pipeline.load(name, split, c.data_dir, c.image_size, c.channels, **kwargs)

    def _count(self, name, split):
        return pipeline.count(name, split, self.config.data_dir)

    def evaluate(self, net, name, split="test", translate=None):
        """Accuracy of `net` (after `translate`, if given) on a labelled split (reporting only)."""
        correct = total = 0
        for x, y in self._load(name, split, batch_size=500):
            if translate is not None:
                x = translate(x, training=False)
            pred = tf.argmax(net(x, training=False), axis=-1, output_type=tf.int32)
            correct += int(tf.reduce_sum(tf.cast(pred == y, tf.int32)))
            total += int(tf.shape(y)[0])
        return correct / total

    # --- stage bookkeeping ------------------------------------------------------------------------------
    def stage_dir(self, stage):
        path = os.path.join(self.dir, stage)
        os.makedirs(path, exist_ok=True)
        return path

    def done(self, stage):
        path = os.path.join(self.dir, stage, "done.json")
        if os.path.exists(path):
            with open(path) as handle:
                return json.load(handle)
        return None

    def finish(self, stage, result):
        _write_json(os.path.join(self.stage_dir(stage), "done.json"), result)
        return result

    def new_task_net(self, weights=None):
        net = nets.LeNet(self.num_classes)
        net.build((None,) + self.shape)
        if weights:
            net.load_weights(weights)
        return net

    def weights(self, stage, name="f"):
        return os.path.join(self.dir, stage, f"{name}.weights.h5")

    # --- stages -----------------------------------------------------------------------------------------
    def train_task(self, stage, dataset, steps, epochs, init=None):
        c = self.config
        keras.utils.set_random_seed(self.seed)
        net = self.new_task_net(init)
        model = TaskStage(net, name=f"{stage}_stage")
        model.compile(optimizer=keras.optimizers.Adam(c.source_lr))
        model.fit(dataset, epochs=epochs, steps_per_epoch=steps, verbose=c.verbose)
        _save_weights(net, self.weights(stage))
        return net

    def source(self):
        c = self.config
        ds = self._load(c.source, "train", batch_size=c.source_batch_size, shuffle=True, seed=self.seed,
                        repeat=True, drop_remainder=True)
        steps = max(1, self._count(c.source, "train") // c.source_batch_size)
        net = self.train_task("source", ds, steps, c.source_epochs)
        return {"source_test_accuracy": self.evaluate(net, c.source),
                "accuracy": self.evaluate(net, c.target)}

    def oracle(self):
        c = self.config
        ds = self._load(c.target, "train", batch_size=c.source_batch_size, shuffle=True, seed=self.seed,
                        repeat=True, drop_remainder=True)
        steps = max(1, self._count(c.target, "train") // c.source_batch_size)
        net = self.train_task("oracle", ds, steps, c.oracle_epochs)
        return {"accuracy": self.evaluate(net, c.target)}

    def build_generators(self):
        c = self.config
        g_st = nets.generator(c.image_size, c.channels, c.channels, c.generator_width, c.noise_channels,
                              name="g_st")
        g_ts = nets.generator(c.image_size, c.channels, c.channels, c.generator_width, name="g_ts")
        return g_st, g_ts

    def pixel(self):
        c = self.config
        keras.utils.set_random_seed(self.seed)
        f_s = self.new_task_net(self.weights("source"))
        g_st, g_ts = self.build_generators()
        d_s, d_t = (nets.image_discriminator(c.image_size, c.channels, c.discriminator_width, c.minibatch_std,
                                             c.discriminator_norm, name=name) for name in ("d_s", "d_t"))
        model = PixelAdaptation(g_st, g_ts, d_s, d_t, f_s, gan_mode=c.gan_mode, gan_weight=c.gan_weight,
                                cycle_weight=c.cycle_weight, semantic_weight=c.semantic_weight,
                                semantic_t2s_weight=c.semantic_t2s_weight,
                                pool_size=c.pool_size, seed=self.seed)
        model.compile(keras.optimizers.Adam(c.pixel_lr, beta_1=c.pixel_beta_1),
                      keras.optimizers.Adam(c.pixel_lr, beta_1=c.pixel_beta_1))
        model.build_optimizers()
        b = c.pixel_batch_size
        xs = self._load(c.source, "train", labels=False, shuffle=True, seed=self.seed, repeat=True)
        xt = self._load(c.target, "train", labels=False, shuffle=True, seed=self.seed + 1, repeat=True)
        ds = tf.data.Dataset.zip(xs.batch(b, drop_remainder=True), xt.batch(b, drop_remainder=True))
        steps = max(1, max(self._count(c.source, "train"), self._count(c.target, "train")) // b)
        directory = self.stage_dir("pixel")
        grid = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: self.translation_grid(
            g_st, g_ts, os.path.join(directory, "translations.png")))
        history = model.fit(ds.prefetch(2), epochs=c.pixel_epochs, steps_per_epoch=steps, verbose=c.verbose,
                            callbacks=[grid])
        _save_weights(g_st, os.path.join(directory, "g_st.weights.h5"))
        _save_weights(g_ts, os.path.join(directory, "g_ts.weights.h5"))
        self.translation_grid(g_st, g_ts, os.path.join(directory, "translations.png"))
        return {"final": {k: float(v[-1]) for k, v in history.history.items()},
                "accuracy_t2s": self.evaluate(f_s, c.target, translate=g_ts)}

    def load_generators(self):
        g_st, g_ts = self.build_generators()
        g_st.load_weights(os.path.join(self.dir, "pixel", "g_st.weights.h5"))
        g_ts.load_weights(os.path.join(self.dir, "pixel", "g_ts.weights.h5"))
        return g_st, g_ts

    def translation_grid(self, g_st, g_ts, path, n=10):
        """Rows of x_s | G_ST(x_s) | G_TS(G_ST(x_s)) and x_t | G_TS(x_t) | G_ST(G_TS(x_t)) (cf. Figure 3)."""
        from PIL import Image
        c = self.config
        xs = next(iter(self._load(c.source, "test", labels=False, batch_size=n)))
        xt = next(iter(self._load(c.target, "test", labels=False, batch_size=n)))
        st = g_st(xs, training=False)
        ts = g_ts(xt, training=False)
        rows = [xs, st, g_ts(st, training=False), xt, ts, g_st(ts, training=False)]
        grid = np.concatenate([np.concatenate(list(pipeline.to_uint8(r).numpy()), axis=1) for r in rows], 0)
        if grid.shape[-1] == 1:
            grid = grid[..., 0]
        Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(path)

    # In the paper's direction (--pixel_direction=s2t) the target model learns from G_S->T(X_S) and reads
    # target images as they are. In the reverse direction (t2s) target images are first mapped into the
    # source domain by G_T->S, and the target model learns from source images that went the same way,
    # G_T->S(G_S->T(X_S)), so it is trained on exactly the kind of images (and artifacts) it is given.
    def translated_dir(self, domain="source"):
        return os.path.join(self.dir, f"translated_{domain}")

    def _write_translated(self, domain, name, labels, mapping):
        """`mapping` applied to a training split, written once as TFRecords of the shared schema."""
        c = self.config
        pixel_dir = os.path.join(self.dir, "pixel")
        inputs = {"g_st": tfrecord.sha256_of_file(os.path.join(pixel_dir, "g_st.weights.h5")),
                  "g_ts": tfrecord.sha256_of_file(os.path.join(pixel_dir, "g_ts.weights.h5")),
                  "direction": c.pixel_direction, "copies": c.translations_per_image, "labels": labels}

        def examples():
            for copy in range(c.translations_per_image if labels else 1):
                index = 0
                for batch in self._load(name, "train", labels=labels, batch_size=256):
                    x, y = batch if labels else (batch, None)
                    images = pipeline.to_uint8(mapping(x)).numpy()
                    for i, image in enumerate(images):
                        label = int(y[i]) if labels else -1  # target labels are never read here
                        yield schema.make_example(image, label, key=f"copy{copy}:{index}")
                        index += 1

        tfrecord.write_dataset(self.translated_dir(domain), {"train": examples()}, inputs,
                               info={"image_size": c.image_size, "direction": c.pixel_direction})

    def translate(self):
        """Write the translated source images (with source labels) and, for t2s, the translated target
        images (without labels)."""
        c = self.config
        g_st, g_ts = self.load_generators()
        if c.pixel_direction == "s2t":
            self._write_translated("source", c.source, True, lambda x: g_st(x, training=False))
        else:
            self._write_translated("source", c.source, True,
                                   lambda x: g_ts(g_st(x, training=False), training=False))
            self._write_translated("target", c.target, False, lambda x: g_ts(x, training=False))
        return g_ts if c.pixel_direction == "t2s" else None

    def load_translated(self, domain="source", labels=True):
        c = self.config
        directory = self.translated_dir(domain)
        files = tfrecord.split_files(directory, "train")

        def parse(serialized):
            example = schema.parse(serialized)
            image = pipeline.decode_image(example[schema.IMAGE], c.image_size, c.channels)
            return (image, tf.cast(example[schema.LABEL], tf.int32)) if labels else image

        count = tfrecord.read_manifest(directory)["splits"]["train"]["count"]
        ds = tf.data.TFRecordDataset(files).map(parse, num_parallel_calls=tf.data.AUTOTUNE).cache()
        return ds.shuffle(count, seed=self.seed + (domain == "target")).repeat(), count

    def target_view(self):
        """What the target model is given of a target image: the image (s2t) or G_T->S of it (t2s)."""
        if self.config.pixel_direction == "s2t":
            return None
        return self.load_generators()[1]

    def target(self):
        c = self.config
        self.translate()
        ds, count = self.load_translated()
        ds = ds.batch(c.source_batch_size, drop_remainder=True).prefetch(2)
        steps = max(1, count // c.source_batch_size)
        net = self.train_task("target", ds, steps, c.target_epochs)
        return {"accuracy": self.evaluate(net, c.target, translate=self.target_view())}

    def feature(self):
        c = self.config
        keras.utils.set_random_seed(self.seed)
        f_ref = self.new_task_net(self.weights("target"))
        f_t = self.new_task_net(self.weights("target"))
        d_feat = nets.feature_discriminator(nets.FEATURE_DIM if c.feature_layer == "features"
                                            else self.num_classes)
        model = FeatureAdaptation(f_ref, f_t, d_feat, layer=c.feature_layer, gan_mode=c.gan_mode)
        model.compile(keras.optimizers.Adam(c.feature_lr, beta_1=0.5),
                      keras.optimizers.Adam(c.feature_lr, beta_1=0.5))
        model.build_optimizers()
        b = c.feature_batch_size
        xs, _ = self.load_translated(labels=False)
        if c.pixel_direction == "s2t":
            xt = self._load(c.target, "train", labels=False, shuffle=True, seed=self.seed + 1, repeat=True)
        else:
            xt, _ = self.load_translated("target", labels=False)
        ds = tf.data.Dataset.zip(xs.batch(b, drop_remainder=True), xt.batch(b, drop_remainder=True))
        steps = max(c.feature_min_steps_per_epoch, self._count(c.target, "train") // b, 1)
        stop = GateStop(log)
        model.fit(ds.prefetch(2), epochs=c.feature_epochs, steps_per_epoch=steps, verbose=c.verbose,
                  callbacks=[stop])
        _save_weights(f_t, self.weights("feature"))
        return {"accuracy": self.evaluate(f_t, c.target, translate=self.target_view()),
                "gated_updates": int(model.updates.numpy()), "stopped_by_gate_at_epoch": stop.stopped_epoch}


def mean_and_se(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    mean = float(np.mean(values))
    se = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0
    return mean, se


def summarize(config, per_seed):
    table = []
    for stage, key, label in ROWS:
        values = [seed_result.get(stage, {}).get(key) for seed_result in per_seed.values()]
        mean, se = mean_and_se(values)
        if mean is not None:
            table.append({"model": label, "stage": stage, "key": key, "accuracy": mean, "standard_error": se,
                          "seeds": [v for v in values if v is not None]})
    return {"source": config.source, "target": config.target, "seeds": list(per_seed),
            "table": table, "per_seed": per_seed,
            "paper_table_2": {stage: list(v)
                              for stage, v in paper.reported(config.source, config.target).items()},
            "config": {k: (list(v) if isinstance(v, tuple) else v)
                       for k, v in vars(config).items()}}


def markdown_table(results):
    """The table, with the paper's Table 2 number beside each row when the shift is one of the paper's."""
    published = paper.reported(results["source"], results["target"])
    header = (f"| Model | {results['source']} -> {results['target']} (accuracy %, mean ± s.e., "
              f"{len(results['seeds'])} seed{'s' if len(results['seeds']) != 1 else ''}) |")
    lines = [header + (" Paper (Table 2, 4 runs) |" if published else ""),
             "|---|---|" + ("---|" if published else "")]
    for row in results["table"]:
        line = f"| {row['model']} | {100 * row['accuracy']:.1f} ± {100 * row['standard_error']:.1f} |"
        if published:
            mean_se = published.get(row["stage"]) if row["key"] == "accuracy" else None
            line += f" {mean_se[0]:.1f} ± {mean_se[1]:.1f} |" if mean_se else " - |"
        lines.append(line)
    return "\n".join(lines)


def run(config):
    """Run every requested stage for every seed; write and return results."""
    for stage in config.stages:
        if stage not in STAGE_ORDER:
            raise ValueError(f"--stages: unknown stage {stage!r}; choose from {', '.join(STAGE_ORDER)}")
    run_dir = config.run_dir or os.path.join("runs", f"{config.source}_to_{config.target}")
    os.makedirs(run_dir, exist_ok=True)
    for name in (config.source, config.target):
        registry.ensure(name, config.data_dir)
    per_seed = {}
    for seed in config.seeds:
        trial = Run(config, seed, run_dir)
        results = {}
        for stage in STAGE_ORDER:
            result = trial.done(stage)
            if stage in config.stages and result is None:
                missing = [n for n in NEEDS[stage] if trial.done(n) is None]
                if missing:
                    raise ValueError(f"stage '{stage}' needs the '{missing[0]}' stage of seed {seed} in "
                                     f"{trial.dir}: add it to --stages")
                log(f"seed {seed}: stage '{stage}' starting")
                start = time.time()
                # Every stage starts from the same global random state (TF's global seed also keys tf.data
                # shuffles), whatever ran before it in this process: a resumed run repeats an unbroken one.
                keras.utils.set_random_seed(seed)
                result = getattr(trial, stage)()
                result["seconds"] = round(time.time() - start, 1)
                trial.finish(stage, result)
                log(f"seed {seed}: stage '{stage}' done in {result['seconds']:.0f}s: "
                    + ", ".join(f"{k}={v:.4f}" for k, v in result.items() if isinstance(v, float)))
            elif result is not None and stage in config.stages:
                log(f"seed {seed}: stage '{stage}' already done, skipped")
            if result is not None:
                results[stage] = result
        per_seed[str(seed)] = results
    summary = summarize(config, per_seed)
    _write_json(os.path.join(run_dir, "results.json"), summary)
    table = markdown_table(summary)
    with open(os.path.join(run_dir, "results.md"), "w") as handle:
        handle.write(table + "\n")
    print(table, flush=True)
    return summary
