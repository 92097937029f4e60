"""Finishing an experiment folder: remove what killed processes left behind (:func:`tidy`), then
build ``results.nc`` from every finished stage's record, with the run's provenance in its
attributes, and copy the examples cell's ``examples.npz`` next to it (:func:`assemble`); both
under the folder's lock (:func:`finish`). Cells that are not done are NaN."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import accelerate
import torch

from .. import __version__, results
from ..config import RuntimeConfig
from .kinds import KINDS
from .plan import Plan, units_of
from .store import Store, root_lock


def tidy_and_assemble(plan: Plan, store: Store, rt: RuntimeConfig, claim_timeout: float = 1800.0) -> None:
    """Tidy and assemble under the folder lock; say where the results are and whether the grid is
    complete. A folder that cannot be written and already holds results.nc is left as it is."""
    if (store.root / "results.nc").is_file() and not os.access(store.root, os.W_OK):
        print(f"results: {store.root / 'results.nc'} (read-only folder: left as it is)", flush=True)
        return
    with root_lock(store):
        tidy(plan, store, rt, claim_timeout)
        path = assemble(plan, store, rt)
    missing = [u for u in units_of(plan) if not store.is_done(u)]
    say = f"{path}" + (f" ({len(missing)} units not finished)" if missing else " (grid complete)")
    print(f"results: {say}", flush=True)


def tidy(plan: Plan, store: Store, rt: RuntimeConfig, claim_timeout: float) -> None:
    """Remove what killed processes left behind (call holding :func:`root_lock`): temporary files
    in the experiment folder, claims on finished units whose owner is gone, and the weights of
    evaluated cells that a kill kept from being deleted (without --save-models)."""
    for tmp in store.root.glob(".tmp-*"):
        with contextlib.suppress(FileNotFoundError, IsADirectoryError):
            tmp.unlink()
    for unit in units_of(plan):
        if store.is_done(unit) and store.claims.state(unit, claim_timeout) == "stale":
            with contextlib.suppress(FileNotFoundError):
                store.claims.path(unit).unlink()
    if not rt.save_models:
        for unit in plan.stages("evaluate"):
            if store.is_done(unit):
                with contextlib.suppress(FileNotFoundError):
                    (store.dir(unit.upstream) / "model.pt").unlink()


def assemble(plan: Plan, store: Store, rt: RuntimeConfig) -> Path:
    """results.nc (and examples.npz) from every finished record; NaN where a cell is not done."""
    cfg = plan.cfg
    done = {k: [s for s in plan.stages(k) if store.is_done(s)] for k in KINDS}
    recs = {k: [store.record(s) for s in v] for k, v in done.items()}
    attrs = provenance(cfg, rt, recs)
    for name in ("pets", "intel", "imagenet"):
        if "," in attrs[f"cache_hash_{name}"]:  # stages trained on different contents of one dataset
            print(f"warning: results.nc mixes {name} data versions (cache hashes {attrs[f'cache_hash_{name}']}): "
                  f"the dataset changed under {getattr(cfg.data, f'{name}_root')} after some stages finished; "
                  "rerun in a new --out folder for consistent results", file=sys.stderr, flush=True)
    ds = results.from_records(cfg.pretrain.sizes, cfg.intermediate.conditions, cfg.finetune.sizes, cfg.seeds,
                              recs["evaluate"], recs["pretrain"], recs["intermediate"], attrs,
                              finetune_records=recs["finetune"])
    extra = {}
    for kind in KINDS.values():  # a registered kind beyond the study's adds its own variables
        if kind.results is not None:
            ds = kind.results(ds, recs[kind.name])
            extra.update(kind.schema)
    path = results.write_results(ds, store.root / "results.nc", extra)
    ex = plan.evaluate.get(plan.examples_cell)
    if ex is not None and (store.dir(ex) / "examples.npz").is_file():
        tmp = store.root / f".tmp-examples-{os.getpid()}.npz"
        shutil.copyfile(store.dir(ex) / "examples.npz", tmp)
        os.replace(tmp, store.root / "examples.npz")
    return path


def provenance(cfg, rt: RuntimeConfig, recs: dict) -> dict:
    def joined(values) -> str:
        vals = sorted({str(v) for v in values if v})
        return ",".join(vals) if vals else "none"

    inter = recs["intermediate"]
    return {
        "config_name": cfg.name, "config_hash": cfg.hash, "config_text": cfg.source_text,
        "description": cfg.description, "synthetic": int(cfg.synthetic),
        "package_version": __version__, "git_commit": git_commit(),
        "torch_version": torch.__version__, "accelerate_version": accelerate.__version__,
        "device": joined(r.get("device") for k in KINDS for r in recs[k]),
        "pets_root": str(Path(cfg.data.pets_root).resolve()),
        "intel_root": str(Path(cfg.data.intel_root).resolve()),
        "imagenet_root": str(Path(cfg.data.imagenet_root).resolve()),
        "cache_hash_pets": joined(r.get("cache_hash") for r in recs["evaluate"]),
        "cache_hash_intel": joined(r.get("cache_hash") for r in inter),
        "cache_hash_imagenet": joined(r.get("cache_hash") for r in recs["pretrain"]),
        "intermediate_accuracy_split": joined(r.get("accuracy_split") for r in inter),
        "batch_sizes": f"pretrain {cfg.pretrain.batch_size}, intermediate {cfg.intermediate.batch_size}, "
                       f"finetune {cfg.finetune.batch_size}",
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def git_commit() -> str:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"
