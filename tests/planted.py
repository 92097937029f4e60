"""Results sets with planted effects, for testing the analysis and the paper against known truths.

``planted(...)`` builds a fully filled results Dataset through :func:`diminish.results.empty_results`,
with the attrs that ``assemble`` writes (``config_text`` is a valid config of the same grid), so
``write_results`` + ``python -m diminish.analysis report`` + the paper accept it. ``truth(...)``
returns, for the same arguments, what was planted: the effect in every cell and the verdicts the
analysis must reach where the planted effect is large. Both are deterministic in ``seed``.

The model (mIoU in percent; P pre-training size, F fine-tune size, s seed; F0 = smallest F)::

    y(P, I, F, s) = base(F) + pt(P, F) + I * inter(P, F) + u_s + e_{P,I,F,s}
    u_s ~ N(0, seed_sd)   a per-seed offset shared by every cell of the seed (cancels in pairs)
    e   ~ N(0, noise)     independent

Curves (``curve``):
    saturating   base(F) = 75 - 45 (F/F0)^-0.6   plateau 75 in every condition (pt and inter
                 below vanish as F grows); the gain per doubling falls with F.
    loglinear    base(F) = 30 + 5 log2(F/F0)     no plateau; the gain per doubling is 5 everywhere,
                 and pt / inter are constant in F, so every condition's curve is exactly log-linear.

Shapes used below: e(P) = log2(1 + P/100) / log2(1 + Pmax/100), 0 at P = 0 and 1 at the largest
P (it grows with P); h(F) = (F/F0)^-0.6 for saturating curves (1 at F0, falling) and 1 for
loglinear ones.

Pre-training (``pretrain``), the difference P vs P=0 at the same I, F:
    helps     pt = +8 e(P) h(F)                   positive everywhere; grows with P; narrows with F
    hurts     pt = -8 e(P) h(F)                   negative everywhere (no head start to narrow)
    crosses   pt = e(P) (3 - 3 log2(F/F0))        +3 e(P) at F0, 0 at 2 F0, negative beyond: a head
                                                  start that turns into a growing penalty

Intermediate (``intermediate``), the difference I=True vs I=False at the same P, F:
    helps     inter = +3 h(F)                     a gain in every cell (so no penalty to shrink)
    hurts     inter = -3 h(F)                     a penalty in every cell, shrinking as F grows
                                                  (saturating) or constant (loglinear)
    mixed     inter = +4 in the cells with (i + j) % 3 == 0 (i, j: index of P and F),
              -0.3 in the others                  most cells lose slightly, the mean is a gain
    null      inter = 0

Scenarios (``SCENARIOS``) name the combinations the tests use; any other combination of the
keyword arguments also works. ``truth(...)["expected"]`` maps claim ids of verdicts.csv to the
verdict the analysis must reach; it lists only claims whose planted effect is large against the
noise and the number of seeds (for example "every cell" is expected to be refuted only with
little noise, since with 3 seeds a single cell rarely passes a Holm correction over 24 cells).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from diminish.results import empty_results

PRETRAIN = (0, 100, 300, 800)
FINETUNE = (20, 40, 80, 160, 320, 640)
PLATEAU = 75.0

SCENARIOS: dict[str, dict] = {
    "int_helps": dict(intermediate="helps", pretrain="helps", curve="saturating", n_seeds=3),
    "int_hurts": dict(intermediate="hurts", pretrain="helps", curve="saturating", n_seeds=3),
    "int_mixed": dict(intermediate="mixed", pretrain="helps", curve="saturating", n_seeds=3),
    "int_null": dict(intermediate="null", pretrain="helps", curve="saturating", n_seeds=3),
    "pt_hurts": dict(intermediate="hurts", pretrain="hurts", curve="saturating", n_seeds=3),
    "pt_crosses": dict(intermediate="hurts", pretrain="crosses", curve="saturating", n_seeds=3),
    "loglinear": dict(intermediate="hurts", pretrain="helps", curve="loglinear", n_seeds=3),
    "two_seeds": dict(intermediate="hurts", pretrain="helps", curve="saturating", n_seeds=2),
    "mixed_two_seeds": dict(intermediate="mixed", pretrain="helps", curve="saturating", n_seeds=2),
}

CONFIG = """name = "{name}"
description = "planted effects ({desc}); not results of any training"
seeds = {seeds}
synthetic = true

[pretrain]
sizes = {P}

[finetune]
sizes = {F}
"""


def _shapes(curve: str, P: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(base(F), e(P), h(F)) as in the module docstring."""
    r = F / F[0]
    e = np.log2(1 + P / 100.0) / np.log2(1 + P.max() / 100.0)
    if curve == "saturating":
        return PLATEAU - 45.0 * r**-0.6, e, r**-0.6
    if curve == "loglinear":
        return 30.0 + 5.0 * np.log2(r), e, np.ones_like(r)
    raise ValueError(f"unknown curve {curve!r} (saturating, loglinear)")


def effects(intermediate: str = "hurts", pretrain: str = "helps", curve: str = "saturating",
            pretrain_sizes=PRETRAIN, finetune_sizes=FINETUNE) -> dict[str, np.ndarray]:
    """The noise-free planted parts: ``base`` (F), ``pt`` (P, F), ``inter`` (P, F)."""
    P = np.asarray(pretrain_sizes, float)
    F = np.asarray(finetune_sizes, float)
    base, e, h = _shapes(curve, P, F)
    if pretrain == "helps":
        pt = 8.0 * np.outer(e, h)
    elif pretrain == "hurts":
        pt = -8.0 * np.outer(e, h)
    elif pretrain == "crosses":
        pt = np.outer(e, 3.0 - 3.0 * np.log2(F / F[0]))
    else:
        raise ValueError(f"unknown pretrain effect {pretrain!r} (helps, hurts, crosses)")
    ones = np.ones((len(P), 1))
    if intermediate == "helps":
        inter = 3.0 * ones * h
    elif intermediate == "hurts":
        inter = -3.0 * ones * h
    elif intermediate == "mixed":
        i, j = np.meshgrid(np.arange(len(P)), np.arange(len(F)), indexing="ij")
        inter = np.where((i + j) % 3 == 0, 4.0, -0.3)
    elif intermediate == "null":
        inter = np.zeros((len(P), len(F)))
    else:
        raise ValueError(f"unknown intermediate effect {intermediate!r} (helps, hurts, mixed, null)")
    return dict(base=base, pt=pt, inter=inter)


def planted(intermediate: str = "hurts", pretrain: str = "helps", curve: str = "saturating", n_seeds: int = 3,
            noise: float = 0.3, seed_sd: float = 0.5, seed: int = 0, pretrain_sizes=PRETRAIN,
            finetune_sizes=FINETUNE, name: str = "planted") -> xr.Dataset:
    """A results Dataset with the planted effects (see the module docstring); deterministic in ``seed``."""
    P, F, seeds = tuple(pretrain_sizes), tuple(finetune_sizes), tuple(range(n_seeds))
    desc = f"intermediate {intermediate}, pre-training {pretrain}, {curve} in F, noise {noise:g}"
    attrs = {
        "config_name": name, "config_hash": f"planted-{intermediate}-{pretrain}-{curve}-{n_seeds}-{seed}",
        "config_text": CONFIG.format(name=name, desc=desc, seeds=list(seeds), P=list(P), F=list(F)),
        "description": desc, "synthetic": 1, "package_version": "planted", "git_commit": "planted",
        "torch_version": "none", "accelerate_version": "none", "device": "none (planted)",
        "pets_root": "planted", "intel_root": "planted", "imagenet_root": "planted",
        "cache_hash_pets": "none", "cache_hash_intel": "none", "cache_hash_imagenet": "none",
        "intermediate_accuracy_split": "test", "batch_sizes": "none", "created": "2026-01-01T00:00:00+00:00",
    }
    ds = empty_results(P, (False, True), F, seeds, attrs=attrs)
    eff = effects(intermediate, pretrain, curve, P, F)
    rng = np.random.default_rng(seed)
    clean = (eff["base"][None, None, :] + eff["pt"][:, None, :]
             + np.array([0.0, 1.0])[None, :, None] * eff["inter"][:, None, :])       # (P, I, F)
    u = rng.normal(0.0, seed_sd, size=n_seeds)
    miou = clean[..., None] + u + rng.normal(0.0, noise, size=clean.shape + (n_seeds,))
    ds["miou"][:] = miou
    ds["accuracy"][:] = 40.0 + 0.6 * miou + rng.normal(0.0, noise / 2, size=miou.shape)
    # class IoUs spread around mIoU (their mean), the spread narrowed where it would leave [0, 100]
    spread = np.clip(np.minimum(miou / 19.0, (100.0 - miou) / 15.0), 0.0, 1.0)
    ds["iou"][:] = miou[..., None] + spread[..., None] * np.array([4.0, 15.0, -19.0])
    Fs = np.asarray(F, float)[None, None, :, None]
    ds["train_seconds"][:] = 0.01 * Fs + 0 * miou
    ds["final_loss"][:] = 0.3 + 10.0 / Fs + 0 * miou
    ds["pretrain_loss"][:] = np.where(np.asarray(P)[:, None] > 0, 0.5, np.nan) + np.zeros(n_seeds)
    ds["intermediate_accuracy"][:] = 70.0 + rng.normal(0.0, 1.0, size=(len(P), n_seeds))
    return ds


def scenario(name: str, **overrides) -> xr.Dataset:
    """``planted(**SCENARIOS[name], name=name, **overrides)``."""
    return planted(**{**SCENARIOS[name], "name": name, **overrides})


def truth(intermediate: str = "hurts", pretrain: str = "helps", curve: str = "saturating", n_seeds: int = 3,
          noise: float = 0.3, pretrain_sizes=PRETRAIN, finetune_sizes=FINETUNE, **_ignored) -> dict:
    """What was planted, as data.

    Keys: ``inter`` and ``pt`` (planted differences, arrays (P, F); ``pt`` row 0 is P = 0, all
    zero), ``inter_mean`` (mean over cells), ``inter_cells_lower`` / ``inter_cells`` (cells whose
    planted difference is negative / all cells), ``pt_mean`` (over P > 0), ``pt_sign_changes``
    (whether the pre-training difference changes sign along F), ``gain_per_image_falls`` (always:
both curves are concave in F), ``plateau`` ({(P, I): the plateau,
    or None when there is none}; the intermediate arm of ``mixed`` jumps between cells, so it has
    none), ``gain_per_doubling_falls`` (True / False along F),
    and ``expected``: {claim_id: verdict} for the claims whose planted effect is large.
    """
    eff = effects(intermediate, pretrain, curve, pretrain_sizes, finetune_sizes)
    inter, pt = eff["inter"], eff["pt"]
    P = np.asarray(pretrain_sizes)
    out = dict(inter=inter, pt=pt, inter_mean=float(inter.mean()), inter_cells_lower=int((inter < 0).sum()),
               inter_cells=int(inter.size), pt_mean=float(pt[P > 0].mean()),
               pt_sign_changes=bool((pt[P > 0] > 0).any() and (pt[P > 0] < 0).any()),
               plateau={(int(p), i): (PLATEAU if curve == "saturating" and not (i and intermediate == "mixed")
                                      else None) for p in P for i in (False, True)},
               gain_per_doubling_falls=curve == "saturating", gain_per_image_falls=True, n_seeds=n_seeds,
               noise=noise)
    ex: dict[str, str] = {}
    # the pooled intermediate effect: sign of the mean planted difference
    ex["INT_HURTS"] = {"hurts": "supported", "helps": "not supported", "mixed": "not supported",
                       "null": "inconclusive"}[intermediate]
    # "the intermediate penalty shrinks as F grows": needs a penalty in the first place
    if intermediate in ("helps", "mixed"):
        ex["INT_SHRINKS_WITH_F"] = "not supported"
    elif intermediate == "hurts" and curve == "saturating":
        ex["INT_SHRINKS_WITH_F"] = "supported"
    elif intermediate == "null":
        ex["INT_SHRINKS_WITH_F"] = "inconclusive"
    # "every cell": refuted only when some cell goes the other way with Holm p < 0.05 over all cells,
    # which with 3 seeds needs little noise; supported when every cell's interval is on the claimed side
    if intermediate in ("helps", "mixed") and n_seeds >= 3 and noise <= 0.1:
        ex["INT_EVERY_CELL"] = "not supported"
    if intermediate == "hurts" and curve == "loglinear" and n_seeds >= 3 and noise <= 0.3:
        ex["INT_EVERY_CELL"] = "supported"
    ex["PT_HELPS"] = {"helps": "supported", "hurts": "not supported"}.get(pretrain, ex.get("PT_HELPS", ""))
    if not ex["PT_HELPS"]:
        del ex["PT_HELPS"]
    # "the head start narrows as F grows": a head start that stays a head start and shrinks
    if pretrain == "helps" and curve == "saturating":
        ex["PT_SHRINKS_WITH_F"] = "supported"
    elif pretrain in ("hurts", "crosses"):
        ex["PT_SHRINKS_WITH_F"] = "not supported"
    if pretrain == "hurts" and n_seeds >= 3 and noise <= 0.1:
        ex["PT_EVERY_CELL"] = "not supported"
    if pretrain == "helps" and curve == "loglinear" and n_seeds >= 3 and noise <= 0.3:
        ex["PT_EVERY_CELL"] = "supported"
    # along P at the smallest F (where the pre-training effect is largest): e(P) is concave in P, so a
    # helping pre-training gives each added image less; a hurting one gives no returns to diminish
    f0 = int(np.asarray(finetune_sizes)[0])
    if pretrain == "helps":
        ex[f"DR_P_F{f0}_I0"] = "supported"
    elif pretrain == "hurts":
        ex[f"DR_P_F{f0}_I0"] = "not supported"
        if (P > 0).sum() >= 3:  # the per-doubling slope along P needs 3 pre-training sizes
            ex[f"H1_P_F{f0}_I0"] = "not supported"
    for p in (0,) + tuple(int(x) for x in P if x > 0):
        for i in (0, 1):
            ex[f"FT_HELPS_P{p}_I{i}"] = "supported"
            if i and intermediate == "mixed":
                continue  # jumps between cells: no smooth curve to judge
            # both curves are concave in F: each added image is worth less (the paper's sense)
            ex[f"DR_F_P{p}_I{i}"] = "supported"
            # only the saturating curve buys less per doubling (the strong sense)
            if curve == "saturating":
                ex[f"H1_F_P{p}_I{i}"] = "supported"
    out["expected"] = ex
    return out
