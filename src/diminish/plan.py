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

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .config import ExperimentConfig, StageConfig, stable_hash

KINDS = ("pretrain", "intermediate", "finetune", "evaluate")
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
    cfg: ExperimentConfig
    pretrain: dict[tuple[int, int], Stage]
    intermediate: dict[tuple[int, int], Stage]
    finetune: dict[tuple[int, bool, int, int], Stage]
    evaluate: dict[tuple[int, bool, int, int], Stage]
    examples_cell: tuple[int, bool, int, int]

    def stages(self, kind: str | None = None) -> list[Stage]:
        kinds = KINDS if kind is None else (kind,)
        return [s for k in kinds for s in getattr(self, k).values()]


def _train_slice(sc: StageConfig) -> dict[str, Any]:
    return {f.name: getattr(sc, f.name) for f in dataclasses.fields(StageConfig)}


def build_plan(cfg: ExperimentConfig) -> Plan:
    """All stages of the grid with their keys (no data needed)."""
    d = cfg.to_dict()
    pre, inter, fine, ev = {}, {}, {}, {}

    def data_slice(name: str) -> dict:
        return {"root": d["data"][f"{name}_root"], "limit": cfg.data.limit, "skip_bad": cfg.data.skip_bad}

    # norm_target enters the pretrain keys only when on, so older results keep their keys
    simmim_spec = {k: v for k, v in d["simmim"].items() if not (k == "norm_target" and not v)}

    def ev_spec(ft: Stage) -> dict:  # the original-resolution option enters the key only when on
        return {"upstream": ft.key, **({"eval_original_resolution": True}
                                       if cfg.finetune.eval_original_resolution else {})}

    def make(kind, spec, **kw) -> Stage:
        spec = {"kind": kind, **spec}
        return Stage(kind, stable_hash(spec), spec=spec, **kw)

    for seed in cfg.seeds:
        init_key = stable_hash({"kind": "init", "model": d["model"], "seed": seed})
        for p in cfg.pretrain.sizes:
            up: Stage | None = None
            if p > 0:
                up = pre[p, seed] = make("pretrain", {
                    "upstream": init_key, "seed": seed, "size": p, "data_seed": cfg.pretrain.data_seed,
                    "simmim": simmim_spec, "train": _train_slice(cfg.pretrain), "data": data_slice("imagenet"),
                }, pretrain=p, seed=seed, upstream=None)
            up_key = up.key if up else init_key
            if True in cfg.intermediate.conditions:
                inter[p, seed] = make("intermediate", {
                    "upstream": up_key, "seed": seed, "train": _train_slice(cfg.intermediate),
                    "num_classes": cfg.intermediate.num_classes,
                    "evaluate_test": cfg.intermediate.evaluate_test, "data": data_slice("intel"),
                }, pretrain=p, seed=seed, upstream=up)
            for i in sorted(cfg.intermediate.conditions):
                src = inter[p, seed] if i else up
                for f in cfg.finetune.sizes:
                    ft = fine[p, i, f, seed] = make("finetune", {
                        "upstream": src.key if src else init_key, "seed": seed, "size": f,
                        "test_size": cfg.finetune.test_size, "split_seed": cfg.finetune.split_seed,
                        "train": _train_slice(cfg.finetune), "data": data_slice("pets"),
                    }, pretrain=p, seed=seed, intermediate=i, finetune=f, upstream=src)
                    ev[p, i, f, seed] = make("evaluate", ev_spec(ft), pretrain=p, seed=seed,
                                             intermediate=i, finetune=f, upstream=ft)
    i0 = False if False in cfg.intermediate.conditions else True
    examples = (max(cfg.pretrain.sizes), i0, max(cfg.finetune.sizes), cfg.seeds[0])
    return Plan(cfg, pre, inter, fine, ev, examples)


def image_steps(stage: Stage, cfg: ExperimentConfig, n_intel: int) -> int:
    """Training images processed by a stage (forward passes for ``evaluate``)."""
    if stage.kind == "pretrain":
        return stage.pretrain * cfg.pretrain.epochs
    if stage.kind == "intermediate":
        return n_intel * cfg.intermediate.epochs
    if stage.kind == "finetune":
        return stage.finetune * cfg.finetune.epochs
    return cfg.finetune.test_size


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
    """Pre-training (largest first), intermediate, then the cells (their evaluate stages)."""
    pre = sorted(plan.stages("pretrain"), key=lambda s: (-s.pretrain, s.seed))
    return pre + plan.stages("intermediate") + plan.stages("evaluate")


def deps(unit: Stage) -> list[Stage]:
    """The unit's upstream unit, if any (a cell waits for the stage its fine-tuning starts from)."""
    up = unit.upstream.upstream if unit.kind == "evaluate" else unit.upstream
    return [up] if up is not None else []
