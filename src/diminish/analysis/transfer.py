"""Effective data transferred, after Hernandez et al. (2021), "Scaling Laws for Transfer".

For a condition (P, I) and fine-tune size F, F_eff is the fine-tune size at which the from-scratch
curve (P = 0, no intermediate stage; its best family in fits.csv unless one is named) reaches the
condition's mean score; D_T = F_eff - F is the data the earlier stages were worth. Every condition, with or without the
intermediate stage, gets a row per F, negative D_T included (``status`` says what each value is).
Per condition, D_T = k F^alpha is fitted by least squares in log space over the points with
D_T > 0, and only with more points than its 2 parameters (>= 3): a line through 2 points is not a
fit (k, alpha NaN; ``fit_note`` says why).

F_eff outside the from-scratch curve's measured range [F_min, F_max] is an extrapolation of that
curve: it is kept but flagged (``extrapolated``) and counted in ``transfer_fit.csv``
(``n_extrapolated``). A score above the from-scratch asymptote, or below the curve's value at
F = 1, has no finite F_eff (NaN, flagged in ``status``). D_T is measured against the from-scratch
*curve*, not its cells: where that curve misses the from-scratch mean at F, D_T is not 0 even when
both scores are equal; ``scratch_residual`` (curve minus from-scratch mean at the same F, points)
shows by how much. ``measured_diff`` is the condition's mean minus the from-scratch mean at the same F
and ``sign_disagrees`` flags the rows where it and D_T have opposite signs (the curve, not the cells,
decides D_T's sign); ``extrapolated_side`` says whether an extrapolated F_eff lies below the smallest
measured size or above the largest.
"""

# ruff: noqa: E741  (P, I, F: pre-training size, intermediate flag, fine-tune size, as in the study)
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats
from scipy.optimize import brentq

from .common import Notes, attach, cell_stats, check_metric, conditions
from .curves import FAMILIES, fit_curves, predict

F_SEARCH = (1.0, 1e9)
MIN_FIT_POINTS = 3  # more points than the 2 parameters of D_T = k F^alpha


def invert(name: str, theta, target: float) -> float:
    """F with curve(F) = target on [1, 1e9] (the curve must be increasing); NaN if none."""
    f = lambda lf: float(predict(name, theta, [np.exp(lf)])[0]) - target  # noqa: E731
    lo, hi = np.log(F_SEARCH[0]), np.log(F_SEARCH[1])
    flo, fhi = f(lo), f(hi)
    if not (np.isfinite(flo) and np.isfinite(fhi)) or flo > 0 or fhi < 0:
        return np.nan
    return float(np.exp(brentq(f, lo, hi, xtol=1e-12)))


def extrapolation_side(f_eff: float, fmin: float, fmax: float) -> str:
    """'below' (F_eff under the smallest measured F), 'above' (over the largest), '' inside or undefined."""
    if not np.isfinite(f_eff):
        return ""
    return "below" if f_eff < fmin else "above" if f_eff > fmax else ""


def sign_disagrees(d_t: float, measured: float) -> bool:
    """Whether D_T (read off the from-scratch curve) and the measured difference of the cells have opposite signs
    (a positive D_T beside a measured loss, or the reverse); False where either is 0 or undefined."""
    if not (np.isfinite(d_t) and np.isfinite(measured)):
        return False
    return bool(np.sign(d_t) * np.sign(measured) < 0)


def transfer(ds: xr.Dataset, metric: str = "miou", fits: pd.DataFrame | None = None, family: str | None = None,
             n_boot: int = 0, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(transfer.csv rows, transfer_fit.csv rows) for one metric."""
    check_metric(ds, metric)
    notes = Notes()
    cols = ["metric", "pretrain", "intermediate", "finetune", "f_eff", "d_t", "extrapolated", "score", "family",
            "status", "scratch_residual", "extrapolated_side", "measured_diff", "sign_disagrees"]
    fcols = ["metric", "pretrain", "intermediate", "k", "alpha", "n_points", "n_extrapolated", "alpha_se",
             "alpha_ci_lo", "alpha_ci_hi", "family", "fit_note"]
    conds = conditions(ds, metric)
    if (0, False) not in conds:
        notes.add(f"{metric}: transfer skipped: no from-scratch (pretrain = 0, no intermediate) results")
        return attach(pd.DataFrame(columns=cols), notes), attach(pd.DataFrame(columns=fcols), notes)
    if fits is None:
        fits = fit_curves(ds, metric, n_boot=n_boot, seed=seed)
    base = fits[(fits.metric == metric) & (fits.pretrain == 0) & (~fits.intermediate.astype(bool))
                & (fits.status == "ok")]
    if family is not None:
        if family not in FAMILIES:
            raise ValueError(f"unknown family {family!r}; choose from {list(FAMILIES)}")
        base = base[base.family == family]
    else:
        base = base[base.best.astype(bool)]
    if base.empty:
        notes.add(f"{metric}: transfer skipped: no usable from-scratch fit")
        return attach(pd.DataFrame(columns=cols), notes), attach(pd.DataFrame(columns=fcols), notes)
    b = base.iloc[0]
    theta = np.array(list(json.loads(b.params).values()))
    name = b.family
    fmin, fmax = float(b.f_min), float(b.f_max)
    notes.add(f"{metric}: transfer inverts the from-scratch {name} fit, measured over F in [{fmin:g}, {fmax:g}]")
    rows, frows = [], []
    for P, I in conds:
        if (P, I) == (0, False):
            continue
        pts = []
        for F in ds.finetune.values:
            m, _, n = cell_stats(ds, metric, P, I, F)
            if n == 0:
                continue
            fe = invert(name, theta, m)
            extra = not (np.isfinite(fe) and fmin <= fe <= fmax)
            if not np.isfinite(fe):
                status = "no finite F_eff: the score is outside the from-scratch curve's range"
            elif fe - F <= 0:
                status = "D_T <= 0: worth no extra fine-tuning images" + (" (extrapolated)" if extra else "")
            else:
                status = "extrapolated beyond the measured F range" if extra else "ok"
            m0 = cell_stats(ds, metric, 0, False, F)[0]
            d_t = fe - F if np.isfinite(fe) else np.nan
            rows.append(dict(metric=metric, pretrain=P, intermediate=I, finetune=int(F), f_eff=fe,
                             d_t=d_t, extrapolated=extra, score=m, family=name,
                             status=status, scratch_residual=float(predict(name, theta, [F])[0]) - m0,
                             extrapolated_side=extrapolation_side(fe, fmin, fmax), measured_diff=m - m0,
                             sign_disagrees=sign_disagrees(d_t, m - m0)))
            pts.append((float(F), fe - F if np.isfinite(fe) else np.nan, extra))
        n_extra = sum(e for _, _, e in pts)
        if n_extra:
            notes.add(f"{metric}: P={P}, I={I}: {n_extra} of {len(pts)} F_eff values extrapolate the from-scratch "
                      "curve beyond its measured range (flagged)")
        use = [(F, d, e) for F, d, e in pts if np.isfinite(d) and d > 0]
        fr = dict(metric=metric, pretrain=P, intermediate=I, k=np.nan, alpha=np.nan, n_points=len(use),
                  n_extrapolated=sum(e for _, _, e in use), alpha_se=np.nan, alpha_ci_lo=np.nan, alpha_ci_hi=np.nan,
                  family=name, fit_note="")
        if len(use) >= MIN_FIT_POINTS:
            x = np.log([u[0] for u in use])
            y = np.log([u[1] for u in use])
            res = stats.linregress(x, y) if np.ptp(x) > 0 else None
            if res is not None:
                fr.update(k=float(np.exp(res.intercept)), alpha=float(res.slope))
                q = stats.t.ppf(0.975, len(use) - 2)
                fr.update(alpha_se=float(res.stderr), alpha_ci_lo=float(res.slope - q * res.stderr),
                          alpha_ci_hi=float(res.slope + q * res.stderr))
        else:
            fr["fit_note"] = (f"not fitted: {len(use)} positive D_T value{'s' if len(use) != 1 else ''}; "
                              f"D_T = k F^alpha needs at least {MIN_FIT_POINTS} (more points than parameters)")
            notes.add(f"{metric}: P={P}, I={I}: {fr['fit_note']}")
        frows.append(fr)
    t = pd.DataFrame(rows, columns=cols)
    t["extrapolated"] = t["extrapolated"].astype(bool)
    return attach(t, notes), attach(pd.DataFrame(frows, columns=fcols), notes)
