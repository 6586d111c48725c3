"""The records (stages/base.Stage) of the stages that stages/__init__.py registers, in the order a run trains
them, and what the rest of the code derives from them."""

import importlib

from cycada_tf import stages

STAGES = tuple(importlib.import_module(f"{stages.__name__}.{name}").STAGE for name in stages.NAMES)
for _module, _stage in zip(stages.NAMES, STAGES):
    if _stage.name != _module:
        raise ValueError(f"stages/{_module}.py: its STAGE is named {_stage.name!r}; name it {_module!r}")
BY_NAME = {stage.name: stage for stage in STAGES}
# The final model's candidates by rank, the source model first (selection.final_model).
CANDIDATES = tuple(stage.name for stage in sorted((s for s in STAGES if s.candidate is not None),
                                                  key=lambda s: s.candidate))


def get(name):
    """The record of the stage `name` (ValueError naming the registered ones)."""
    if name not in BY_NAME:
        raise ValueError(f"no stage {name!r}; the stages are {', '.join(BY_NAME)}")
    return BY_NAME[name]
