"""The study grid as a graph of keyed stages (no data, no files: just what would run).

Graph (``P`` pre-training images, ``I`` intermediate on/off, ``F`` fine-tuning images)::

    init(seed) ──► pretrain(P, seed) ──► intermediate(P, seed) ──► finetune(P, I, F, seed) ──► evaluate
     (P = 0: random initialisation from the seed; no stage runs)      (I = False: skip the middle)

Keys: every stage's key is a hash of the configuration slice that determines it plus its upstream
key (:func:`build_plan`), so a finished stage is reused by any config that agrees on that slice,
and changing a fine-tuning setting leaves pre-training untouched. Data roots enter the keys as
written in the config; the cache content hashes are recorded in every stage's record.

Units of work (:func:`units_of`): what one runner claims and runs at a time - a pre-training, an
intermediate stage, or a grid cell (its ``evaluate`` stage, which runs its fine-tuning first).
The cost of a stage in image-steps (:func:`image_steps`), summed over the plan per stage kind
(:func:`grid_cost`), is what ``--dry-run`` prints and what the benchmark's projection divides by
its measured rates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import ExperimentConfig
from ..seeds import stable_hash
from .kinds import KINDS, Planning

INTEL_TRAIN_IMAGES = 14_034  # the published archive's seg_train; used by --dry-run when the folder is absent
INTEL_TEST_IMAGES = 3_000  # its seg_test, scored once by every intermediate stage (evaluate_test)


@dataclass(frozen=True)
class Stage:
    kind: str
    key: str
    pretrain: int
    seed: int
    intermediate: bool = False
    finetune: int = 0
    upstream: Stage | None = field(default=None, compare=False, repr=False)  # None: random init
    spec: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def label(self) -> str:
        parts = [self.kind, f"P={self.pretrain}"]
        if self.kind in ("finetune", "evaluate"):
            parts += [f"I={int(self.intermediate)}", f"F={self.finetune}"]
        return " ".join(parts + [f"seed={self.seed}"])

    @property
    def cell(self) -> tuple[int, bool, int, int]:
        return (self.pretrain, self.intermediate, self.finetune, self.seed)


@dataclass
class Plan:
    """Every stage of a grid, by kind (in the order of :data:`kinds.KINDS`) and cell;
    ``plan.pretrain`` etc. are the stages of one kind."""

    cfg: ExperimentConfig
    by_kind: dict[str, dict[tuple, Stage]]
    examples_cell: tuple[int, bool, int, int]

    def __getattr__(self, kind: str) -> dict[tuple, Stage]:
        try:
            return self.__dict__["by_kind"][kind]
        except KeyError:
            raise AttributeError(kind) from None

    def stages(self, kind: str | None = None) -> list[Stage]:
        kinds = list(self.by_kind) if kind is None else [kind]
        return [s for k in kinds for s in self.by_kind[k].values()]


def build_plan(cfg: ExperimentConfig) -> Plan:
    """All stages of the grid with their keys (no data needed), kind by kind in registry order."""

    def make(kind, spec, **kw) -> Stage:
        spec = {"kind": kind, **spec}
        return Stage(kind, stable_hash(spec), spec=spec, **kw)

    planning = Planning(cfg, cfg.to_dict(), {}, make)
    for kind in KINDS.values():
        planning.stages[kind.name] = kind.plan(planning)
    i0 = False if False in cfg.intermediate.conditions else True
    examples = (max(cfg.pretrain.sizes), i0, max(cfg.finetune.sizes), cfg.seeds[0])
    return Plan(cfg, planning.stages, examples)


def image_steps(stage: Stage, cfg: ExperimentConfig, n_intel: int) -> int:
    """Training images processed by a stage (forward passes for ``evaluate``)."""
    return KINDS[stage.kind].image_steps(stage, cfg, n_intel)


def grid_cost(plan: Plan, n_intel: int = INTEL_TRAIN_IMAGES, n_intel_test: int = INTEL_TEST_IMAGES,
              include: Callable[[Stage], bool] | None = None) -> dict[str, dict[str, int]]:
    """Per training kind: ``runs`` (stages), ``image_steps`` (the sum of :func:`image_steps` over
    them) and ``eval_images`` (the Intel test set once per intermediate stage when
    ``evaluate_test``; under ``finetune``, the images of its ``evaluate`` stages). ``include``
    keeps only some stages (``--dry-run``: those still to run)."""
    keep = include or (lambda s: True)
    out = {}
    for kind in ("pretrain", "intermediate", "finetune"):
        stages = [s for s in plan.stages(kind) if keep(s)]
        out[kind] = {"runs": len(stages), "image_steps": sum(image_steps(s, plan.cfg, n_intel) for s in stages),
                     "eval_images": 0}
    if plan.cfg.intermediate.evaluate_test:
        out["intermediate"]["eval_images"] = n_intel_test * out["intermediate"]["runs"]
    out["finetune"]["eval_images"] = sum(image_steps(s, plan.cfg, n_intel) for s in plan.stages("evaluate") if keep(s))
    return out


def units_of(plan: Plan) -> list[Stage]:
    """The units of work in registry order, each kind's sorted by its ``order`` (pre-training:
    largest first), then intermediate stages, then the cells (their evaluate stages)."""
    out = []
    for kind in KINDS.values():
        if kind.unit:
            stages = plan.stages(kind.name)
            out += sorted(stages, key=kind.order) if kind.order else stages
    return out


def deps(unit: Stage) -> list[Stage]:
    """The unit's upstream unit, if any: the nearest upstream stage of a kind that is a unit (a
    cell waits for the stage its fine-tuning starts from)."""
    up = unit.upstream
    while up is not None and not KINDS[up.kind].unit:
        up = up.upstream
    return [up] if up is not None else []
