"""The pooled models of the two effects (pooled.csv) and the effect at each fine-tune size (effect_by_f.csv).

Intermediate effect: differences metric(P, I = on, F) - metric(P, I = off, F), paired by seed, for
every P with both arms (``_deltas_long``). Each difference uses its own two runs, so they are
modelled as independent (ordinary least squares, HC3 standard errors, t intervals on the residual
df)::

    delta = b0 + b_F (log2 F - mean) + b_pre (pretrained - mean) + b_P (log2 P - mean) + seed_s + e

Pre-training effect: P > 0 against P = 0, without intermediate fine-tuning only (the arm the
paper's pre-training claims are about; the ``arms`` column says so). Every difference at one
(F, seed) would share the same from-scratch run, so the model fits the runs themselves
(``_runs_long``), where that run enters once: per-seed data by :mod:`.pooled_runs` (one model per
F, each with its own error variance; the study-level terms are contrasts of the per-F effects),
summary data by one OLS on the cell means with a free from-scratch level per F::

    y = a_F + [P > 0] (b0 + b_F (log2 F - mean) + b_P (log2 P - mean)) + e

Where no from-scratch cell without intermediate fine-tuning exists the pre-training model is
skipped. The intervals' coverage of planted truths, with the study's noise and 2 or 3 seeds, is
measured by :mod:`.coverage` and reported in analysis/README.md.

Every covariate is centred over the observations it applies to, so ``b0`` (term ``mean``) is the
average difference over the cells the model uses (with a full grid: the plain mean of the cells).
``log2_finetune``: change of the difference per doubling of F. ``pretrained`` (intermediate effect
only, when both P = 0 and P > 0 enter): the shift between pre-trained and from-scratch models.
``log2_pretrain``: change per doubling of P among pre-trained models (P = 0 has no log2 P: the term
is 0 there), a slope per doubling whatever the spacing of the pre-training sizes. Terms whose
covariate does not vary are left out. ``seed_s``: seed fixed effects (sum-coded, so they do not
move ``b0``); they remove any shift common to a seed's runs. Summary data carry no seed terms.

effect_by_f.csv: the same models with one free effect per fine-tune size instead of ``b0 + b_F``,
so each row is the average difference at that F (over the same P) with a model-based interval. The
verdicts use it to see whether an effect changes sign along F.
"""

# ruff: noqa: E741  (P, I, F: pre-training size, intermediate flag, fine-tune size, as in the study)
from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm
import xarray as xr
from scipy import stats

from . import pooled_runs
from .common import Notes, attach, cell_stats, check_metric, is_summary

COV = "HC3"  # the covariance of the estimates (statsmodels cov_type); its coverage is measured in coverage.py
POOLED_SEEDS = {"intermediate": "OLS on per-seed differences, seed fixed effects (sum-coded), HC3 SEs",
                "pretrain": pooled_runs.METHOD}
POOLED_CELLS = {"intermediate": "OLS on cell mean differences (summary statistics), HC3 SEs",
                "pretrain": "OLS on the cell means (summary statistics): a free from-scratch level per F and the "
                            "pre-training effect on the pre-trained cells, classical SEs"}
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


def _runs_long(ds, metric) -> tuple[pd.DataFrame, str]:
    """Long table of the runs (or cell means) the pre-training model uses: (pretrain, finetune, seed, y), without
    intermediate fine-tuning, at the fine-tune sizes with a from-scratch value and a pre-trained one."""
    pairs, arms = _pairs(ds, metric, "pretrain")
    if not pairs:
        return pd.DataFrame(columns=["pretrain", "finetune", "seed", "y"]), arms
    Ps = [0] + [P for (P, _), _ in pairs]
    rows = []
    for F in ds.finetune.values:
        for P in Ps:
            if is_summary(ds):
                m = cell_stats(ds, metric, P, False, F)[0]
                vals = [(-1, m)]
            else:
                vals = zip(ds.seed.values, ds[metric].sel(pretrain=P, intermediate=False, finetune=F).values)
            rows += [dict(pretrain=int(P), finetune=int(F), seed=int(s), y=float(y)) for s, y in vals
                     if np.isfinite(y)]
    d = pd.DataFrame(rows, columns=["pretrain", "finetune", "seed", "y"])
    keep = d.groupby("finetune").pretrain.transform(lambda p: (p == 0).any() and (p > 0).any())
    return d[keep.astype(bool)].reset_index(drop=True), arms


def _covariates(d: pd.DataFrame, effect: str) -> dict[str, np.ndarray]:
    """Centred covariates other than F (see the module docstring); for the pre-training model they are centred
    over the pre-trained runs and multiplied by the pre-trained indicator."""
    P = d.pretrain.to_numpy(float)
    cols = {}
    pre = (P > 0).astype(float)
    if effect == "intermediate" and np.ptp(pre) > 0:
        cols["pretrained"] = pre - pre.mean()
    pos = P > 0
    if len(np.unique(P[pos])) > 1:
        lp = np.where(pos, np.log2(np.where(pos, P, 1.0)), 0.0)
        lp[pos] -= lp[pos].mean()
        cols["log2_pretrain"] = lp if effect == "pretrain" else lp - lp.mean()
    return cols


def _seed_terms(d: pd.DataFrame) -> dict[str, np.ndarray]:
    seeds = sorted(d.seed.unique())
    last = (d.seed == seeds[-1]).astype(float).to_numpy()
    return {f"seed[{s}]": (d.seed == s).astype(float).to_numpy() - last for s in seeds[:-1]}


def design(d: pd.DataFrame, effect: str, per_f: bool = False) -> tuple[dict[str, np.ndarray], list[str], np.ndarray]:
    """(model columns, the names of the reported terms, response) for a long table of :func:`_deltas_long`
    (intermediate) or :func:`_runs_long` (pre-training); ``per_f``: one free effect per fine-tune size
    (terms ``F=<size>``) instead of ``mean`` + ``log2_finetune``."""
    lf = np.log2(d.finetune.to_numpy(float))
    Fs = sorted(d.finetune.unique())
    cols: dict[str, np.ndarray] = {}
    if effect == "pretrain":
        pre = (d.pretrain.to_numpy(float) > 0).astype(float)
        if per_f:
            cols.update({f"F={f}": pre * (d.finetune == f).to_numpy(float) for f in Fs})
        else:
            cols["mean"] = pre
            if np.ptp(lf) > 0:
                cols["log2_finetune"] = pre * (lf - lf[pre > 0].mean())
        cols.update(_covariates(d, effect))
        terms = list(cols)
        cols.update({f"base[F={f}]": (d.finetune == f).to_numpy(float) for f in Fs})
        y = d.y.to_numpy(float)
    else:
        if per_f:
            cols.update({f"F={f}": (d.finetune == f).to_numpy(float) for f in Fs})
        else:
            cols["mean"] = np.ones(len(d))
            if np.ptp(lf) > 0:
                cols["log2_finetune"] = lf - lf.mean()
        cols.update(_covariates(d, effect))
        terms = list(cols)
        y = d.delta.to_numpy(float)
    if (d.seed >= 0).all():
        cols.update(_seed_terms(d))
    return cols, terms, y


def fit_terms(d: pd.DataFrame, effect: str, per_f: bool = False) -> tuple[pd.DataFrame, int] | None:
    """The model of ``effect`` on a long table: one row per reported term (term, estimate, se, ci_lo, ci_hi, p,
    df_resid) and the number of observations; None when there are too few observations for the terms."""
    if effect == "pretrain" and len(d) and (d.seed >= 0).all():  # per-seed runs: one model per F (pooled_runs)
        t = pooled_runs.per_f(d)
        if t is None:
            return None
        if per_f:
            rows = pooled_runs.by_f_rows(t)
            rows.insert(0, "term", [f"F={f}" for f in t.finetune])
            stat = stats.t.sf(np.abs(rows.estimate / rows.se), rows.df_resid)
            return rows.assign(p=2 * stat).drop(columns=["finetune", "n_obs"]), len(d)
        return pooled_runs.terms(t), len(d)
    cols, terms, y = design(d, effect, per_f)
    X = np.column_stack(list(cols.values()))
    if len(y) <= X.shape[1] + 1 or np.linalg.matrix_rank(X) < X.shape[1]:
        return None
    # summary data of the pre-training model: one from-scratch cell per F fits its level exactly (leverage 1),
    # where HC errors are undefined; the classical covariance is used there
    res = sm.OLS(y, X).fit(use_t=True) if effect == "pretrain" else _fit(X, y)
    ci = np.asarray(res.conf_int(0.05))
    out = pd.DataFrame(dict(term=terms, estimate=res.params[:len(terms)], se=res.bse[:len(terms)],
                            ci_lo=ci[:len(terms), 0], ci_hi=ci[:len(terms), 1], p=res.pvalues[:len(terms)],
                            df_resid=float(res.df_resid)))
    return out, len(y)


def _long(ds, metric, effect):
    return _runs_long(ds, metric) if effect == "pretrain" else _deltas_long(ds, metric, effect)


def _fit(X: np.ndarray, y: np.ndarray):
    return sm.OLS(y, X).fit(cov_type=COV, use_t=True)


def pooled(ds: xr.Dataset, metric: str = "miou", effects=("intermediate", "pretrain")) -> pd.DataFrame:
    """pooled.csv rows for one metric (the model and its terms are in the module docstring)."""
    check_metric(ds, metric)
    notes = Notes()
    rows = []
    summ = bool(ds.attrs.get("summary") or is_summary(ds))
    for effect in effects:
        model = (POOLED_CELLS if summ else POOLED_SEEDS)[effect]
        d, arms = _long(ds, metric, effect)
        if d.empty:
            notes.add(f"{metric}: pooled {effect} model skipped: no paired differences")
            continue
        fit = fit_terms(d, effect)
        if fit is None:
            notes.add(f"{metric}: pooled {effect} model skipped: {len(d)} observations for its terms")
            continue
        tab, n_obs = fit
        cols, terms, _ = design(d, effect)
        parts = ["b0"] + [SYMBOL[t] for t in terms[1:]]
        if effect == "pretrain" and not summ:
            formula = ("at each F: y = a_F + [P > 0] (beta_F + c_F (log2 P - mean)) + seed effect; mean = average "
                       "of beta_F, log2_finetune = its slope in log2 F, log2_pretrain = average of c_F")
        elif effect == "pretrain":
            formula = "y = a_F + [P > 0] (" + " + ".join(parts) + ")"
        else:
            formula = "delta = " + " + ".join(parts + (["seed effect"] if not summ else []))
        formula += " + error"
        for r in tab.itertuples():
            rows.append(dict(metric=metric, effect=effect, term=r.term, estimate=float(r.estimate), se=float(r.se),
                             ci_lo=float(r.ci_lo), ci_hi=float(r.ci_hi), p=float(r.p), model=model, n_obs=n_obs,
                             df_resid=float(r.df_resid), unit=UNITS[r.term], arms=arms, formula=formula))
    return attach(pd.DataFrame(rows, columns=POOLED_COLS), notes)


def effect_by_f(ds: xr.Dataset, metric: str = "miou", effects=("intermediate", "pretrain")) -> pd.DataFrame:
    """effect_by_f.csv rows: the average difference at each F with a pooled-model interval."""
    check_metric(ds, metric)
    notes = Notes()
    rows = []
    summ = is_summary(ds)
    for effect in effects:
        model = (POOLED_CELLS if summ else POOLED_SEEDS)[effect]
        d, arms = _long(ds, metric, effect)
        if d.empty:
            continue
        fit = fit_terms(d, effect, per_f=True)
        if fit is None:
            notes.add(f"{metric}: {effect} effect per fine-tune size skipped: {len(d)} observations for its terms")
            continue
        tab, _ = fit
        for r in tab[tab.term.str.startswith("F=")].itertuples():
            f = int(r.term[2:])
            n_obs = int(((d.finetune == f) & ((d.pretrain > 0) if effect == "pretrain" else True)).sum())
            rows.append(dict(metric=metric, effect=effect, finetune=f, estimate=float(r.estimate), se=float(r.se),
                             ci_lo=float(r.ci_lo), ci_hi=float(r.ci_hi), n_obs=n_obs, df_resid=float(r.df_resid),
                             arms=arms, model=model))
    return attach(pd.DataFrame(rows, columns=BY_F_COLS), notes)
