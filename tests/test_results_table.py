"""The results table: mean and standard error over seeds, and the paper's Table 2 beside the paper's shifts."""

import math

from cycada_tf import config as config_lib
from cycada_tf import paper, train


def _per_seed(values):
    return {str(seed): {"source": {"accuracy": v[0]}, "feature": {"accuracy": v[1]}}
            for seed, v in enumerate(values)}


def test_mean_and_standard_error_over_seeds():
    config = config_lib.DigitsConfig(source="uci", target="uci_m", seeds=(0, 1, 2))
    summary = train.summarize(config, _per_seed([(0.5, 0.7), (0.6, 0.8), (0.7, 0.9)]))
    rows = {row["stage"]: row for row in summary["table"]}
    assert list(rows) == ["source", "feature"]
    assert math.isclose(rows["source"]["accuracy"], 0.6)
    assert math.isclose(rows["source"]["standard_error"], 0.1 / math.sqrt(3))  # std (ddof 1) 0.1
    assert summary["paper_table_2"] == {}
    table = train.markdown_table(summary)
    assert "| Source only | 60.0 ± 5.8 |" in table and "| CyCADA pixel+feat | 80.0 ± 5.8 |" in table
    assert "Paper" not in table


def test_paper_numbers_beside_the_papers_shifts():
    for source in ("svhn", "tfds:svhn_cropped"):
        config = config_lib.DigitsConfig(source=source, target="mnist", seeds=(0,))
        summary = train.summarize(config, _per_seed([(0.671, 0.904)]))
        table = train.markdown_table(summary).splitlines()
        assert table[0].endswith("Paper (Table 2, 4 runs) |") and table[1] == "|---|---|---|"
        assert "| Source only | 67.1 ± 0.0 | 67.1 ± 0.6 |" in table
        assert "| CyCADA pixel+feat | 90.4 ± 0.0 | 90.4 ± 0.4 |" in table
        assert summary["paper_table_2"]["feature"] == [90.4, 0.4]
    assert paper.reported("usps", "mnist")["source"] == (69.6, 3.8)
    assert paper.reported("mnist", "usps")["oracle"] == (96.3, 0.1)
    assert paper.reported("uci", "uci_m") == {}
