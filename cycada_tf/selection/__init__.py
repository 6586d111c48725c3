"""Decisions a run makes from data, with criteria that read no target label (docs/architecture.md, the rules):
the pixel direction (direction.py) and the final model (final.py), from the criteria of criteria.py and
reverse validation (reverse.py). Beside each decision the run records what the target test labels would have
picked (oracle_choice), for reporting only."""

from cycada_tf.selection.criteria import InformationMaximisation, choose, information_maximisation  # noqa: F401
from cycada_tf.selection.direction import choose_direction  # noqa: F401
from cycada_tf.selection.final import CRITERIA, PRIOR_COST, final_model, prior_cost  # noqa: F401

