"""Paired tests for the intermediate effect and the pre-training effect, cell by cell and pooled.

Intermediate effect: delta = metric(I = True) - metric(I = False), paired by seed, per (P, F).
Pre-training effect: delta = metric(P) - metric(P = 0), paired by seed, per (P > 0, I, F); the
baseline is the from-scratch cell with the same intermediate setting when it was run, else the
from-scratch cell without intermediate fine-tuning (column ``baseline_intermediate``).

Per cell (per-seed data): mean delta, SE, paired t (two-sided), the exact sign-flip permutation p
over all 2^n sign patterns (with n = 3 pairs its smallest possible two-sided value is 2/8 = 0.25, so
it can never reach 0.05), d_z = mean / SD of the deltas, a 95% t interval, and Holm-adjusted p
(applied to the t-test p, over one family: all cells of the intermediate table for a metric; the cells of one
intermediate setting in the pre-training table, the arm each pre-training claim is about). ``holm_m`` is the
family's size, the number of tests the correction counts.

Summary data (the paper's tables: no per-seed values) cannot be paired: each cell gets a Welch t
from the two means, SDs and n (Satterthwaite df), no permutation p and no d_z; ``d_pooled`` is the
mean difference over the pooled SD instead. The ``method`` column says which was used.

Small n. With n pairs the sign-flip p can take only a few values, the smallest being 2 / 2^n
(0.5 for n = 2, 0.25 for n = 3): ``p_perm_min`` records it and ``perm_informative`` is True only
when it can fall below 0.05 (n >= 6). d_z divides by an SD of n values; with n < 3 it is not
reported (NaN, ``dz_note`` says why). The per-cell t interval is exact under normality but has
n - 1 df (12.7 SEs wide each side with n = 2). The pooled model of :mod:`.pooled`, which borrows
its error variance from every cell, carries information where the per-cell tests do not.
"""

# ruff: noqa: E741  (P, I, F: pre-training size, intermediate flag, fine-tune size, as in the study)
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from .common import Notes, attach, cell_stats, check_metric, is_summary, n_seeds
from .pooled import POOLED_CELLS, POOLED_SEEDS, effect_by_f, pooled  # noqa: F401  (re-exported)

METHOD_PAIRED = "paired t over seeds (+ exact sign-flip permutation)"
METHOD_WELCH = "Welch t from summary statistics (mean, SD, n); not paired"
COLS = ["n", "mean_delta", "se", "t", "p_t", "p_perm", "dz", "p_holm", "ci_lo", "ci_hi", "method"]
EXTRA = ["df", "d_pooled", "mean_treated", "mean_baseline", "p_perm_min", "perm_informative", "dz_note"]
DZ_MIN_N = 3
PERM_ALPHA = 0.05


def sign_flip_p(delta) -> float:
    """Exact two-sided sign-flip permutation p of the mean (all 2^n patterns; n <= 20)."""
    d = np.asarray(delta, dtype=float)
    n = len(d)
    if n == 0:
        return np.nan
    if n > 20:
        raise ValueError(f"exact sign-flip enumeration needs n <= 20 pairs, got {n}")
    signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))  # (2^n, n)
    means = np.abs(signs @ d) / n
    obs = abs(d.mean())
    return float(np.mean(means >= obs - 1e-12 * max(1.0, obs)))


def paired_stats(treated, baseline) -> dict:
    """Paired statistics of treated - baseline (arrays aligned by seed; NaN pairs dropped)."""
    t_, b_ = np.asarray(treated, float), np.asarray(baseline, float)
    ok = np.isfinite(t_) & np.isfinite(b_)
    d = t_[ok] - b_[ok]
    n = len(d)
    out = dict(n=n, mean_delta=np.nan, se=np.nan, t=np.nan, p_t=np.nan, p_perm=np.nan, dz=np.nan,
               ci_lo=np.nan, ci_hi=np.nan, df=np.nan, d_pooled=np.nan, method=METHOD_PAIRED,
               mean_treated=float(t_[ok].mean()) if n else np.nan,
               mean_baseline=float(b_[ok].mean()) if n else np.nan,
               p_perm_min=2.0 / 2**n if n else np.nan, perm_informative=bool(n and 2.0 / 2**n <= PERM_ALPHA),
               dz_note="" if n >= DZ_MIN_N else f"not reported: n = {n} < {DZ_MIN_N} pairs")
    if n == 0:
        return out
    out["mean_delta"] = float(d.mean())
    out["p_perm"] = sign_flip_p(d)
    if n < 2:
        return out
    sd = float(d.std(ddof=1))
    se = sd / np.sqrt(n)
    out.update(se=se, df=n - 1, dz=out["mean_delta"] / sd if sd > 0 and n >= DZ_MIN_N else np.nan)
    if se > 0:
        t = out["mean_delta"] / se
        out.update(t=t, p_t=float(2 * stats.t.sf(abs(t), n - 1)))
    q = stats.t.ppf(0.975, n - 1)
    out.update(ci_lo=out["mean_delta"] - q * se, ci_hi=out["mean_delta"] + q * se)
    return out


def welch_stats(m1, s1, n1, m0, s0, n0) -> dict:
    """Welch t of m1 - m0 from summary statistics (Satterthwaite df)."""
    out = dict(n=int(min(n1, n0)), mean_delta=m1 - m0, se=np.nan, t=np.nan, p_t=np.nan, p_perm=np.nan,
               dz=np.nan, ci_lo=np.nan, ci_hi=np.nan, df=np.nan, d_pooled=np.nan, method=METHOD_WELCH,
               mean_treated=m1, mean_baseline=m0, p_perm_min=np.nan, perm_informative=False,
               dz_note="not defined: summary statistics are not paired")
    if not (np.isfinite(m1) and np.isfinite(m0)) or min(n1, n0) < 2 or not (np.isfinite(s1) and np.isfinite(s0)):
        return out
    v1, v0 = s1**2 / n1, s0**2 / n0
    se = np.sqrt(v1 + v0)
    if se <= 0:
        return out
    df = (v1 + v0) ** 2 / (v1**2 / (n1 - 1) + v0**2 / (n0 - 1))
    t = (m1 - m0) / se
    q = stats.t.ppf(0.975, df)
    sp = np.sqrt(((n1 - 1) * s1**2 + (n0 - 1) * s0**2) / (n1 + n0 - 2))
    out.update(se=se, t=t, df=df, p_t=float(2 * stats.t.sf(abs(t), df)), ci_lo=m1 - m0 - q * se,
               ci_hi=m1 - m0 + q * se, d_pooled=(m1 - m0) / sp if sp > 0 else np.nan)
    return out


def holm(p) -> np.ndarray:
    """Holm-adjusted p values; NaN entries stay NaN and are not counted."""
    p = np.asarray(p, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if len(ok):
        order = ok[np.argsort(p[ok], kind="stable")]
        m = len(order)
        adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
        out[order] = np.minimum(adj, 1.0)
    return out


def _compare(ds, metric, treated: dict, baseline: dict) -> dict:
    if is_summary(ds):
        m1, s1, n1 = cell_stats(ds, metric, treated["pretrain"], treated["intermediate"], treated["finetune"])
        m0, s0, n0 = cell_stats(ds, metric, baseline["pretrain"], baseline["intermediate"], baseline["finetune"])
        return welch_stats(m1, s1, n1, m0, s0, n0)
    t_ = ds[metric].sel(**treated).values
    b_ = ds[metric].sel(**baseline).values
    return paired_stats(t_, b_)


def _has(ds, metric, P, I) -> bool:
    return any(cell_stats(ds, metric, P, I, F)[2] > 0 for F in ds.finetune.values)


def _finish(rows, key_cols, notes, ds, metric, tail=(), family=()) -> pd.DataFrame:
    """The table, with Holm-adjusted p over each family (the rows sharing the ``family`` columns; all rows when
    none) and the family's size (``holm_m``: the number of cells with a p value in it)."""
    df = pd.DataFrame(rows, columns=key_cols + COLS + EXTRA + list(tail))
    df["p_holm"] = np.nan
    df["holm_m"] = 0
    for idx in ([g.index for _, g in df.groupby(list(family))] if family and len(df) else [df.index]):
        p = df.loc[idx, "p_t"].to_numpy(float)
        df.loc[idx, "p_holm"] = holm(p)
        df.loc[idx, "holm_m"] = int(np.isfinite(p).sum())
    if not rows:
        pass
    elif not is_summary(ds):
        if n_seeds(ds) < 2:
            notes.add(f"{metric}: a single seed: no SE, t or interval can be computed (only the mean difference)")
        else:
            n = n_seeds(ds)
            notes.add(f"sign-flip permutation p is exact over 2^n patterns; with n = {n} pairs "
                      f"its smallest two-sided value is {2 / 2 ** n:.3g}"
                      + ("" if 2 / 2**n <= PERM_ALPHA else ", so it cannot show an effect at the 0.05 level"))
            if n < DZ_MIN_N:
                notes.add(f"d_z not reported: it needs n >= {DZ_MIN_N} pairs, the results have {n}")
    else:
        notes.add("summary statistics only (no per-seed values): Welch t per cell, no permutation p, no d_z")
    return attach(df, notes)


def paired_intermediate(ds: xr.Dataset, metric: str = "miou") -> pd.DataFrame:
    """paired_intermediate.csv rows for one metric."""
    check_metric(ds, metric)
    notes = Notes()
    rows = []
    if not {False, True} <= set(bool(i) for i in ds.intermediate.values):
        notes.add("intermediate effect: the results hold only one intermediate setting")
    else:
        for P in ds.pretrain.values:
            if not (_has(ds, metric, P, True) and _has(ds, metric, P, False)):
                notes.add(f"{metric}: intermediate effect at pretrain={int(P)} not tested: "
                          "one of the two settings has no data")
                continue
            for F in ds.finetune.values:
                r = _compare(ds, metric, dict(pretrain=P, intermediate=True, finetune=F),
                             dict(pretrain=P, intermediate=False, finetune=F))
                if r["n"] == 0 or not np.isfinite(r["mean_delta"]):
                    notes.add(f"{metric}: intermediate effect at pretrain={int(P)}, finetune={int(F)}: "
                              "no complete pair (cell missing)")
                rows.append(dict(metric=metric, pretrain=int(P), finetune=int(F), **r))
    return _finish(rows, ["metric", "pretrain", "finetune"], notes, ds, metric)


def paired_pretrain(ds: xr.Dataset, metric: str = "miou") -> pd.DataFrame:
    """paired_pretrain.csv rows for one metric (each P > 0 against P = 0)."""
    check_metric(ds, metric)
    notes = Notes()
    rows = []
    Ps = [int(p) for p in ds.pretrain.values]
    if 0 not in Ps or not any(_has(ds, metric, 0, I) for I in ds.intermediate.values):
        notes.add(f"{metric}: no from-scratch (pretrain = 0) results: the pre-training effect cannot be tested")
    else:
        for P in Ps:
            if P == 0:
                continue
            for I in (bool(i) for i in ds.intermediate.values):
                if not _has(ds, metric, P, I):
                    continue
                base_I = I if _has(ds, metric, 0, I) else False
                if base_I != I:
                    notes.add(f"{metric}: no from-scratch cells with intermediate={I}; pre-trained cells with "
                              f"intermediate={I} are compared with the from-scratch cells without it")
                if not _has(ds, metric, 0, base_I):
                    continue
                for F in ds.finetune.values:
                    r = _compare(ds, metric, dict(pretrain=P, intermediate=I, finetune=F),
                                 dict(pretrain=0, intermediate=base_I, finetune=F))
                    rows.append(dict(metric=metric, pretrain=P, intermediate=I, finetune=int(F),
                                     baseline_intermediate=base_I, **r))
    return _finish(rows, ["metric", "pretrain", "intermediate", "finetune"], notes, ds, metric,
                   tail=["baseline_intermediate"], family=["intermediate"])


def paired_tests(ds: xr.Dataset, metric: str = "miou") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(paired_intermediate, paired_pretrain, pooled) tables for one metric."""
    return paired_intermediate(ds, metric), paired_pretrain(ds, metric), pooled(ds, metric)
