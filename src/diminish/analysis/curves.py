"""Which learning curve fits each (pretrain, intermediate) condition, and how sure we can be.

For every condition and metric, :func:`fit_curves_detailed` fits each family of :mod:`.families`
by unweighted least squares to the seed-level points (or to the cell means when the data are a
summary, such as the paper's tables, whose 3-run SDs are too noisy to weight by) and records:

* AICc with a Gaussian likelihood whose variance counts as one more parameter (NaN when
  n - K - 1 <= 0), the difference to the condition's best AICc and the Akaike weight;
* the leave-largest-size-out error: refit without the largest F, predict it, minus the observed
  mean there;
* the plateau with a 95% percentile bootstrap interval, F95 (where the curve reaches 95% of its
  plateau), and the gain per doubling of F, ln(2) * d metric / d ln F, at F = 1000, 2000, 4000
  (NaN outside the condition's measured sizes) and at the smallest and largest measured F.

Resampling (column ``boot``). Per-seed data with at least 3 seeds per cell are resampled seed by
seed within each cell. With 1 or 2 seeds that carries almost no information (2 seeds give 3
distinct resamples of a cell), so the residuals of the family's own fit, pooled over every point
of the condition, are resampled instead (a residual bootstrap). Summary data draw each cell mean
from N(mean, SD / sqrt(n)). All families of a condition see the same resampled data sets.

When a plateau counts. The ``plateau`` column holds the asymptote only if the fit does not sit on
a parameter bound, its bootstrap interval is no wider than ``max_plateau_width`` (10 points by
default) and stays below the 100 % ceiling of the search (an interval that reaches it has no upper
limit), and the data do not reject the family: AICc no more than ``max_delta_aicc`` (10) above
the condition's best, where AICc exists. The last test stops a stiff but wrong family from
reporting a tight, mistaken asymptote. Failing any of them leaves ``identified`` False and
``plateau``, ``plateau_lo``, ``plateau_hi`` and ``f95`` NaN; ``plateau_est`` keeps the raw estimate
(not a plateau: never print it as one) and ``reason`` explains. The one plateau per condition that
tables and text use is in plateaus.csv (:mod:`.plateaus`).

The results are the ``fits.csv`` table and a Dataset of fitted curves with pointwise bootstrap
bands on a log-spaced F grid, written to ``curves.nc`` by :func:`curves_to_netcdf`. The family
helpers are re-exported here, so ``from diminish.analysis.curves import predict`` keeps working.
"""

# ruff: noqa: E741  (P, I, F: pre-training size, intermediate flag, fine-tune size, as in the study)
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..seeds import stable_seed
from .common import (
    Notes,
    attach,
    cell_stats,
    check_metric,
    conditions,
    is_summary,
    seed_values,
)
from .families import (
    A_MAX,
    BOUND_TOL,
    F_REF,
    FAMILIES,
    N_RESTARTS,
    SATURATING,
    Family,
    Fit,
    f_to_fraction,
    fit_family,
    fit_many,
    gain_per_doubling,
    on_bound,
    predict,
)

__all__ = [
    "A_MAX", "BOUND_TOL", "F_REF", "FAMILIES", "FIT_COLUMNS", "GAIN_AT", "MAX_DELTA_AICC", "MAX_PLATEAU_WIDTH",
    "N_BOOT", "N_RESTARTS", "SATURATING", "CondData", "Family", "Fit", "aicc", "akaike_weights",
    "bootstrap_samples", "condition_data", "curves_to_netcdf", "f_to_fraction", "fit_curves",
    "fit_curves_detailed", "fit_family", "fit_many", "gain_per_doubling", "on_bound", "predict",
]

GAIN_AT = (1000, 2000, 4000)
MAX_PLATEAU_WIDTH = 10.0
MAX_DELTA_AICC = 10.0
N_BOOT = 200
MIN_SEEDS_RESAMPLE = 3  # fewer seeds per cell: residual bootstrap (see the module docstring)


def boot_method(cd: CondData) -> str:
    if cd.summary:
        return "cell means drawn from N(mean, SD/sqrt(n))"
    if cd.n_seeds < MIN_SEEDS_RESAMPLE:
        return f"residual bootstrap of the fit ({cd.n_seeds} seed{'s' if cd.n_seeds != 1 else ''} per cell)"
    return f"seeds resampled within each cell ({cd.n_seeds} per cell)"


# ---------------------------------------------------------------- model selection


def aicc(rss: float, n: int, n_params: int) -> float:
    K = n_params + 1  # + the residual variance
    if n - K - 1 <= 0 or n <= 0:
        return np.nan
    rss = max(rss, 1e-12 * n)
    return float(n * np.log(rss / n) + n * (np.log(2 * np.pi) + 1) + 2 * K + 2 * K * (K + 1) / (n - K - 1))


def akaike_weights(values) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    delta = np.full_like(v, np.nan)
    w = np.zeros_like(v)
    if ok.any():
        delta[ok] = v[ok] - v[ok].min()
        e = np.exp(-0.5 * delta[ok])
        w[ok] = e / e.sum()
    return delta, w


# ---------------------------------------------------------------- data per condition


@dataclass
class CondData:
    F: np.ndarray          # points used in the fit
    y: np.ndarray
    cells: list            # per distinct F: (F, values array) for per-seed, (F, mean, sd, n) for summary
    summary: bool
    n_seeds: int


def condition_data(ds: xr.Dataset, metric: str, P, I) -> CondData:
    cells, F, y = [], [], []
    summ = is_summary(ds)
    for f in ds.finetune.values:
        if summ:
            m, sd, n = cell_stats(ds, metric, P, I, f)
            if n > 0:
                cells.append((float(f), m, sd, n))
                F.append(float(f))
                y.append(m)
        else:
            v = seed_values(ds, metric, P, I, f)
            if len(v):
                cells.append((float(f), v))
                F.extend([float(f)] * len(v))
                y.extend(v.tolist())
    ns = max((len(c[1]) for c in cells), default=0) if not summ else max((c[3] for c in cells), default=0)
    return CondData(np.array(F), np.array(y), cells, summ, ns)


def bootstrap_samples(cd: CondData, n_boot: int, rng: np.random.Generator,
                      fitted: np.ndarray | None = None) -> np.ndarray:
    """(n_boot, n_points) resampled values at the same sizes (scheme in the module docstring)."""
    if cd.summary:
        m = np.array([c[1] for c in cd.cells])
        se = np.array([(c[2] if np.isfinite(c[2]) else 0.0) / np.sqrt(c[3]) for c in cd.cells])
        return m + rng.normal(size=(n_boot, len(m))) * se
    if cd.n_seeds < MIN_SEEDS_RESAMPLE:
        res = cd.y - fitted
        return fitted + rng.choice(res, size=(n_boot, len(res)), replace=True)
    return np.concatenate([rng.choice(v, size=(n_boot, len(v)), replace=True) for _, v in cd.cells], axis=1)


# ---------------------------------------------------------------- all conditions


def fit_curves_detailed(ds: xr.Dataset, metric: str = "miou", families=tuple(FAMILIES), n_boot: int = N_BOOT,
                        n_restarts: int = N_RESTARTS, seed: int = 0,
                        max_plateau_width: float = MAX_PLATEAU_WIDTH, max_delta_aicc: float = MAX_DELTA_AICC,
                        n_grid: int = 121):
    """(fits table, curves Dataset). The table is ``fits.csv``; the Dataset holds fit/lo/hi on an f grid."""
    check_metric(ds, metric)
    notes = Notes()
    sizes = ds.finetune.values.astype(float)
    grid = np.exp(np.linspace(np.log(sizes.min() / 2), np.log(sizes.max() * 2), n_grid))
    conds = conditions(ds, metric)
    Ps = [int(p) for p in ds.pretrain.values]
    Is = [bool(i) for i in ds.intermediate.values]
    shape = (len(Ps), len(Is), len(families), n_grid)
    arrs = {k: np.full(shape, np.nan) for k in ("fit", "lo", "hi")}
    rows = []
    for P in Ps:
        for I in Is:
            if (P, I) not in conds:
                notes.add(f"{metric}: no data for pretrain={P}, intermediate={I}: not fitted")
                continue
            cd = condition_data(ds, metric, P, I)
            frange = (float(cd.F.min()), float(cd.F.max()))
            n_sizes = len(cd.cells)
            if not cd.summary and cd.n_seeds < MIN_SEEDS_RESAMPLE:
                notes.add(f"{metric}: {cd.n_seeds} seed(s) per cell: curve intervals use a residual bootstrap of "
                          "each fit (resampling so few seeds would carry almost no information)")
            crow = []
            for j, name in enumerate(families):
                fam = FAMILIES[name]
                rng = np.random.default_rng([seed, stable_seed(metric, P, I, name)])
                base = dict(metric=metric, pretrain=P, intermediate=I, family=name, n_params=fam.n_params,
                            n_points=len(cd.y), n_sizes=n_sizes, f_min=frange[0], f_max=frange[1],
                            boot=boot_method(cd))
                if n_sizes < fam.n_params + 1:
                    msg = f"skipped: {n_sizes} fine-tune sizes < {fam.n_params + 1} needed"
                    notes.add(f"{metric}: pretrain={P}, intermediate={I}, {name}: {msg}")
                    crow.append(dict(base, status=msg))
                    continue
                fit = fit_family(name, cd.F, cd.y, rng, n_restarts, frange=frange)
                theta = fit.theta
                # leave the largest size out, predict it
                big = cd.F == frange[1]
                loo = np.nan
                if len(np.unique(cd.F[~big])) >= fam.n_params:
                    f2 = fit_family(name, cd.F[~big], cd.y[~big], rng, n_restarts, frange=frange)
                    loo = float(predict(name, f2.theta, [frange[1]])[0] - cd.y[big].mean())
                # bootstrap (the same resampled data sets for every family of the condition)
                brng = np.random.default_rng([seed, stable_seed(metric, P, I, "boot")])
                fitted = predict(name, theta, cd.F)
                Yb = bootstrap_samples(cd, n_boot, brng, fitted)
                bth = fit_many(name, cd.F, Yb, frange) if n_boot else np.empty((0, fam.n_params))
                bth = bth[np.isfinite(bth).all(axis=1)]  # a failed resample counts as missing
                enough = n_boot >= 2 and len(bth) >= max(2, n_boot // 2)
                arrs["fit"][Ps.index(P), Is.index(I), j] = predict(name, theta, grid)
                if enough:
                    bcurve = predict(name, bth, grid)
                    bcurve = bcurve[np.isfinite(bcurve).all(axis=1)]
                    band = np.percentile(bcurve, [2.5, 97.5], axis=0)
                    arrs["lo"][Ps.index(P), Is.index(I), j], arrs["hi"][Ps.index(P), Is.index(I), j] = band
                row = dict(base, status="ok", params=_params_json(name, theta), rss=fit.rss,
                           aicc=aicc(fit.rss, fit.n, fam.n_params), loo_error=loo)
                gains = {f"gain_{g}": (gain_per_doubling(name, theta, g)
                                       if frange[0] <= g <= frange[1] else np.nan) for g in GAIN_AT}
                row.update(gains, gain_fmin=gain_per_doubling(name, theta, frange[0]),
                           gain_fmax=gain_per_doubling(name, theta, frange[1]))
                if fam.saturating:
                    a = float(theta[0])
                    lo_, hi_ = np.percentile(bth[:, 0], [2.5, 97.5]) if enough else (np.nan, np.nan)
                    reasons = []
                    ob = on_bound(name, theta, frange)
                    if ob:
                        reasons.append("on bound: " + ",".join(ob))
                    if not np.isfinite(hi_ - lo_):
                        reasons.append("no bootstrap interval")
                    elif hi_ - lo_ > max_plateau_width:
                        reasons.append(f"interval width {hi_ - lo_:.3g} > {max_plateau_width:g}")
                    if np.isfinite(hi_) and hi_ >= A_MAX * (1 - BOUND_TOL):
                        reasons.append(f"interval reaches the {A_MAX:g}% bound")  # open above: no upper limit
                    ident = not reasons
                    row.update(plateau=a if ident else np.nan, plateau_lo=float(lo_), plateau_hi=float(hi_),
                               plateau_est=a, identified=ident, reason="; ".join(reasons),
                               f95=f_to_fraction(name, theta) if ident else np.nan)
                else:
                    row.update(identified=False, reason="non-saturating family (no plateau)")
                crow.append(row)
            ok = [r for r in crow if r.get("status") == "ok"]
            delta, w = akaike_weights([r["aicc"] for r in ok])
            for r, d, wt in zip(ok, delta, w):
                r["delta_aicc"], r["akaike_weight"] = float(d), float(wt)
                if FAMILIES[r["family"]].saturating and np.isfinite(d) and d > max_delta_aicc:
                    # a family the data reject cannot vouch for its asymptote, however narrow its interval
                    r["reason"] = "; ".join(x for x in (r["reason"], f"rejected: delta AICc {d:.3g} > "
                                                        f"{max_delta_aicc:g}") if x)
                    r.update(identified=False, plateau=np.nan, f95=np.nan)
            for r in ok:
                if FAMILIES[r["family"]].saturating and not r["identified"]:
                    r.update(plateau_lo=np.nan, plateau_hi=np.nan)  # no interval for what is not a plateau
            if ok:
                if np.isfinite([r["aicc"] for r in ok]).any():
                    bi = int(np.nanargmin([r["aicc"] for r in ok]))
                else:
                    notes.add(f"{metric}: pretrain={P}, intermediate={I}: too few points for AICc; "
                              "best family chosen by leave-largest-out error")
                    errs = [abs(r["loo_error"]) for r in ok]
                    bi = int(np.nanargmin(errs)) if np.isfinite(errs).any() else None
                for k, r in enumerate(ok):
                    r["best"] = bi is not None and k == bi
            rows.extend(crow)
    table = pd.DataFrame(rows, columns=FIT_COLUMNS)
    table["identified"] = table["identified"].fillna(False).astype(bool)
    table["best"] = table["best"].fillna(False).astype(bool)
    curves = xr.Dataset(
        {k: (("pretrain", "intermediate", "family", "f"), v) for k, v in arrs.items()},
        coords={"pretrain": Ps, "intermediate": Is, "family": list(families), "f": grid},
    ).expand_dims(metric=[metric])
    curves.attrs.update(band="pointwise 2.5-97.5 percentiles of bootstrap refits", n_boot=n_boot, seed=seed)
    return attach(table, notes), curves


FIT_COLUMNS = [
    "metric", "pretrain", "intermediate", "family", "n_params", "params", "aicc", "delta_aicc",
    "akaike_weight", "loo_error", "plateau", "plateau_lo", "plateau_hi", "identified", "f95",
    "gain_1000", "gain_2000", "gain_4000", "best",
    # extra columns (not in the minimal contract)
    "status", "reason", "plateau_est", "rss", "n_points", "n_sizes", "f_min", "f_max", "gain_fmin", "gain_fmax", "boot",
]


def _params_json(name: str, theta) -> str:
    return json.dumps({p: float(f"{v:.6g}") for p, v in zip(FAMILIES[name].params, theta)})


def fit_curves(ds: xr.Dataset, metric: str = "miou", **kw) -> pd.DataFrame:
    """The fits table only (see :func:`fit_curves_detailed`)."""
    return fit_curves_detailed(ds, metric, **kw)[0]


def curves_to_netcdf(curves: xr.Dataset, path) -> None:
    out = curves.assign_coords(intermediate=curves["intermediate"].astype(np.int8))
    out.to_netcdf(path)
