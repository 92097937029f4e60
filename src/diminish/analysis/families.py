"""The learning-curve families and how one of them is fitted to a set of points.

Each family maps the fine-tune size F to a metric in percent; ``a`` is always the asymptote and
``F_REF`` is 1000 images:

========  =============================  ===========================================
pow3      a - b (F / F_REF)^(-c)         b: distance below a at F = 1000
exp3      a - b exp(-F / s)              s: a size scale, in images
mmf4      a - (a - b) / (1 + (F / k)^d)  Morgan-Mercer-Flodin; b is the value at F = 0
wbl4      a - (a - b) exp(-(F / k)^d)    Weibull; b is the value at F = 0
log2      a + b ln F                     rises without limit: the no-plateau null
========  =============================  ===========================================

Fitting. With the shape parameters (everything after a and b) held fixed, every saturating curve
is linear in (a, b), so the residual sum of squares has an exact minimiser over the (a, b) box. A
grid over the logarithms of the shape parameters, refined by zooming in, plus a few seeded random
starting points, uses that exact inner solution everywhere; the best grid point and the best random
start are each polished over all parameters with ``scipy.optimize.least_squares`` inside the bounds,
and the lowest residual wins. The asymptote is bounded to [0, 100] %. ``log2`` is ordinary linear
least squares. :func:`fit_many` runs the grid stage alone on many data sets at once (the bootstrap).

Also here: curve values (:func:`predict`), which parameters sit on a bound (:func:`on_bound`), the
gain per doubling of F at a given size and the F that reaches a fraction of the asymptote.
Comparing the families and bootstrapping each condition live in :mod:`.curves`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq, least_squares

F_REF = 1000.0
A_MAX = 100.0
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
    ok = (np.abs(det) > 1e-12 * np.abs(Saa * Sbb) + tiny) & (a0 >= lo[0]) & (a0 <= hi[0])
    ok &= (b0 >= lo[1]) & (b0 <= hi[1])
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

