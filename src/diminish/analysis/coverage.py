"""How often the pooled models' 95% intervals cover the truth: a simulation with the study's design and noise.

Each simulated data set has the demo grid (P = 0, 100, 300, 800; F = 20 ... 320; with and without
the intermediate stage; 2 or 3 seeds) and a planted truth: every run is ::

    y(P, I, F, s) = base(F) + tau(P, F) [P > 0] + I * iota(P, F) + u_s + v_(P, s) + e

with ``e ~ N(0, noise(F))`` independent per run, ``noise(F)`` the demo's seed SD per fine-tune size
(pooled over cells, mIoU), ``u_s`` a seed offset and ``v_(P, s)`` an optional offset shared by every
run fine-tuned from the same pre-trained model (``shared_sd``; 0 in the main cases). Null: tau =
iota = 0. Non-null: tau = 8 e(P) h(F), iota = -3 h(F), with e(P) = log2(1 + P/100) / log2(9) and h(F) =
(F / 20)^-0.6, the shapes of tests/planted.py: effects that grow with P and shrink with F, so neither
is linear in the model's covariates.

The truths the intervals must cover: the average difference over the cells the model uses (term
``mean``) and the average difference at each F (effect_by_f.csv). ``model="differences"`` fits the
pre-training effect as it was fitted before (OLS on per-seed differences, as if independent, though
every difference at one (F, seed) shares the same from-scratch run); ``"runs"`` is the model of
:mod:`.pooled` (the runs themselves, with a free from-scratch level per F). ``python -m
diminish.analysis.coverage`` prints the table that analysis/README.md reports.
"""

# ruff: noqa: E741  (P, I, F: pre-training size, intermediate flag, fine-tune size, as in the study)
from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from .pooled import fit_terms

PRETRAIN = (0, 100, 300, 800)
FINETUNE = (20, 40, 80, 160, 320)
NOISE = (0.69, 2.23, 1.85, 3.22, 1.03)  # demo seed SD of mIoU per F (points), pooled over its cells
SEED_SD = 1.0


def truth(P, F, nonnull: bool) -> tuple[np.ndarray, np.ndarray]:
    """(tau, iota) at pre-training sizes P and fine-tune sizes F (broadcast)."""
    e = np.log2(1 + np.asarray(P, float) / 100) / np.log2(1 + max(PRETRAIN) / 100)
    h = (np.asarray(F, float) / min(FINETUNE)) ** -0.6
    return (8 * e * h, -3 * h * np.ones_like(e)) if nonnull else (0 * e * h, 0 * e * h)


def simulate_runs(rng: np.random.Generator, n_seeds: int, nonnull: bool, shared_sd: float = 0.0) -> pd.DataFrame:
    """One simulated data set: a long table (pretrain, intermediate, finetune, seed, y)."""
    P, I, F, S = (a.ravel() for a in np.meshgrid(PRETRAIN, (0, 1), FINETUNE, range(n_seeds), indexing="ij"))
    tau, iota = truth(P, F, nonnull)
    noise = np.asarray(NOISE)[np.searchsorted(FINETUNE, F)]
    u = rng.normal(0, SEED_SD, n_seeds)[S]
    v = rng.normal(0, shared_sd, (len(PRETRAIN), 2, n_seeds))[np.searchsorted(PRETRAIN, P), I, S]
    y = 40 + 5 * np.log2(F / 20) + tau * (P > 0) + I * iota + u + np.where(P > 0, v, 0) + rng.normal(0, noise)
    return pd.DataFrame(dict(pretrain=P, intermediate=I.astype(bool), finetune=F, seed=S, y=y))


def _differences(r: pd.DataFrame, effect: str) -> pd.DataFrame:
    key = ["pretrain", "finetune", "seed"]
    if effect == "intermediate":
        on, off = (r[r.intermediate == i].set_index(key).y for i in (True, False))
        d = (on - off).rename("delta").reset_index()
        d["intermediate"] = True
        return d
    off = r[~r.intermediate]
    base = off[off.pretrain == 0].set_index(["finetune", "seed"]).y
    d = off[off.pretrain > 0].copy()
    d["delta"] = d.y.to_numpy() - base.loc[list(zip(d.finetune, d.seed))].to_numpy()
    return d


def _covered(tab: pd.DataFrame, want: dict) -> dict:
    t = tab.set_index("term")
    return {k: bool(t.ci_lo[k] <= v <= t.ci_hi[k]) for k, v in want.items() if k in t.index}


def one(rng, n_seeds: int, nonnull: bool, effect: str, model: str, shared_sd: float = 0.0) -> dict:
    """Whether each interval of one simulated data set covers its truth: {'mean': bool, 'F=20': bool, ...}."""
    r = simulate_runs(rng, n_seeds, nonnull, shared_sd)
    Pp = [p for p in PRETRAIN if p > 0] if effect == "pretrain" else list(PRETRAIN)
    tau, iota = truth(np.array(Pp)[:, None], np.array(FINETUNE)[None], nonnull)
    eff = tau if effect == "pretrain" else iota
    want = {"mean": float(eff.mean())} | {f"F={f}": float(eff[:, j].mean()) for j, f in enumerate(FINETUNE)}
    if effect == "pretrain" and model == "runs":
        d = r[~r.intermediate][["pretrain", "finetune", "seed", "y"]]
        fit_as = "pretrain"
    else:
        d = _differences(r, effect)
        fit_as = "intermediate"  # a model of differences taken as independent
    out = {}
    for per_f in (False, True):
        fit = fit_terms(d, fit_as, per_f=per_f)
        out.update(_covered(fit[0], {k: v for k, v in want.items() if (k != "mean") == per_f}))
    return out


def coverage(n_sets: int, n_seeds: int, nonnull: bool, effect: str = "pretrain", model: str = "runs",
             shared_sd: float = 0.0, seed: int = 0) -> dict:
    """Share of ``n_sets`` simulated data sets whose 95% interval covers the truth: 'mean' (pooled), 'by_f'
    (all per-F intervals together) and 'by_f_min' (the worst F)."""
    rng = np.random.default_rng([seed, n_seeds, int(nonnull), len(effect), len(model), int(100 * shared_sd)])
    res = pd.DataFrame([one(rng, n_seeds, nonnull, effect, model, shared_sd) for _ in range(n_sets)])
    fcols = [c for c in res.columns if c.startswith("F=")]
    return dict(mean=float(res["mean"].mean()), by_f=float(res[fcols].to_numpy().mean()),
                by_f_min=float(res[fcols].mean().min()), n_sets=n_sets)


CASES = [(effect, model, shared) for effect, model, shared in
         (("pretrain", "runs", 0.0), ("pretrain", "differences", 0.0), ("intermediate", "differences", 0.0),
          ("pretrain", "runs", 1.0))]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="coverage of the pooled models' 95% intervals (simulation)")
    ap.add_argument("--sets", type=int, default=1000, help="simulated data sets per case")
    a = ap.parse_args(argv)
    print("| effect | model | shared-model SD | seeds | truth | pooled mean | per F (all) | per F (worst F) |")
    print("|---|---|---|---|---|---|---|---|")
    for effect, model, shared in CASES:
        for n_seeds in (2, 3):
            for nonnull in (False, True):
                c = coverage(a.sets, n_seeds, nonnull, effect, model, shared)
                print(f"| {effect} | {model} | {shared:g} | {n_seeds} | {'non-null' if nonnull else 'null'} | "
                      f"{c['mean']:.3f} | {c['by_f']:.3f} | {c['by_f_min']:.3f} |", flush=True)


if __name__ == "__main__":
    main()
