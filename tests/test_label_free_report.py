"""What a run on a target without labels reports of the model it ships: a final-model row in the table,
results.json and report.md, how the choice was made in plain words, and no claim that target labels were read."""

import os

from cycada_tf.config import experiment_config as config_lib
from cycada_tf.reporting import report, results

def _seed(choice, kept_source=False):
    """One seed's results as a run on an unlabelled target leaves them (the predictions, and the decisions)."""
    def stage(entropy, infomax, predictions):
        return {"entropy": entropy, "information_maximisation": infomax, "predictions": predictions}
    return {"source": stage(1.0, 0.5, [0, 1, 2, 3]), "target": stage(0.8, 0.7, [0, 1, 2, 2]),
            "feature": stage(0.6, 0.9, [0, 1, 1, 1]), "self_train": stage(0.4, 1.1, [0, 0, 0, 0]),
            "oracle": {"skipped": "the target has no labels"},
            "final": {"choice": choice, "criterion_name": "veto", "kept_source": kept_source,
                      "criterion": {"source": 0.0, "feature": 2.0}}}


def test_the_final_row_is_the_chosen_stages_and_the_report_says_how_it_was_chosen(tmp_path):
    config = config_lib.DigitsConfig(target="folder:/photos", seeds=(0, 1))
    per_seed = {"0": _seed("feature"), "1": _seed("source", kept_source=True)}
    summary = results.summarize_label_free(config, per_seed, results.rows(config, "accuracy"))
    rows = {row["stage"]: row for row in summary["table"]}
    assert list(rows) == ["source", "target", "feature", "self_train", "final"]
    final = rows["final"]
    assert final["choices"] == ["feature", "source"] and final["seeds"] == 2
    assert final["entropy"] == (0.6 + 1.0) / 2 and final["information_maximisation"] == (0.9 + 0.5) / 2
    assert final["agreement_with_source"] == (0.5 + 1.0) / 2  # feature agrees on 2 of 4; source with itself

    table = report.label_free_table(summary, results.decisions(summary["per_seed"], oracle=False))
    assert "| Final model (chosen without target labels): feature, source | 0.800 | 0.700 | 75.0% |" in table
    assert "Decision without target labels, final model, by veto (seed: chosen): 0: feature, 1: source" in table
    assert "Seed 1: learnability and reverse validation both scored every adapted model no higher" in table
    assert "oracle" not in table

    path = report.write(str(tmp_path), "CyCADA: uci -> folder:/photos", table, [], labelled=False)
    text = open(path).read()
    assert "Target labels are read" not in text and "The target has no labels" in text
    assert os.path.basename(path) == "report.md"


def test_a_labelled_report_still_says_where_target_labels_are_read(tmp_path):
    text = open(report.write(str(tmp_path), "title", "| table |", [])).read()
    assert "Target labels are read for the table and the figures only, never in training." in text


def test_each_decision_gives_its_criterion_values():
    veto = {"choice": "source", "criterion_name": "veto", "kept_source": True, "criterion": {"source": 0.0},
            "votes": {"feature": {"learnability": [0.03, 0.455], "reverse_validation": [0.109, 0.328]}}}
    direction = {"choice": "t2s", "criterion": {"s2t": 0.0091, "t2s": 0.0028}}
    lines = report.decisions_lines([("pixel direction", {"0": direction}), ("final model", {"0": veto})])
    assert "\nSeed 0, pixel direction: s2t 0.0091, t2s 0.0028" in lines
    assert ("\nSeed 0, final model: feature learnability 0.030 against the source model's 0.455, reverse validation "
            "0.109 against the source model's 0.328") in lines
