"""What a run reports on a target domain without labels (folder:<flat folder>): no accuracy, no confusion
matrix, but what needs no label: the predictions' entropy, the information-maximisation criterion, and how
often two stages' models agree on the same target image.

Entropy: mean over images of H(p(y|x)) in nats (lower: more confident). Information maximisation (the
label-free criterion of SHOT, Liang et al. 2020; RIM, Krause et al. 2010): H(mean p) - mean H(p), the mutual
information between image and prediction (higher: confident and spread over the classes, not collapsed onto
one). Agreement: the fraction of target images two stages' models give the same class.
"""

import numpy as np
import tensorflow as tf

from cycada_tf.config import experiment_config as config_lib
from cycada_tf import selection
from cycada_tf.stages import registry

WHY = ("The target has no labels: accuracy and confusion matrices are left out; the table shows label-free "
       "criteria (mean prediction entropy, information maximisation) and the agreement between stages.")
PREDICTIONS = "predictions"


def probabilities(task, net, domain, translate=None):
    """Softmax outputs of `net` (after `translate`) on every image of the test split of `domain`, in order."""
    out = []
    for x in task.inputs(domain, "test", labels=False, batch_size=500):
        if translate is not None:
            x = translate(x, training=False)
        out.append(tf.nn.softmax(tf.cast(net(x, training=False), tf.float32), axis=-1).numpy())
    return np.concatenate(out) if out else np.zeros((0, task.num_classes), np.float32)


def criteria(p):
    """(mean entropy, information maximisation) of probabilities p (N, classes), in nats."""
    score = selection.InformationMaximisation().update(p)
    return score.mean_entropy(), score.result()


def scores(task, net, domain, translate=None, prefix="", suffix=""):
    """Task.scores for an unlabelled dataset: the criteria and the predicted classes (for the agreement)."""
    p = probabilities(task, net, domain, translate)
    entropy, infomax = criteria(p)
    return {f"{prefix}entropy{suffix}": entropy, f"{prefix}information_maximisation{suffix}": infomax,
            f"{prefix}{PREDICTIONS}{suffix}": [int(k) for k in np.argmax(p, axis=1)]}


def agreement(a, b):
    return float(np.mean(np.asarray(a) == np.asarray(b))) if len(a) and len(a) == len(b) else None


def _of(seed_results, stage):
    """A seed's results of `stage`; for "final", those of the stage the seed chose (the model it ships)."""
    if stage == "final":
        final = seed_results.get("final")
        return seed_results.get(final["choice"], {}) if final else {}
    return seed_results.get(stage, {})


def summarize(config, per_seed, rows):
    """The results of a run on an unlabelled target; `rows`: the task's (stage, accuracy key, label). The final
    model's row holds the stage each seed chose (`choices`)."""
    table = []
    for stage, key, label in rows:
        suffix = key[len("accuracy"):]  # "_t2s" for the pixel stage's row
        pairs = [(_of(s, stage), s) for s in per_seed.values()]
        pairs = [(r, s) for r, s in pairs if f"entropy{suffix}" in r]
        if not pairs:
            continue
        row = {"model": label, "stage": stage, "key": f"entropy{suffix}", "seeds": len(pairs),
               "entropy": float(np.mean([r[f"entropy{suffix}"] for r, _ in pairs])),
               "information_maximisation": float(np.mean([r[f"information_maximisation{suffix}"]
                                                          for r, _ in pairs]))}
        agree = [agreement(r[f"{PREDICTIONS}{suffix}"], s[registry.SOURCE_MODEL][PREDICTIONS])
                 for r, s in pairs if PREDICTIONS in s.get(registry.SOURCE_MODEL, {})]
        agree = [a for a in agree if a is not None]
        row["agreement_with_source"] = float(np.mean(agree)) if agree else None
        if stage == "final":
            row["choices"] = [s["final"]["choice"] for _, s in pairs]
        table.append(row)
    slim = {seed: {stage: {k: (len(v) if k.startswith(PREDICTIONS) else v) for k, v in result.items()}
                   for stage, result in stages.items()} for seed, stages in per_seed.items()}
    return {"source": config.source, "target": config.target, "seeds": list(per_seed), "label_free": True,
            "why": WHY, "table": table, "per_seed": slim, "gain": None, "paper_table_2": {},
            "config": config_lib.to_json(config)}


def markdown_table(results):
    """The label-free table; the final model's row names the stage chosen (of each seed)."""
    lines = [f"| Model | {results['source']} -> {results['target']}: entropy (nats) | information "
             f"maximisation (nats) | agrees with source only |", "|---|---|---|---|"]
    for row in results["table"]:
        agree = row["agreement_with_source"]
        model = row["model"] + (f": {', '.join(row['choices'])}" if row.get("choices") else "")
        lines.append(f"| {model} | {row['entropy']:.3f} | {row['information_maximisation']:.3f} | "
                     + (f"{100 * agree:.1f}% |" if agree is not None else "- |"))
    return "\n".join(lines + ["", WHY])
