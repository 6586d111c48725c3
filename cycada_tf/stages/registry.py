"""The records (stages/base.Stage) of the stages that stages/__init__.py registers, in the order a run trains
them, and what the rest of the code derives from them."""

import importlib

from cycada_tf import stages
from cycada_tf.stages import pixel

STAGES = tuple(importlib.import_module(f"{stages.__name__}.{name}").STAGE for name in stages.NAMES)
for _module, _stage in zip(stages.NAMES, STAGES):
    if _stage.name != _module:
        raise ValueError(f"stages/{_module}.py: its STAGE is named {_stage.name!r}; name it {_module!r}")
BY_NAME = {stage.name: stage for stage in STAGES}
# The final model's candidates by rank, the source model first (selection.final_model).
CANDIDATES = tuple(stage.name for stage in sorted((s for s in STAGES if s.candidate is not None),
                                                  key=lambda s: s.candidate))

# The stage whose epoch is progress' unit of cost (its prior is 1 for every task): the final choice's prior is
# counted in it (selection.prior_cost, by that stage's precision).
PRIOR_UNIT = next(stage.name for stage in STAGES if stage.prior and set(stage.prior.values()) == {1.0})
# The stage whose directory holds the translators G_S->T and G_T->S (trial.trained_generators).
TRANSLATORS = pixel.STAGE.name
# The decisions a seed's results record, each by name with where it is found in them (None when not made): each
# stage's own (Stage.decision), then the final model's.
DECISIONS = tuple((stage.decision[0], lambda results, name=stage.name, key=stage.decision[1]:
                   results.get(name, {}).get(key)) for stage in STAGES if stage.decision) + (
    ("final model", lambda results: results.get("final")),)


SOURCE_MODEL = CANDIDATES[0]  # the candidate every adapted one is weighed against


def adapted(name):
    """Whether the stage `name` is one of the final model's candidates other than the source model."""
    return name in CANDIDATES[1:]


def report_sections(run_dir, seeds, task_name):
    """report.md's lines of every stage that shows a figure there (Stage.report), in the stages' order."""
    return [line for stage in STAGES if stage.report for line in stage.report(run_dir, seeds, task_name)]


def get(name):
    """The record of the stage `name` (ValueError naming the registered ones)."""
    if name not in BY_NAME:
        raise ValueError(f"no stage {name!r}; the stages are {', '.join(BY_NAME)}")
    return BY_NAME[name]
