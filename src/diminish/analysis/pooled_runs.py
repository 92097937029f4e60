"""The pre-training effect from the runs themselves, one fine-tune size at a time (per-seed data).

Every pre-training difference at one (F, seed) shares the same from-scratch run, so differences
taken as independent understate the uncertainty of their average (by about a factor sqrt((k + 1) /
2) in SE for k pre-training sizes sharing one baseline). This model fits the runs instead, so the
shared baseline enters once. At each fine-tune size F, by ordinary least squares on the runs
without intermediate fine-tuning::

    y(P, F, s) = a_F + [P > 0] (beta_F + c_F (log2 P - mean)) + seed_s + e,   e ~ N(0, sigma_F^2)

``beta_F`` is the average difference at F over the pre-trained sizes, with a classical t interval on
that F's own residual df: each F has its own error variance (the study's spread differs about
five-fold between fine-tune sizes, which a single pooled variance or HC errors over a few runs per F
do not capture). The study-level terms are linear contrasts of the independent per-F estimates
(Satterthwaite df): ``mean`` the plain average of beta_F, ``log2_finetune`` its least-squares slope
in log2 F, ``log2_pretrain`` the average of c_F. The coverage of these intervals is measured in
:mod:`.coverage` (analysis/README.md).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy import stats

METHOD = ("OLS on the runs at each F (a from-scratch level, the pre-training effect and its slope in log2 P, "
          "seed effects; each F its own error variance); study-level terms are contrasts of the per-F effects "
          "(Satterthwaite df)")


def per_f(d: pd.DataFrame) -> pd.DataFrame | None:
    """One row per F: beta (the average difference), its se and df, and c (the slope in log2 P) with its se;
    None when some F has no residual degree of freedom."""
    rows = []
    for f, g in d.groupby("finetune"):
        P = g.pretrain.to_numpy(float)
        pre = (P > 0).astype(float)
        cols = [np.ones(len(g)), pre]
        pos = P > 0
        if len(np.unique(P[pos])) > 1:
            lp = np.where(pos, np.log2(np.where(pos, P, 1.0)), 0.0)
            lp[pos] -= lp[pos].mean()
            cols.append(lp)
        seeds = sorted(g.seed.unique())
        cols += [(g.seed == s).to_numpy(float) - (g.seed == seeds[-1]).to_numpy(float) for s in seeds[:-1]]
        X = np.column_stack(cols)
        if len(g) <= X.shape[1] or np.linalg.matrix_rank(X) < X.shape[1] or not pos.any() or pos.all():
            return None
        res = sm.OLS(g.y.to_numpy(float), X).fit()
        has_c = len(cols) > 2 + len(seeds) - 1
        rows.append(dict(finetune=int(f), beta=float(res.params[1]), se=float(res.bse[1]), df=float(res.df_resid),
                         c=float(res.params[2]) if has_c else np.nan, se_c=float(res.bse[2]) if has_c else np.nan,
                         n_obs=int(pos.sum())))
    return pd.DataFrame(rows) if rows else None


def _contrast(est, se, df, w) -> dict:
    est, se, df, w = (np.asarray(x, float) for x in (est, se, df, w))
    v = (w * se) ** 2
    e, s = float(w @ est), float(np.sqrt(v.sum()))
    nu = float(v.sum() ** 2 / np.sum(v**2 / df)) if s > 0 else np.nan
    q = stats.t.ppf(0.975, nu) if np.isfinite(nu) else np.nan
    p = float(2 * stats.t.sf(abs(e / s), nu)) if s > 0 else np.nan
    return dict(estimate=e, se=s, ci_lo=e - q * s, ci_hi=e + q * s, p=p, df_resid=nu)


def by_f_rows(t: pd.DataFrame) -> pd.DataFrame:
    """effect_by_f rows (finetune, estimate, se, ci_lo, ci_hi, df_resid, n_obs) from :func:`per_f`."""
    q = stats.t.ppf(0.975, t.df.to_numpy(float))
    return pd.DataFrame(dict(finetune=t.finetune, estimate=t.beta, se=t.se, ci_lo=t.beta - q * t.se,
                             ci_hi=t.beta + q * t.se, df_resid=t.df, n_obs=t.n_obs))


def terms(t: pd.DataFrame) -> pd.DataFrame:
    """The study-level terms (term, estimate, se, ci_lo, ci_hi, p, df_resid) from :func:`per_f`."""
    k = len(t)
    out = [dict(term="mean", **_contrast(t.beta, t.se, t.df, np.full(k, 1 / k)))]
    lf = np.log2(t.finetune.to_numpy(float))
    if k > 1 and np.ptp(lf) > 0:
        w = (lf - lf.mean()) / np.sum((lf - lf.mean()) ** 2)
        out.append(dict(term="log2_finetune", **_contrast(t.beta, t.se, t.df, w)))
    if t.c.notna().all():
        out.append(dict(term="log2_pretrain", **_contrast(t.c, t.se_c, t.df, np.full(k, 1 / k))))
    return pd.DataFrame(out)
