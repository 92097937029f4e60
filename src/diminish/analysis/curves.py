"""Learning-curve fits metric(F) per (pretrain, intermediate) condition, with honest uncertainty.

Families (F = fine-tune size, a = asymptote in percent, ``F_REF`` = 1000):

========  ==============================================  =========================
pow3      a - b (F / F_REF)^(-c)                          b = gap to a at F = 1000
exp3      a - b exp(-F / s)                               s = scale in images
mmf4      a - (a - b) / (1 + (F / k)^d)   (Morgan-Mercer-Flodin; b = value at F = 0)
wbl4      a - (a - b) exp(-(F / k)^d)     (Weibull; b = value at F = 0)
log2      a + b ln F                      non-saturating null: no plateau at all
========  ==============================================  =========================

Every saturating family is linear in (a, b) once its shape parameters are fixed, so each restart
draws the shape parameters (seeded), solves (a, b) by bounded linear least squares, then polishes
all parameters with ``scipy.optimize.least_squares`` inside the bounds; the lowest residual wins.
Bounds keep a in [0, 100] %. Fits are unweighted least squares on seed-level points (on the cell
means for summary data such as the paper's tables, whose 3-run SDs are too noisy to weight by).

Per fit: AICc (Gaussian likelihood, the residual variance counted as a parameter; NaN when
n - K - 1 <= 0), Akaike weights within a condition, the leave-largest-size-out extrapolation error
(fit without the largest F, prediction minus the observed mean there), the plateau with a 95%
percentile bootstrap interval, F95 (the F where the curve reaches 95% of its plateau), and the gain
per doubling of F, ln(2) * d metric / d ln F, at F = 1000, 2000, 4000 (NaN where that F lies outside
the condition's measured range) and at the smallest and largest measured F.

Bootstrap: per-seed data resample the seeds within each cell; a single seed falls back to a residual
bootstrap; summary data use a parametric bootstrap, each mean drawn from N(mean, SD / sqrt(n)).

Identifiability: the plateau is reported (``plateau`` column) only when (1) the fit is not on a
parameter bound (asymptote at 0 or 100 %, or a shape parameter at its limit), (2) the 95% bootstrap
interval is at most ``max_plateau_width`` (default 10 percentage points) wide, and (3) the family is
not rejected by the data: its AICc is at most ``max_delta_aicc`` (default 10) above the condition's
best (skipped where AICc is undefined). (3) matters because a rigid but wrong family can give a
narrow, confidently wrong asymptote. Otherwise ``identified`` is False, ``plateau`` and ``f95`` are
NaN, ``plateau_est`` keeps the raw estimate and ``reason`` says why.
"""

# ruff: noqa: E741  (P, I, F: pre-training size, intermediate flag, fine-tune size, as in the study)
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from scipy.optimize import brentq, least_squares

from .common import (
    Notes,
    attach,
    cell_stats,
    check_metric,
    conditions,
    is_summary,
    seed_values,
    stable_seed,
)

F_REF = 1000.0
A_MAX = 100.0
GAIN_AT = (1000, 2000, 4000)
MAX_PLATEAU_WIDTH = 10.0
MAX_DELTA_AICC = 10.0
N_BOOT = 200
N_RESTARTS = 4
BOUND_TOL = 1e-3  # relative distance to a bound (in the optimiser's coordinates) that counts as "on it"


@dataclass(frozen=True)
class Family:
    name: str
    params: tuple[str, ...]
    saturating: bool
    formula: str

    @property
    def n_params(self) -> int:
        return len(self.params)


FAMILIES = {
    "pow3": Family("pow3", ("a", "b", "c"), True, "a - b*(F/1000)^(-c)"),
    "exp3": Family("exp3", ("a", "b", "s"), True, "a - b*exp(-F/s)"),
    "mmf4": Family("mmf4", ("a", "b", "k", "d"), True, "a - (a-b)/(1+(F/k)^d)"),
    "wbl4": Family("wbl4", ("a", "b", "k", "d"), True, "a - (a-b)*exp(-(F/k)^d)"),
    "log2": Family("log2", ("a", "b"), False, "a + b*ln(F)"),
}
SATURATING = tuple(k for k, f in FAMILIES.items() if f.saturating)


# ---------------------------------------------------------------- model functions


def _basis(name: str, nl, F) -> tuple[np.ndarray, np.ndarray]:
    """(h_a, h_b) with y = a * h_a + b * h_b for fixed shape parameters.

    ``nl`` has the shape parameters on its last axis, (..., q); F is (n,); the result is (..., n).
    """
    F = np.asarray(F, dtype=float)
    nl = np.asarray(nl, dtype=float)
    p = [nl[..., i, None] for i in range(nl.shape[-1])] if nl.ndim else []
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        if name == "pow3":
            hb = -((F / F_REF) ** (-p[0]))
            return np.ones_like(hb), hb
        if name == "exp3":
            hb = -np.exp(-F / p[0])
            return np.ones_like(hb), hb
        if name == "mmf4":
            g = 1.0 / (1.0 + (F / p[0]) ** p[1])
            return 1.0 - g, g
        if name == "wbl4":
            g = np.exp(-((F / p[0]) ** p[1]))
            return 1.0 - g, g
        if name == "log2":
            return np.ones_like(F), np.log(F)
    raise KeyError(name)


def predict(name: str, theta, F) -> np.ndarray:
    """Curve values; ``theta`` is (n_params,) or (..., n_params) -> (..., len(F))."""
    theta = np.asarray(theta, dtype=float)
    ha, hb = _basis(name, theta[..., 2:], F)
    return theta[..., 0, None] * ha + theta[..., 1, None] * hb


def _bounds(name: str, Fmin: float, Fmax: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) for the full parameter vector; shape parameters are searched in log space."""
    scale = (Fmin / 100.0, Fmax * 100.0)
    if name == "pow3":
        return np.array([0, 0, 0.01]), np.array([A_MAX, 200, 5.0])
    if name == "exp3":
        return np.array([0, 0, scale[0]]), np.array([A_MAX, 200, scale[1]])
    if name in ("mmf4", "wbl4"):
        return np.array([0, 0, scale[0], 0.05]), np.array([A_MAX, A_MAX, scale[1], 5.0])
    raise KeyError(name)


# ---------------------------------------------------------------- fitting


@dataclass
class Fit:
    theta: np.ndarray
    rss: float
    n: int


def _ab_on_box(Saa, Sab, Sbb, Say, Sby, Syy, lo, hi):
    """Exact minimiser of the residual sum of squares over (a, b) in a box, vectorised.

    The objective is a convex quadratic, so the minimum is the unconstrained one when feasible,
    else the best of the four edges (each a clipped one-dimensional problem).
    """
    def rss(a, b):
        with np.errstate(invalid="ignore", over="ignore"):
            return Syy - 2 * a * Say - 2 * b * Sby + a * a * Saa + 2 * a * b * Sab + b * b * Sbb

    tiny = 1e-300
    det = Saa * Sbb - Sab**2
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        a0 = (Sbb * Say - Sab * Sby) / det
        b0 = (Saa * Sby - Sab * Say) / det
    ok = (np.abs(det) > 1e-12 * np.abs(Saa * Sbb) + tiny) & (a0 >= lo[0]) & (a0 <= hi[0]) & (b0 >= lo[1]) & (b0 <= hi[1])
    best_r = np.where(ok, rss(a0, b0), np.inf)
    best_a, best_b = np.where(ok, a0, np.nan), np.where(ok, b0, np.nan)
    for a_fix in (lo[0], hi[0]):
        b = np.clip((Sby - a_fix * Sab) / np.maximum(Sbb, tiny), lo[1], hi[1])
        r = rss(a_fix, b)
        take = r < best_r
        best_r, best_a, best_b = np.where(take, r, best_r), np.where(take, a_fix, best_a), np.where(take, b, best_b)
    for b_fix in (lo[1], hi[1]):
        a = np.clip((Say - b_fix * Sab) / np.maximum(Saa, tiny), lo[0], hi[0])
        r = rss(a, b_fix)
        take = r < best_r
        best_r, best_a, best_b = np.where(take, r, best_r), np.where(take, a, best_a), np.where(take, b_fix, best_b)
    return best_a, best_b, np.maximum(best_r, 0.0)


def _profile(name, U, F, Y, lo, hi):
    """Profile RSS over log shape parameters U (..., m, q) for data Y (..., n) -> (a, b, rss) (..., m)."""
    ha, hb = _basis(name, np.exp(U), F)  # (..., m, n)
    bad = ~(np.all(np.isfinite(ha), -1) & np.all(np.isfinite(hb), -1))
    ha, hb = np.nan_to_num(ha), np.nan_to_num(hb)
    Yb = Y[..., None, :]
    a, b, r = _ab_on_box((ha * ha).sum(-1), (ha * hb).sum(-1), (hb * hb).sum(-1), (ha * Yb).sum(-1),
                         (hb * Yb).sum(-1), (Yb * Yb).sum(-1), lo, hi)
    return a, b, np.where(bad, np.inf, r)


def _grid_fit(name: str, F, Y, frange, extra_u=None, levels: int = 4):
    """Global grid over the log shape parameters, then zoom in; exact (a, b) at every point.

    Y is (B, n): B data sets sharing the sizes F. ``extra_u`` (k, q) adds candidate points (the
    seeded random restarts). Returns theta (B, n_params) and rss (B,).
    """
    lo, hi = _bounds(name, *frange)
    ulo, uhi = np.log(lo[2:]), np.log(hi[2:])
    q = len(ulo)
    counts = (241,) if q == 1 else (41, 31)
    axes = [np.linspace(ulo[i], uhi[i], counts[i]) for i in range(q)]
    U = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, q)
    if extra_u is not None:
        U = np.concatenate([U, np.clip(extra_u, ulo, uhi)])
    step = np.array([ax[1] - ax[0] for ax in axes])
    B = Y.shape[0]
    a, b, r = _profile(name, U, F, Y, lo, hi)  # (B, m)
    k = np.argmin(r, axis=1)
    rows = np.arange(B)
    best_u, best = U[k], (a[rows, k], b[rows, k], r[rows, k])
    local = np.linspace(-1, 1, 21 if q == 1 else 11)
    offs = np.stack(np.meshgrid(*([local] * q), indexing="ij"), -1).reshape(-1, q)
    for _ in range(levels - 1):
        Ul = np.clip(best_u[:, None, :] + offs[None] * step, ulo, uhi)  # (B, m, q)
        a, b, r = _profile(name, Ul, F, Y, lo, hi)
        k = np.argmin(r, axis=1)
        best_u, best = Ul[rows, k], (a[rows, k], b[rows, k], r[rows, k])
        step = step / (len(local) // 2)
    theta = np.column_stack([best[0], best[1], np.exp(best_u)])
    return theta, best[2]


def _polish(name, theta0, F, y, frange):
    """Local least-squares refinement of all parameters (log shape parameters) inside the bounds."""
    lo, hi = _bounds(name, *frange)
    ulo = np.concatenate([lo[:2], np.log(lo[2:])])
    uhi = np.concatenate([hi[:2], np.log(hi[2:])])
    u0 = np.concatenate([theta0[:2], np.log(theta0[2:])])
    u0 = np.clip(u0, ulo + 1e-9 * (uhi - ulo), uhi - 1e-9 * (uhi - ulo))

    def resid(u):
        r = predict(name, np.concatenate([u[:2], np.exp(u[2:])]), F) - y
        return np.where(np.isfinite(r), r, 1e6)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = least_squares(resid, u0, bounds=(ulo, uhi), method="trf", x_scale="jac", max_nfev=500)
    return np.concatenate([res.x[:2], np.exp(res.x[2:])]), float(np.sum(res.fun**2))


def fit_family(name: str, F, y, rng: np.random.Generator | None = None, n_restarts: int = N_RESTARTS,
               frange: tuple[float, float] | None = None, polish: bool = True) -> Fit:
    """Least-squares fit of one family to points (F, y).

    Saturating families: a global grid over the (log) shape parameters plus ``n_restarts`` seeded
    random points, zoomed in, with (a, b) exact at every point; the best grid point and the best
    random restart are then polished with ``least_squares`` and the lower residual wins.
    """
    F = np.asarray(F, dtype=float)
    y = np.asarray(y, dtype=float)
    if name == "log2":
        A = np.column_stack(_basis("log2", None, F))
        theta = np.linalg.lstsq(A, y, rcond=None)[0]
        return Fit(theta, float(np.sum((A @ theta - y) ** 2)), len(y))
    frange = frange or (float(F.min()), float(F.max()))
    lo, hi = _bounds(name, *frange)
    rng = rng or np.random.default_rng(0)
    extra = rng.uniform(np.log(lo[2:]), np.log(hi[2:]), size=(n_restarts, len(lo) - 2))
    theta, rss = _grid_fit(name, F, y[None], frange, extra_u=extra)
    theta, rss = theta[0], float(rss[0])
    if polish:
        starts = [theta]
        if n_restarts:
            a, b, r = _profile(name, extra, F, y[None], lo, hi)
            k = int(np.argmin(r[0]))
            starts.append(np.concatenate([[a[0, k], b[0, k]], np.exp(extra[k])]))
        for t0 in starts:
            t, r = _polish(name, t0, F, y, frange)
            if r < rss - 1e-12:
                theta, rss = t, r
    return Fit(theta, rss, len(y))


def fit_many(name: str, F, Y, frange) -> np.ndarray:
    """Grid fits of many data sets sharing F (the bootstrap): (B, n) -> theta (B, n_params)."""
    Y = np.asarray(Y, dtype=float)
    if name == "log2":
        A = np.column_stack(_basis("log2", None, F))
        return np.linalg.lstsq(A, Y.T, rcond=None)[0].T
    return _grid_fit(name, np.asarray(F, float), Y, frange)[0]


def on_bound(name: str, theta, frange) -> list[str]:
    """Names of the parameters (the asymptote or a shape parameter) that sit on their bound."""
    if name == "log2":
        return []
    lo, hi = _bounds(name, *frange)
    theta = np.asarray(theta, dtype=float)
    out = []
    if theta[0] <= lo[0] + BOUND_TOL * (hi[0] - lo[0]) or theta[0] >= hi[0] - BOUND_TOL * (hi[0] - lo[0]):
        out.append("a")
    u, ulo, uhi = np.log(theta[2:]), np.log(lo[2:]), np.log(hi[2:])
    tol = BOUND_TOL * (uhi - ulo)
    for i, p in enumerate(FAMILIES[name].params[2:]):
        if u[i] <= ulo[i] + tol[i] or u[i] >= uhi[i] - tol[i]:
            out.append(p)
    return out


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


def gain_per_doubling(name: str, theta, F: float) -> float:
    h = 1e-4
    up, dn = predict(name, theta, [F * np.exp(h), F * np.exp(-h)])
    return float((up - dn) / (2 * h) * np.log(2))


def f_to_fraction(name: str, theta, frac: float = 0.95) -> float:
    """F at which a saturating curve reaches ``frac`` of its asymptote (0 if it starts above)."""
    if name == "log2":
        return np.nan
    target = frac * theta[0]
    g = lambda lf: float(predict(name, theta, [np.exp(lf)])[0]) - target  # noqa: E731
    lo, hi = np.log(1e-3), np.log(1e12)
    if g(lo) >= 0:
        return 0.0
    if g(hi) < 0:
        return float("inf")
    return float(np.exp(brentq(g, lo, hi, xtol=1e-10)))


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
    if cd.n_seeds <= 1:
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
            if not cd.summary and cd.n_seeds == 1:
                notes.add(f"{metric}: a single seed per cell: plateau intervals use a residual bootstrap")
            crow = []
            for j, name in enumerate(families):
                fam = FAMILIES[name]
                rng = np.random.default_rng([seed, stable_seed(metric, P, I, name)])
                base = dict(metric=metric, pretrain=P, intermediate=I, family=name, n_params=fam.n_params,
                            n_points=len(cd.y), n_sizes=n_sizes, f_min=frange[0], f_max=frange[1])
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
    "status", "reason", "plateau_est", "rss", "n_points", "n_sizes", "f_min", "f_max", "gain_fmin", "gain_fmax",
]


def _params_json(name: str, theta) -> str:
    return json.dumps({p: float(f"{v:.6g}") for p, v in zip(FAMILIES[name].params, theta)})


def fit_curves(ds: xr.Dataset, metric: str = "miou", **kw) -> pd.DataFrame:
    """The fits table only (see :func:`fit_curves_detailed`)."""
    return fit_curves_detailed(ds, metric, **kw)[0]


def curves_to_netcdf(curves: xr.Dataset, path) -> None:
    out = curves.assign_coords(intermediate=curves["intermediate"].astype(np.int8))
    out.to_netcdf(path)
