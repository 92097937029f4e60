"""The stage kinds, each defined once: one :class:`Kind` record says how its stages enter the plan
(their specs, hence their keys), what runs one of them, which config section trains it, which
dataset it reads, which of its files later work needs, whether a runner claims it as a unit of
work, what it costs in image-steps and which results variables its records fill.

The runner, ``--dry-run``/``--status``, assembly and the data checks all read this registry; adding
a kind is one :func:`register` call plus the module that runs it (``tests/test_kinds.py`` registers
a toy kind and runs it through a whole grid). The records are torch-free: ``run`` names its
function as ``"module:function"``, imported when a grid trains (:func:`runner_of`).

The order of :data:`KINDS` is the order of planning: a kind's ``plan`` sees the stages of the kinds
before it. The four built-in kinds' specs are those of every stage key made so far: they must not
change (``docs/architecture.md``, "Keys").
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..config import StageConfig
from ..seeds import stable_hash


@dataclass(frozen=True)
class Kind:
    """One stage kind. ``plan(p)`` returns its stages keyed by cell, built with ``p.make`` from the
    :class:`Planning` ``p`` (the config, the stages planned so far); ``run`` is what runs one unit
    of it: ``run(ctx, plan, stage) -> record``. ``section`` names the config table with its
    :class:`StageConfig` (None: it does not train); ``dataset`` the dataset it reads (the data
    check and the caches); ``needed`` the files of a finished stage that later work reads;
    ``unit`` whether a runner claims it (False: it runs inside the unit downstream of it, as
    fine-tuning inside its cell); ``order`` sorts its units; ``image_steps(stage, cfg, n_intel)`` its
    cost; ``results(ds, records) -> ds`` adds its variables to results.nc, described by ``schema``
    (None: the built-in kinds, whose records :func:`diminish.results.from_records` reads)."""

    name: str
    plan: Callable[[Planning], dict]
    run: str | Callable
    section: str | None = None
    dataset: str | None = None
    needed: tuple[str, ...] = ("record.json",)
    unit: bool = True
    order: Callable[[Any], Any] | None = None
    image_steps: Callable[[Any, Any, int], int] = lambda stage, cfg, n_intel: 0
    results: Callable | None = None
    schema: dict[str, tuple[str, str, str]] = dataclasses.field(default_factory=dict)


@dataclass
class Planning:
    """What a kind's ``plan`` builds on: the config (and its dict form), the stages planned so far
    by kind, and ``make(kind, spec, **fields) -> Stage`` (the key is the hash of the spec)."""

    cfg: Any
    d: dict
    stages: dict[str, dict]
    make: Callable

    def init_key(self, seed: int) -> str:
        """The key of the seed's random initialisation (not a stage: it has no folder)."""
        return stable_hash({"kind": "init", "model": self.d["model"], "seed": seed})

    def data_slice(self, name: str) -> dict:
        data = self.cfg.data
        return {"root": self.d["data"][f"{name}_root"], "limit": data.limit, "skip_bad": data.skip_bad}


def train_slice(sc: StageConfig) -> dict[str, Any]:
    """The fields of the base :class:`StageConfig`, as every training stage's spec holds them."""
    return {f.name: getattr(sc, f.name) for f in dataclasses.fields(StageConfig)}


# -- the four kinds of the study ------------------------------------------------------------------
def _plan_pretrain(p: Planning) -> dict:
    cfg, out = p.cfg, {}
    # norm_target enters the pretrain keys only when on, so older results keep their keys
    simmim = {k: v for k, v in p.d["simmim"].items() if not (k == "norm_target" and not v)}
    for seed in cfg.seeds:
        for size in cfg.pretrain.sizes:
            if size > 0:
                out[size, seed] = p.make("pretrain", {
                    "upstream": p.init_key(seed), "seed": seed, "size": size, "data_seed": cfg.pretrain.data_seed,
                    "simmim": simmim, "train": train_slice(cfg.pretrain), "data": p.data_slice("imagenet"),
                }, pretrain=size, seed=seed, upstream=None)
    return out


def _start(p: Planning, size: int, seed: int):
    """The stage a P = ``size`` branch starts from (None: the seed's random initialisation) and its key."""
    up = p.stages["pretrain"].get((size, seed))
    return up, (up.key if up is not None else p.init_key(seed))


def _plan_intermediate(p: Planning) -> dict:
    cfg, out = p.cfg, {}
    if True not in cfg.intermediate.conditions:
        return out
    for seed in cfg.seeds:
        for size in cfg.pretrain.sizes:
            up, up_key = _start(p, size, seed)
            out[size, seed] = p.make("intermediate", {
                "upstream": up_key, "seed": seed, "train": train_slice(cfg.intermediate),
                "num_classes": cfg.intermediate.num_classes,
                "evaluate_test": cfg.intermediate.evaluate_test, "data": p.data_slice("intel"),
            }, pretrain=size, seed=seed, upstream=up)
    return out


def _plan_finetune(p: Planning) -> dict:
    cfg, out = p.cfg, {}
    for seed in cfg.seeds:
        for size in cfg.pretrain.sizes:
            up, up_key = _start(p, size, seed)
            for i in sorted(cfg.intermediate.conditions):
                src = p.stages["intermediate"][size, seed] if i else up
                for f in cfg.finetune.sizes:
                    out[size, i, f, seed] = p.make("finetune", {
                        "upstream": src.key if src else up_key, "seed": seed, "size": f,
                        "test_size": cfg.finetune.test_size, "split_seed": cfg.finetune.split_seed,
                        "train": train_slice(cfg.finetune), "data": p.data_slice("pets"),
                    }, pretrain=size, seed=seed, intermediate=i, finetune=f, upstream=src)
    return out


def _plan_evaluate(p: Planning) -> dict:
    # the original-resolution option enters the key only when on, so older results keep their keys
    extra = {"eval_original_resolution": True} if p.cfg.finetune.eval_original_resolution else {}
    return {cell: p.make("evaluate", {"upstream": ft.key, **extra}, pretrain=ft.pretrain, seed=ft.seed,
                         intermediate=ft.intermediate, finetune=ft.finetune, upstream=ft)
            for cell, ft in p.stages["finetune"].items()}


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add a stage kind after those registered so far (a name may be registered once)."""
    if kind.name in KINDS:
        raise ValueError(f"stage kind {kind.name!r} is registered already")
    KINDS[kind.name] = kind
    return kind


def unregister(name: str) -> None:
    """Remove a kind added by :func:`register` (the four of the study stay)."""
    if name in BUILTIN:
        raise ValueError(f"stage kind {name!r} is one of the study's")
    KINDS.pop(name, None)


def runner_of(kind: Kind) -> Callable:
    """The function that runs one stage of ``kind``: ``kind.run`` itself, or the function its
    ``"module:function"`` names, imported here - the one place where the runner loads the modules
    that train (torch), so that planning, ``--dry-run`` and ``--status`` never do."""
    if callable(kind.run):
        return kind.run
    module, _, name = kind.run.partition(":")
    return getattr(importlib.import_module(module), name)


for _kind in (
    Kind("pretrain", _plan_pretrain, "diminish.runner.stages:run_pretrain", section="pretrain",
         dataset="imagenet", needed=("record.json", "model.pt"), order=lambda s: (-s.pretrain, s.seed),
         image_steps=lambda s, cfg, n_intel: s.pretrain * cfg.pretrain.epochs),
    Kind("intermediate", _plan_intermediate, "diminish.runner.stages:run_intermediate", section="intermediate",
         dataset="intel", needed=("record.json", "model.pt"),
         image_steps=lambda s, cfg, n_intel: n_intel * cfg.intermediate.epochs),
    Kind("finetune", _plan_finetune, "diminish.runner.stages:run_finetune", section="finetune", dataset="pets",
         unit=False, image_steps=lambda s, cfg, n_intel: s.finetune * cfg.finetune.epochs),
    Kind("evaluate", _plan_evaluate, "diminish.runner.stages:run_cell", dataset="pets",
         image_steps=lambda s, cfg, n_intel: cfg.finetune.test_size),
):
    register(_kind)
BUILTIN = tuple(KINDS)
