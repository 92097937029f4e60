"""Linear contrasts of cell means: the gain and diminishing-returns statistics of :mod:`.claims`.

A statistic here is sum(c_i * mean_i) over the cells along one axis (F, or P) with the other
factors fixed; its SE is sqrt(sum(c_i^2 var_i / n_i)) for independent cells.

Variance. With 3 or more seeds per cell (or the paper's summary tables) each cell's own variance
is used, with a Satterthwaite df. With fewer seeds a cell's own variance rests on 1 df and the
interval carries almost no information, so the within-cell variance is pooled over every cell of
the metric (df = sum(n - 1), e.g. 40 for 40 cells of 2 seeds), assuming seeds vary alike in every
cell; verdicts.csv says so in ``n_seeds`` and the rule's note.
"""

# ruff: noqa: E741  (P, I, F: pre-training size, intermediate flag, fine-tune size, as in the study)
from __future__ import annotations

import numpy as np
from scipy import stats

from .common import cell_stats, is_summary, n_seeds

MIN_SEEDS_OWN_VARIANCE = 3


def contrast(means, var_over_n, ns, c) -> tuple[float, float, float]:
    """(estimate, SE, Satterthwaite df) of sum(c * means) for independent cells."""
    c, m, v, n = (np.asarray(x, float) for x in (c, means, var_over_n, ns))
    est = float(c @ m)
    parts = c**2 * v
    se = float(np.sqrt(parts.sum()))
    with np.errstate(divide="ignore", invalid="ignore"):
        df = float(parts.sum() ** 2 / np.sum(np.where(parts > 0, parts**2 / (n - 1), 0.0)))
    return est, se, df


def gain_slope_weights(levels) -> np.ndarray:
    """Contrast weights c with c @ means = slope of per-doubling gains against log2(level)."""
    L = np.log2(np.asarray(levels, float))
    k = len(L)
    mid = (L[1:] + L[:-1]) / 2
    w = (mid - mid.mean()) / np.sum((mid - mid.mean()) ** 2)
    c = np.zeros(k)
    for j in range(k - 1):
        c[j + 1] += w[j] / (L[j + 1] - L[j])
        c[j] -= w[j] / (L[j + 1] - L[j])
    return c


def pooled_variance(ds, metric) -> tuple[float, float]:
    """(within-cell variance pooled over every cell of the metric, its df = sum(n - 1)); per-seed data."""
    da = ds[metric]
    n = da.notnull().sum("seed")
    var = da.var("seed", ddof=1, skipna=True)
    k = (n - 1).where(n > 1)
    df = float(k.sum())
    return (float((k * var).sum()) / df, df) if df > 0 else (np.nan, np.nan)


def pools(ds) -> bool:
    """Whether cell contrasts use the pooled variance (per-seed data with fewer than 3 seeds)."""
    return not is_summary(ds) and n_seeds(ds) < MIN_SEEDS_OWN_VARIANCE


def _cells(ds, metric, axis, fixed, include_zero: bool = False):
    """Levels along ``axis`` with data, with (mean, SD^2/n, n); P = 0 only with ``include_zero``.
    With fewer than 3 seeds SD^2 is the variance pooled over all cells (see the module docstring)."""
    out = []
    s2 = pooled_variance(ds, metric)[0] if pools(ds) else None
    for lv in ds[axis].values:
        if axis == "pretrain" and lv <= 0 and not include_zero:
            continue
        sel = dict(fixed, **{axis: lv})
        m, sd, n = cell_stats(ds, metric, sel["pretrain"], sel["intermediate"], sel["finetune"])
        var = s2 if s2 is not None else (sd**2 if np.isfinite(sd) else np.nan)
        if n > 0:
            out.append((float(lv), m, var / n if n > 1 else np.nan, n))
    return out


def _interval(ds, metric, cells, c) -> dict:
    """Estimate, 95% t interval and p of the contrast c @ means over ``cells``."""
    lv, m, v, n = map(np.array, zip(*cells))
    est, se, df = contrast(m, v, n, c)
    if pools(ds):
        df = pooled_variance(ds, metric)[1]
    out = dict(estimate=est, ci_lo=np.nan, ci_hi=np.nan, p=np.nan)
    if np.isfinite(se) and se > 0 and np.isfinite(df) and df > 0:
        q = stats.t.ppf(0.975, df)
        out.update(ci_lo=est - q * se, ci_hi=est + q * se, p=float(2 * stats.t.sf(abs(est / se), df)))
    return out


def gain_slope(ds, metric, axis, fixed) -> dict | None:
    cells = _cells(ds, metric, axis, fixed)
    if len(cells) < 3:
        return None
    lv = np.array([c[0] for c in cells])
    return dict(_interval(ds, metric, cells, gain_slope_weights(lv)), levels=len(lv))


def per_image_drop(ds, metric, axis, fixed, per: float) -> dict | None:
    """The paper's sense of diminishing returns along ``axis`` (P = 0 included): the gain per ``per``
    images over the first interval minus that over the last (positive = diminishing)."""
    cells = _cells(ds, metric, axis, fixed, include_zero=True)
    if len(cells) < 3:
        return None
    lv, m, v, n = map(np.array, zip(*cells))
    c = np.zeros(len(lv))
    c[1], c[0] = per / (lv[1] - lv[0]), -per / (lv[1] - lv[0])
    c[-1] -= per / (lv[-1] - lv[-2])
    c[-2] += per / (lv[-1] - lv[-2])
    return dict(_interval(ds, metric, cells, c), levels=len(lv), has_zero=bool(lv[0] == 0))


def mean_gain(ds, metric, fixed) -> dict | None:
    """Average gain per doubling of F across the measured range: (y_last - y_first) / log2 ratio."""
    cells = _cells(ds, metric, "finetune", fixed)
    if len(cells) < 2:
        return None
    lv, m, v, n = map(np.array, zip(*cells))
    c = np.zeros(len(lv))
    span = np.log2(lv[-1] / lv[0])
    c[-1], c[0] = 1 / span, -1 / span
    return _interval(ds, metric, cells, c)


def end_gain(ds, metric, axis, fixed, include_zero: bool = False) -> dict | None:
    """The change from the first to the last level along ``axis`` (points): are there returns at all?"""
    cells = _cells(ds, metric, axis, fixed, include_zero=include_zero)
    if len(cells) < 2:
        return None
    c = np.zeros(len(cells))
    c[-1], c[0] = 1.0, -1.0
    return _interval(ds, metric, cells, c)
