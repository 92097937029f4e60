"""Paired tests for the intermediate effect and the pre-training effect, cell by cell and pooled.

Intermediate effect: delta = metric(I = True) - metric(I = False), paired by seed, per (P, F).
Pre-training effect: delta = metric(P) - metric(P = 0), paired by seed, per (P > 0, I, F); the
baseline is the from-scratch cell with the same intermediate setting when it was run, else the
from-scratch cell without intermediate fine-tuning (column ``baseline_intermediate``).

Per cell (per-seed data): mean delta, SE, paired t (two-sided), the exact sign-flip permutation p
over all 2^n sign patterns (with n = 3 pairs its smallest possible two-sided value is 2/8 = 0.25, so
it can never reach 0.05), d_z = mean / SD of the deltas, a 95% t interval, and Holm-adjusted p
(over all cells of the table for a metric, applied to the t-test p).

Summary data (the paper's tables: no per-seed values) cannot be paired: each cell gets a Welch t
from the two means, SDs and n (Satterthwaite df), no permutation p and no d_z; ``d_pooled`` is the
mean difference over the pooled SD instead. The ``method`` column says which was used.

Pooled model (one per effect and metric): ordinary least squares on the per-seed differences with
seed fixed effects (sum-coded, so the intercept stays the average effect) and HC3 standard errors,
terms: the average effect at the mean covariates, its slope per doubling of F, per 100k pre-training
images, and (pre-training effect only) the shift with intermediate fine-tuning. Why this model:
with 2-3 seeds a random-effects variance (MixedLM) is estimated from 2-3 values and often lands on
the boundary or fails to converge, and cluster-robust errors with 2-3 clusters are badly biased
downward with G - 1 = 1-2 df; seed fixed effects cost 1-2 df, remove any shift common to a seed's
runs exactly, and HC3 copes with a delta variance that changes with F. For summary data the same
model is fitted to the cell mean differences (without seed terms).
"""

# ruff: noqa: E741  (P, I, F: pre-training size, intermediate flag, fine-tune size, as in the study)
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import statsmodels.api as sm
import xarray as xr
from scipy import stats
from statsmodels.stats.multitest import multipletests

from .common import Notes, attach, cell_stats, check_metric, is_summary, n_seeds

METHOD_PAIRED = "paired t over seeds (+ exact sign-flip permutation)"
METHOD_WELCH = "Welch t from summary statistics (mean, SD, n); not paired"
POOLED_SEEDS = "OLS on per-seed differences, seed fixed effects (sum-coded), HC3 SEs"
POOLED_CELLS = "OLS on cell mean differences (summary statistics), HC3 SEs"
COLS = ["n", "mean_delta", "se", "t", "p_t", "p_perm", "dz", "p_holm", "ci_lo", "ci_hi", "method"]
EXTRA = ["df", "d_pooled", "mean_treated", "mean_baseline"]


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
               mean_baseline=float(b_[ok].mean()) if n else np.nan)
    if n == 0:
        return out
    out["mean_delta"] = float(d.mean())
    out["p_perm"] = sign_flip_p(d)
    if n < 2:
        return out
    sd = float(d.std(ddof=1))
    se = sd / np.sqrt(n)
    out.update(se=se, df=n - 1, dz=out["mean_delta"] / sd if sd > 0 else np.nan)
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
               mean_treated=m1, mean_baseline=m0)
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
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
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


def _finish(rows, key_cols, notes, ds, metric, tail=()) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=key_cols + COLS + EXTRA + list(tail))
    df["p_holm"] = holm(df["p_t"].to_numpy(float)) if len(df) else []
    if not rows:
        pass
    elif not is_summary(ds):
        if n_seeds(ds) < 2:
            notes.add(f"{metric}: a single seed: no SE, t or interval can be computed (only the mean difference)")
        else:
            notes.add(f"sign-flip permutation p is exact over 2^n patterns; with n = {n_seeds(ds)} pairs "
                      f"its smallest two-sided value is {2 / 2 ** n_seeds(ds):.3g}")
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
                   tail=["baseline_intermediate"])


# ---------------------------------------------------------------- pooled model


def _deltas_long(ds, metric, effect) -> pd.DataFrame:
    """Long table of differences: pretrain, intermediate, finetune, seed (-1 for summary), delta."""
    rows = []
    summ = is_summary(ds)
    if effect == "intermediate":
        pairs = [((P, True), (P, False)) for P in ds.pretrain.values
                 if _has(ds, metric, P, True) and _has(ds, metric, P, False)]
    else:
        pairs = []
        for P in ds.pretrain.values:
            for I in ds.intermediate.values:
                if P == 0 or not _has(ds, metric, P, I):
                    continue
                bI = bool(I) if _has(ds, metric, 0, I) else False
                if _has(ds, metric, 0, bI):
                    pairs.append(((P, bool(I)), (0, bI)))
    for (P, I), (P0, I0) in pairs:
        for F in ds.finetune.values:
            if summ:
                d = cell_stats(ds, metric, P, I, F)[0] - cell_stats(ds, metric, P0, I0, F)[0]
                if np.isfinite(d):
                    rows.append(dict(pretrain=int(P), intermediate=bool(I), finetune=int(F), seed=-1, delta=d))
            else:
                a = ds[metric].sel(pretrain=P, intermediate=I, finetune=F).values
                b = ds[metric].sel(pretrain=P0, intermediate=I0, finetune=F).values
                for s, x, y in zip(ds.seed.values, a, b):
                    if np.isfinite(x) and np.isfinite(y):
                        rows.append(dict(pretrain=int(P), intermediate=bool(I), finetune=int(F),
                                         seed=int(s), delta=float(x - y)))
    return pd.DataFrame(rows, columns=["pretrain", "intermediate", "finetune", "seed", "delta"])


def pooled(ds: xr.Dataset, metric: str = "miou", effects=("intermediate", "pretrain")) -> pd.DataFrame:
    """pooled.csv rows for one metric (see the module docstring for the model and why)."""
    check_metric(ds, metric)
    notes = Notes()
    rows = []
    for effect in effects:
        d = _deltas_long(ds, metric, effect)
        if d.empty:
            notes.add(f"{metric}: pooled {effect} model skipped: no paired differences")
            continue
        cols = {"mean": np.ones(len(d))}
        lf = np.log2(d.finetune.to_numpy(float))
        if np.ptp(lf) > 0:
            cols["log2_finetune"] = lf - lf.mean()
        pt = d.pretrain.to_numpy(float) / 1e5
        if np.ptp(pt) > 0:
            cols["pretrain_100k"] = pt - pt.mean()
        if effect == "pretrain":
            it = d.intermediate.to_numpy(float)
            if np.ptp(it) > 0:
                cols["intermediate"] = it - it.mean()
        n_terms = len(cols)
        seeds = sorted(d.seed.unique())
        if len(seeds) > 1:
            for s in seeds[:-1]:
                cols[f"seed[{s}]"] = (d.seed == s).astype(float).to_numpy() - (d.seed == seeds[-1]).astype(float).to_numpy()
        X = np.column_stack(list(cols.values()))
        y = d.delta.to_numpy(float)
        if len(y) <= X.shape[1] + 1:
            notes.add(f"{metric}: pooled {effect} model skipped: {len(y)} differences for {X.shape[1]} terms")
            continue
        model = POOLED_CELLS if ds.attrs.get("summary") or is_summary(ds) else POOLED_SEEDS
        res = sm.OLS(y, X).fit(cov_type="HC3", use_t=True)
        ci = np.asarray(res.conf_int(0.05))
        for k, term in enumerate(list(cols)[:n_terms]):
            rows.append(dict(metric=metric, effect=effect, term=term, estimate=float(res.params[k]),
                             se=float(res.bse[k]), ci_lo=float(ci[k, 0]), ci_hi=float(ci[k, 1]),
                             p=float(res.pvalues[k]), model=model, n_obs=len(y), df_resid=float(res.df_resid)))
    out = pd.DataFrame(rows, columns=["metric", "effect", "term", "estimate", "se", "ci_lo", "ci_hi", "p", "model",
                                      "n_obs", "df_resid"])
    return attach(out, notes)


def paired_tests(ds: xr.Dataset, metric: str = "miou") -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(paired_intermediate, paired_pretrain, pooled) tables for one metric."""
    return paired_intermediate(ds, metric), paired_pretrain(ds, metric), pooled(ds, metric)
