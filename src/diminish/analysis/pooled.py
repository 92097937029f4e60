"""The pooled models of the two effects (pooled.csv) and the effect at each fine-tune size (effect_by_f.csv).

Differences (``_deltas_long``), paired by seed (per-seed data) or of cell means (summary data):

* intermediate effect: metric(P, I = on, F) - metric(P, I = off, F), for every P with both arms;
* pre-training effect: metric(P, I = off, F) - metric(0, I = off, F), for every P > 0, without
  intermediate fine-tuning only (the arm the paper's pre-training claims are about; the ``arms``
  column says so). Where no from-scratch cell without intermediate fine-tuning exists the
  pre-training model is skipped.

The model, one per effect and metric (ordinary least squares, HC3 standard errors, t intervals on
the residual df)::

    delta = b0 + b_F (log2 F - mean) + b_pre (pretrained - mean) + b_P (log2 P - mean) + seed_s + e

Every covariate is centred over the observations, so ``b0`` (term ``mean``) is the average
difference over the observations the model uses (with a full grid: the plain mean of the cells).
``log2_finetune``: change of the difference per doubling of F. ``pretrained`` (intermediate effect
only, when both P = 0 and P > 0 enter): the shift between pre-trained and from-scratch models.
``log2_pretrain``: change per doubling of P among pre-trained models (0 for P = 0), so slopes are
in units that match a pre-training axis such as 100-800 images. Terms whose covariate does not
vary are left out. ``seed_s``: seed fixed effects (sum-coded, so they do not move ``b0``); they
remove any shift common to a seed's runs. Why this model: with 2-3 seeds a random-effects variance
is estimated from 2-3 values and often lands on a boundary, and cluster-robust errors with 2-3
clusters are badly biased; the residuals of the pooled model carry information even with 2 seeds
(many cells), which a bootstrap or sign-flip test over 2 seeds does not. Summary data: the same
model on cell-mean differences, without seed terms.

effect_by_f.csv: the same model with one free mean per fine-tune size instead of ``b0 + b_F``, so
each row is the average difference at that F (over the same P) with a model-based interval. The
verdicts use it to see whether an effect changes sign along F.
"""

# ruff: noqa: E741  (P, I, F: pre-training size, intermediate flag, fine-tune size, as in the study)
from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
import xarray as xr

from .common import Notes, attach, cell_stats, check_metric, is_summary

POOLED_SEEDS = "OLS on per-seed differences, seed fixed effects (sum-coded), HC3 SEs"
POOLED_CELLS = "OLS on cell mean differences (summary statistics), HC3 SEs"
POOLED_COLS = ["metric", "effect", "term", "estimate", "se", "ci_lo", "ci_hi", "p", "model", "n_obs", "df_resid",
               "unit", "arms", "formula"]
BY_F_COLS = ["metric", "effect", "finetune", "estimate", "se", "ci_lo", "ci_hi", "n_obs", "df_resid", "arms", "model"]
UNITS = {
    "mean": "points (average difference)",
    "log2_finetune": "points per doubling of F",
    "pretrained": "points, pre-trained minus from scratch",
    "log2_pretrain": "points per doubling of P (pre-trained models)",
}
SYMBOL = {"log2_finetune": "b_F (log2 F - mean)", "pretrained": "b_pre ([P > 0] - mean)",
          "log2_pretrain": "b_P (log2 P - mean; 0 when P = 0)"}


def _has(ds, metric, P, I) -> bool:
    return any(cell_stats(ds, metric, P, I, F)[2] > 0 for F in ds.finetune.values)


def _pairs(ds, metric, effect) -> tuple[list, str]:
    if effect == "intermediate":
        pairs = [((int(P), True), (int(P), False)) for P in ds.pretrain.values
                 if _has(ds, metric, P, True) and _has(ds, metric, P, False)]
        Ps = [p for (p, _), _ in pairs]
        return pairs, (f"with minus without intermediate fine-tuning, P = {', '.join(str(p) for p in Ps)}"
                       if pairs else "")
    if 0 not in ds.pretrain.values or not _has(ds, metric, 0, False):
        return [], ""
    pairs = [((int(P), False), (0, False)) for P in ds.pretrain.values if P > 0 and _has(ds, metric, P, False)]
    Ps = [p for (p, _), _ in pairs]
    return pairs, (f"P = {', '.join(str(p) for p in Ps)} minus P = 0, all without intermediate fine-tuning"
                   if pairs else "")


def _deltas_long(ds, metric, effect) -> tuple[pd.DataFrame, str]:
    """Long table of differences (pretrain, intermediate, finetune, seed (-1 for summary), delta) and the arms."""
    rows = []
    summ = is_summary(ds)
    pairs, arms = _pairs(ds, metric, effect)
    for (P, I), (P0, I0) in pairs:
        for F in ds.finetune.values:
            if summ:
                d = cell_stats(ds, metric, P, I, F)[0] - cell_stats(ds, metric, P0, I0, F)[0]
                if np.isfinite(d):
                    rows.append(dict(pretrain=P, intermediate=I, finetune=int(F), seed=-1, delta=d))
            else:
                a = ds[metric].sel(pretrain=P, intermediate=I, finetune=F).values
                b = ds[metric].sel(pretrain=P0, intermediate=I0, finetune=F).values
                for s, x, y in zip(ds.seed.values, a, b):
                    if np.isfinite(x) and np.isfinite(y):
                        rows.append(dict(pretrain=P, intermediate=I, finetune=int(F), seed=int(s),
                                         delta=float(x - y)))
    return pd.DataFrame(rows, columns=["pretrain", "intermediate", "finetune", "seed", "delta"]), arms


def _covariates(d: pd.DataFrame, effect: str) -> dict[str, np.ndarray]:
    """Centred covariates other than F (see the module docstring)."""
    P = d.pretrain.to_numpy(float)
    cols = {}
    pre = (P > 0).astype(float)
    if effect == "intermediate" and np.ptp(pre) > 0:
        cols["pretrained"] = pre - pre.mean()
    pos = P > 0
    if len(np.unique(P[pos])) > 1:
        lp = np.where(pos, np.log2(np.where(pos, P, 1.0)), 0.0)
        lp[pos] -= lp[pos].mean()
        cols["log2_pretrain"] = lp - lp.mean()
    return cols


def _seed_terms(d: pd.DataFrame) -> dict[str, np.ndarray]:
    seeds = sorted(d.seed.unique())
    last = (d.seed == seeds[-1]).astype(float).to_numpy()
    return {f"seed[{s}]": (d.seed == s).astype(float).to_numpy() - last for s in seeds[:-1]}


def _rank_deficient(X: np.ndarray, notes: Notes, what: str) -> bool:
    """Whether the differences at hand cannot separate the model's terms (the cells left make two columns of
    X collinear, e.g. F and the pre-trained flag): its estimates would be arbitrary, so it is skipped, with a note."""
    rank = int(np.linalg.matrix_rank(X))
    if rank < X.shape[1]:
        notes.add(f"{what} skipped: the differences do not separate its terms (rank {rank} of {X.shape[1]})")
        return True
    return False


def _fit(X: np.ndarray, y: np.ndarray, notes: Notes, what: str):
    """OLS with HC3 SEs -> (fit, SEs, CIs, p-values). A difference with leverage 1 (the only one of its seed or
    cell) is fitted exactly and HC3 divides by 1 - leverage = 0: where a SE is not finite, the term gets no SE,
    interval or p-value (NaN), and a note says why."""
    res = sm.OLS(y, X).fit(cov_type="HC3", use_t=True)
    se, ci, p = np.asarray(res.bse, float), np.asarray(res.conf_int(0.05), float), np.asarray(res.pvalues, float)
    bad = ~np.isfinite(se)
    if bad.any():
        se, ci, p = np.where(bad, np.nan, se), np.where(bad[:, None], np.nan, ci), np.where(bad, np.nan, p)
        notes.add(f"{what}: no interval for {int(bad.sum())} of {len(se)} terms (a difference fitted exactly, "
                  "leverage 1, leaves HC3 without a finite standard error)")
    return res, se, ci, p


def pooled(ds: xr.Dataset, metric: str = "miou", effects=("intermediate", "pretrain")) -> pd.DataFrame:
    """pooled.csv rows for one metric (the model and its terms are in the module docstring)."""
    check_metric(ds, metric)
    notes = Notes()
    rows = []
    model = POOLED_CELLS if ds.attrs.get("summary") or is_summary(ds) else POOLED_SEEDS
    for effect in effects:
        d, arms = _deltas_long(ds, metric, effect)
        if d.empty:
            notes.add(f"{metric}: pooled {effect} model skipped: no paired differences")
            continue
        cols = {"mean": np.ones(len(d))}
        lf = np.log2(d.finetune.to_numpy(float))
        if np.ptp(lf) > 0:
            cols["log2_finetune"] = lf - lf.mean()
        cols.update(_covariates(d, effect))
        terms = list(cols)
        cols.update(_seed_terms(d))
        X = np.column_stack(list(cols.values()))
        y = d.delta.to_numpy(float)
        if len(y) <= X.shape[1] + 1:
            notes.add(f"{metric}: pooled {effect} model skipped: {len(y)} differences for {X.shape[1]} terms")
            continue
        if _rank_deficient(X, notes, f"{metric}: pooled {effect} model"):
            continue
        res, se, ci, pv = _fit(X, y, notes, f"{metric}: pooled {effect} model")
        parts = ["b0"] + [SYMBOL[t] for t in terms[1:]] + (["seed effect"] if len(cols) > len(terms) else [])
        formula = "delta = " + " + ".join(parts + ["error"])
        for k, term in enumerate(terms):
            rows.append(dict(metric=metric, effect=effect, term=term, estimate=float(res.params[k]),
                             se=float(se[k]), ci_lo=float(ci[k, 0]), ci_hi=float(ci[k, 1]),
                             p=float(pv[k]), model=model, n_obs=len(y), df_resid=float(res.df_resid),
                             unit=UNITS[term], arms=arms, formula=formula))
    return attach(pd.DataFrame(rows, columns=POOLED_COLS), notes)


def effect_by_f(ds: xr.Dataset, metric: str = "miou", effects=("intermediate", "pretrain")) -> pd.DataFrame:
    """effect_by_f.csv rows: the average difference at each F with a pooled-model interval."""
    check_metric(ds, metric)
    notes = Notes()
    rows = []
    model = POOLED_CELLS if is_summary(ds) else POOLED_SEEDS
    for effect in effects:
        d, arms = _deltas_long(ds, metric, effect)
        if d.empty:
            continue
        Fs = sorted(d.finetune.unique())
        cols = {f"F={f}": (d.finetune == f).astype(float).to_numpy() for f in Fs}
        cols.update(_covariates(d, effect))
        cols.update(_seed_terms(d))
        X = np.column_stack(list(cols.values()))
        y = d.delta.to_numpy(float)
        if len(y) <= X.shape[1] + 1:
            notes.add(f"{metric}: {effect} effect per fine-tune size skipped: {len(y)} differences for "
                      f"{X.shape[1]} terms")
            continue
        if _rank_deficient(X, notes, f"{metric}: {effect} effect per fine-tune size"):
            continue
        res, se, ci, _ = _fit(X, y, notes, f"{metric}: {effect} effect per fine-tune size")
        for k, f in enumerate(Fs):
            rows.append(dict(metric=metric, effect=effect, finetune=int(f), estimate=float(res.params[k]),
                             se=float(se[k]), ci_lo=float(ci[k, 0]), ci_hi=float(ci[k, 1]),
                             n_obs=int((d.finetune == f).sum()), df_resid=float(res.df_resid), arms=arms,
                             model=model))
    return attach(pd.DataFrame(rows, columns=BY_F_COLS), notes)
