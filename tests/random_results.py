"""Random valid results files, for the property test of the whole report (tests/test_report_property.py).

``random_results(case)`` is deterministic in ``case`` (an int): a results Dataset that
:func:`diminish.results.read_results` accepts, with the attrs ``assemble`` writes (``config_text`` a
valid config of the same grid), drawn from

* grid: 1-5 seeds, 2-6 fine-tuning sizes, 1-4 pre-training sizes (P = 0 among them in most cases,
  not all: a grid without a random-initialisation baseline is valid too), the intermediate flag off
  only, on only, or both;
* effects: pre-training and intermediate fine-tuning each help, hurt, are mixed (sign by cell) or
  null; curves saturating, log-linear, flat or decreasing in F; noise from almost none to large;
* missing cells (NaN, "not run"): none, scattered (cell-seeds), whole cells, the grid cut off part
  way in the runner's order (a half-finished grid), or all but a handful;
* extremes: scores near 0 or 100, one seed, identical seeds (zero spread).

``describe(case)`` says in words what was drawn (for failure messages). Values are clipped to the
physical ranges, and class IoUs average to mIoU, so every file is valid by construction.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from diminish.results import empty_results

CONFIG = """name = "{name}"
description = "random results for the property test (case {case}); not results of any training"
seeds = {seeds}
synthetic = true

[pretrain]
sizes = {P}

[intermediate]
conditions = {I}

[finetune]
sizes = {F}
"""
EFFECTS = ("helps", "hurts", "mixed", "null")
CURVES = ("saturating", "loglinear", "flat", "decreasing")
MISSING = ("none", "none", "scattered", "cells", "half-finished", "few")


def draw(case: int) -> dict:
    """The choices of one case (every random draw happens here, in a fixed order)."""
    rng = np.random.default_rng([25, case])
    n_p = int(rng.integers(1, 5))
    p_pool = np.array([100, 300, 800, 2000, 45_000, 100_000, 200_000])
    P = sorted(rng.choice(p_pool, size=n_p, replace=False).tolist())
    if rng.random() < 0.8:
        P = [0] + P[1:] if n_p > 1 else [0]
    n_f = int(rng.integers(2, 7))
    if rng.random() < 0.6:  # a doubling ladder, as the study uses
        start = int(rng.choice([10, 20, 250]))
        F = [start * 2**k for k in range(n_f)]
    else:
        F = sorted(rng.choice(np.arange(5, 7000), size=n_f, replace=False).tolist())
    inter = [[False], [True], [False, True], [False, True]][int(rng.integers(0, 4))]
    n_seeds = int(rng.integers(1, 6))
    return dict(
        P=[int(p) for p in P], F=[int(f) for f in F], I=inter, seeds=list(range(n_seeds)),
        pretrain=str(rng.choice(EFFECTS)), intermediate=str(rng.choice(EFFECTS)), curve=str(rng.choice(CURVES)),
        noise=float(rng.choice([0.0, 0.05, 0.5, 2.0, 6.0])), seed_sd=float(rng.choice([0.0, 0.5, 3.0])),
        level=float(rng.choice([2.0, 30.0, 60.0, 97.0])), size=float(rng.choice([1.0, 5.0, 20.0])),
        missing=str(rng.choice(MISSING)), fraction=float(rng.uniform(0.05, 0.6)),
        curves=bool(rng.random() < 0.3), variants=bool(rng.random() < 0.3), rng=rng,
    )


def describe(case: int) -> str:
    d = draw(case)
    return (f"case {case}: P={d['P']} I={d['I']} F={d['F']} seeds={len(d['seeds'])} pretrain {d['pretrain']}, "
            f"intermediate {d['intermediate']}, {d['curve']} curve, level {d['level']:g}, noise {d['noise']:g}, "
            f"seed sd {d['seed_sd']:g}, missing {d['missing']} ({d['fraction']:.2f})")


def _sign(effect: str, shape: tuple[int, int], rng) -> np.ndarray:
    if effect == "helps":
        return np.ones(shape)
    if effect == "hurts":
        return -np.ones(shape)
    if effect == "mixed":
        return rng.choice([-1.0, 1.0], size=shape)
    return np.zeros(shape)


def _mask(d: dict, shape: tuple[int, ...], rng) -> np.ndarray:
    """True where a cell-seed was run, in (P, I, F, seed) order."""
    kind, frac = d["missing"], d["fraction"]
    run = np.ones(shape, bool)
    if kind == "scattered":
        run = rng.random(shape) >= frac
    elif kind == "cells":
        run = np.broadcast_to((rng.random(shape[:3]) >= frac)[..., None], shape).copy()
    elif kind == "half-finished":  # the runner finishes cells in plan order: stop part way
        flat = run.reshape(-1)
        flat[int(round((1 - frac) * flat.size)):] = False
    elif kind == "few":
        flat = np.zeros(run.size, bool)
        flat[rng.choice(run.size, size=min(run.size, int(rng.integers(1, 4))), replace=False)] = True
        run = flat.reshape(shape)
    return run


def random_results(case: int, name: str | None = None) -> xr.Dataset:
    d = draw(case)
    rng = d["rng"]
    name = name or f"random-{case}"
    P, F, inter, seeds = d["P"], d["F"], d["I"], d["seeds"]
    attrs = {
        "config_name": name, "config_hash": f"random-{case}", "synthetic": 1, "description": describe(case),
        "config_text": CONFIG.format(name=name, case=case, seeds=seeds, P=P, F=F, I=str(inter).lower()),
        "package_version": "random", "git_commit": "random", "torch_version": "none", "accelerate_version": "none",
        "device": "none (random)", "pets_root": "random", "intel_root": "random", "imagenet_root": "random",
        "cache_hash_pets": "none", "cache_hash_intel": "none", "cache_hash_imagenet": "none",
        "intermediate_accuracy_split": "test", "batch_sizes": "none", "created": "2026-01-01T00:00:00+00:00",
    }
    ds = empty_results(P, inter, F, seeds, attrs=attrs)
    nP, nI, nF, nS = (ds.sizes[k] for k in ("pretrain", "intermediate", "finetune", "seed"))
    r = np.asarray(F, float) / F[0]
    base = {"saturating": 1.0 - r**-0.6, "loglinear": np.log2(r) / max(np.log2(r[-1]), 1.0),
            "flat": np.zeros(nF), "decreasing": -np.log2(r) / max(np.log2(r[-1]), 1.0)}[d["curve"]]
    e = np.log2(1 + np.asarray(P, float) / 100.0)
    e = e / e.max() if e.max() > 0 else e
    pt = d["size"] * _sign(d["pretrain"], (nP, nF), rng) * e[:, None]
    it = d["size"] * _sign(d["intermediate"], (nP, nF), rng) * 0.5
    iflag = np.asarray(inter, float)
    clean = d["level"] + d["size"] * base[None, None, :] + pt[:, None, :] + iflag[None, :, None] * it[:, None, :]
    u = rng.normal(0.0, d["seed_sd"], size=nS)
    miou = clean[..., None] + u + rng.normal(0.0, d["noise"], size=clean.shape + (nS,))
    miou = np.clip(miou, 0.0, 100.0)
    run = _mask(d, miou.shape, rng)
    miou = np.where(run, miou, np.nan)
    ds["miou"][:] = miou
    ds["accuracy"][:] = np.clip(40.0 + 0.6 * miou + rng.normal(0.0, 0.2 + d["noise"] / 2, miou.shape), 0, 100)
    spread = np.clip(np.minimum(miou / 19.0, (100.0 - miou) / 15.0), 0.0, 1.0)
    ds["iou"][:] = np.clip(miou[..., None] + spread[..., None] * np.array([4.0, 15.0, -19.0]), 0.0, 100.0)
    Fs = np.asarray(F, float)[None, None, :, None]
    ds["train_seconds"][:] = np.where(run, 0.01 * Fs + 0 * u, np.nan)
    ds["final_loss"][:] = np.where(run, 0.3 + 10.0 / Fs + 0 * u, np.nan)
    ds["pretrain_loss"][:] = np.where(np.asarray(P)[:, None] > 0, 0.5, np.nan) + np.zeros(nS)
    has_inter = True in inter
    ds["intermediate_accuracy"][:] = (np.clip(70.0 + rng.normal(0.0, 1.0, size=(nP, nS)), 0, 100) if has_inter
                                      else np.full((nP, nS), np.nan))
    if d["variants"]:
        ds["miou_image"][:] = np.clip(miou - 2.0, 0, 100)
    if d["curves"]:
        ds.coords["finetune_epoch"] = np.arange(1, 4)
        loss = np.where(run, 1.0, np.nan)[..., None] * np.array([1.2, 0.8, 0.6])
        ds["finetune_loss_curve"] = (("pretrain", "intermediate", "finetune", "seed", "finetune_epoch"), loss)
    return ds
