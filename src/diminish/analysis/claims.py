"""The study's claims as tested hypotheses: verdicts.csv and headline.csv.

Diminishing returns
    H1_F (per condition P, I): the gain per doubling of F falls as F grows. Statistic: the
    least-squares slope of the per-doubling gains between neighbouring sizes, (y_{i+1} - y_i) /
    log2(F_{i+1} / F_i), against the midpoints in log2 F. It is a linear contrast of the cell means,
    so its SE follows from the cells' variances (seed SD^2 / n, or the published SD^2 / n), with a
    Satterthwaite df; the interval is a 95% t interval. Units: percentage points per doubling, per
    doubling. Negative = diminishing.
    H1_P (per F, I): the same along pre-training size, over the sizes P > 0 (needs >= 3 of them).
    H2_F (per condition): a plateau below 100 % is identified. Uses fits.csv: the best saturating
    family (lowest AICc; by leave-largest-out error where AICc is undefined), its plateau and
    bootstrap interval, and the Akaike weights of the saturating families against the log-linear
    null ``log2``.
    H2_P: a plateau in pre-training size; with fewer than 5 sizes P > 0 (the paper has 3) no
    3-parameter curve leaves any residual degrees of freedom, so it is reported as not testable.

Verdict rules (a 95% interval or the Akaike weights decide):
    directional claims: supported if the interval excludes 0 on the claimed side, not supported
    if it excludes 0 on the other side, else inconclusive (the data cannot tell).
    H2_F: supported if the best saturating plateau is identified, its upper limit is below 100 and
    the saturating families hold >= 0.9 of the Akaike weight; not supported if ``log2`` holds
    >= 0.9 (a curve without any plateau describes the data decisively better); else inconclusive.
    "every cell" claims: supported if every cell's difference has the claimed sign with Holm p <
    0.05; not supported if any cell's interval lies entirely on the other side; else inconclusive.

The paper's three headline claims (headline.csv) combine these (rows without intermediate
fine-tuning): HL1 more pre-training and more fine-tuning data help (FT_HELPS_*, PT_EVERY_CELL,
PT_HELPS), HL2 both show diminishing returns, read as the paper does, towards a plateau (H1_F_*,
H1_P_*, H2_F_*), HL3 intermediate fine-tuning hurts (INT_HURTS). A headline holds ("yes") when every
component is supported, fails ("no") when any component is not supported, else "inconclusive".
"""

# ruff: noqa: E741  (P, I, F: pre-training size, intermediate flag, fine-tune size, as in the study)
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr
from scipy import stats

from .common import Notes, attach, cell_stats, check_metric, conditions, is_summary
from .curves import SATURATING

W_DECISIVE = 0.9
VERDICT_COLS = ["claim_id", "claim", "statistic", "estimate", "ci_lo", "ci_hi", "p", "verdict", "metric", "detail"]


def _directional(ci_lo, ci_hi, sign: int) -> str:
    if not (np.isfinite(ci_lo) and np.isfinite(ci_hi)):
        return "inconclusive"
    if (sign > 0 and ci_lo > 0) or (sign < 0 and ci_hi < 0):
        return "supported"
    if (sign > 0 and ci_hi < 0) or (sign < 0 and ci_lo > 0):
        return "not supported"
    return "inconclusive"


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


def _cells(ds, metric, axis, fixed):
    """Levels along ``axis`` with data, with (mean, SD^2/n, n)."""
    out = []
    for lv in ds[axis].values:
        if axis == "pretrain" and lv <= 0:
            continue
        sel = dict(fixed, **{axis: lv})
        m, sd, n = cell_stats(ds, metric, sel["pretrain"], sel["intermediate"], sel["finetune"])
        if n > 0:
            out.append((float(lv), m, sd**2 / n if n > 1 and np.isfinite(sd) else np.nan, n))
    return out


def gain_slope(ds, metric, axis, fixed) -> dict | None:
    cells = _cells(ds, metric, axis, fixed)
    if len(cells) < 3:
        return None
    lv, m, v, n = map(np.array, zip(*cells))
    est, se, df = contrast(m, v, n, gain_slope_weights(lv))
    out = dict(estimate=est, ci_lo=np.nan, ci_hi=np.nan, p=np.nan, levels=len(lv))
    if np.isfinite(se) and se > 0 and np.isfinite(df) and df > 0:
        q = stats.t.ppf(0.975, df)
        out.update(ci_lo=est - q * se, ci_hi=est + q * se, p=float(2 * stats.t.sf(abs(est / se), df)))
    return out


def mean_gain(ds, metric, fixed) -> dict | None:
    """Average gain per doubling of F across the measured range: (y_last - y_first) / log2 ratio."""
    cells = _cells(ds, metric, "finetune", fixed)
    if len(cells) < 2:
        return None
    lv, m, v, n = map(np.array, zip(*cells))
    c = np.zeros(len(lv))
    span = np.log2(lv[-1] / lv[0])
    c[-1], c[0] = 1 / span, -1 / span
    est, se, df = contrast(m, v, n, c)
    out = dict(estimate=est, ci_lo=np.nan, ci_hi=np.nan, p=np.nan)
    if np.isfinite(se) and se > 0 and np.isfinite(df):
        q = stats.t.ppf(0.975, df)
        out.update(ci_lo=est - q * se, ci_hi=est + q * se, p=float(2 * stats.t.sf(abs(est / se), df)))
    return out


def _h2(fits: pd.DataFrame, metric, P, I) -> dict:
    sub = fits[(fits.metric == metric) & (fits.pretrain == P) & (fits.intermediate == I) & (fits.status == "ok")]
    sat = sub[sub.family.isin(SATURATING)]
    if sat.empty:
        return dict(statistic="plateau (no saturating fit)", estimate=np.nan, ci_lo=np.nan, ci_hi=np.nan,
                    p=np.nan, verdict="inconclusive", detail="no saturating family could be fitted")
    aic_ok = np.isfinite(sub.aicc.to_numpy(float))
    if np.isfinite(sat.aicc.to_numpy(float)).any():
        best = sat.loc[sat.aicc.astype(float).idxmin()]
    else:
        best = sat.loc[sat.loo_error.abs().astype(float).idxmin()] if sat.loo_error.notna().any() else sat.iloc[0]
    w_sat = float(sat.akaike_weight.fillna(0).sum())
    w_log = float(sub[sub.family == "log2"].akaike_weight.fillna(0).sum())
    ident = bool(best.identified)
    detail = (f"best saturating family {best.family}; identified={ident}"
              + (f" ({best.reason})" if isinstance(best.reason, str) and best.reason else "")
              + f"; Akaike weight saturating={w_sat:.3g}, log2={w_log:.3g}")
    if not aic_ok.any():
        verdict = "inconclusive"
        detail += "; AICc undefined (too few points)"
    elif w_log >= W_DECISIVE:
        verdict = "not supported"
    elif ident and best.plateau_hi < 100 and w_sat >= W_DECISIVE:
        verdict = "supported"
    else:
        verdict = "inconclusive"
    return dict(statistic=f"plateau of {best.family} (%)", estimate=float(best.plateau_est),
                ci_lo=float(best.plateau_lo), ci_hi=float(best.plateau_hi), p=np.nan, verdict=verdict,
                detail=detail)


def _every_cell(df: pd.DataFrame, sign: int) -> tuple[dict, str]:
    d = df[np.isfinite(df.mean_delta.to_numpy(float))]
    if d.empty:
        return dict(estimate=np.nan, ci_lo=np.nan, ci_hi=np.nan, p=np.nan), "inconclusive"
    right = np.sign(d.mean_delta.to_numpy(float)) == sign
    sig = d.p_holm.to_numpy(float) < 0.05
    wrong_sure = (d.ci_lo > 0) if sign < 0 else (d.ci_hi < 0)
    frac = float(right.mean())
    if right.all() and sig.all():
        v = "supported"
    elif bool(wrong_sure.any()):
        v = "not supported"
    else:
        v = "inconclusive"
    ph = d.p_holm.to_numpy(float)
    return dict(estimate=frac, ci_lo=np.nan, ci_hi=np.nan, p=float(np.nanmax(ph)) if np.isfinite(ph).any() else np.nan), v


def claims(ds: xr.Dataset, metric: str = "miou", fits: pd.DataFrame | None = None,
           paired_int: pd.DataFrame | None = None, paired_pt: pd.DataFrame | None = None,
           pooled_df: pd.DataFrame | None = None, n_boot: int = 200, seed: int = 0, **fit_kw) -> pd.DataFrame:
    """verdicts.csv rows for one metric (computes the inputs it is not given)."""
    from .curves import fit_curves
    from .paired import paired_intermediate, paired_pretrain, pooled

    check_metric(ds, metric)
    notes = Notes()
    fits = fits if fits is not None else fit_curves(ds, metric, n_boot=n_boot, seed=seed, **fit_kw)
    paired_int = paired_int if paired_int is not None else paired_intermediate(ds, metric)
    paired_pt = paired_pt if paired_pt is not None else paired_pretrain(ds, metric)
    pooled_df = pooled_df if pooled_df is not None else pooled(ds, metric)
    rows = []

    def add(cid, claim, statistic, res, verdict, detail=""):
        rows.append(dict(claim_id=cid, claim=claim, statistic=statistic, estimate=res.get("estimate", np.nan),
                         ci_lo=res.get("ci_lo", np.nan), ci_hi=res.get("ci_hi", np.nan), p=res.get("p", np.nan),
                         verdict=verdict, metric=metric, detail=detail))

    conds = conditions(ds, metric)
    if not is_summary(ds) and ds.sizes["seed"] < 2:
        notes.add(f"{metric}: a single seed: no cell variances, so every interval-based claim is inconclusive")
    # ---- fine-tuning helps / diminishing returns along F, per condition
    for P, I in conds:
        tag = f"P{P}_I{int(I)}"
        g = mean_gain(ds, metric, dict(pretrain=P, intermediate=I))
        if g is not None:
            add(f"FT_HELPS_{tag}", f"more fine-tuning data raises {metric} (P={P}, I={I})",
                "mean gain per doubling of F over the measured range (pp)", g, _directional(g["ci_lo"], g["ci_hi"], +1))
        s = gain_slope(ds, metric, "finetune", dict(pretrain=P, intermediate=I))
        if s is None:
            notes.add(f"{metric}: H1_F at P={P}, I={I} not tested: fewer than 3 fine-tune sizes")
        else:
            add(f"H1_F_{tag}", f"gain per doubling of F falls with F (P={P}, I={I})",
                "slope of per-doubling gain vs log2 F (pp/doubling^2)", s, _directional(s["ci_lo"], s["ci_hi"], -1),
                f"{s['levels']} sizes")
        h2 = _h2(fits, metric, P, I)
        add(f"H2_F_{tag}", f"{metric} plateaus below 100% in F (P={P}, I={I})", h2.pop("statistic"), h2,
            h2.pop("verdict"), h2.pop("detail"))
    # ---- diminishing returns along P, per F
    n_pos = int((ds.pretrain.values > 0).sum())
    for I in (bool(i) for i in ds.intermediate.values):
        for F in ds.finetune.values:
            s = gain_slope(ds, metric, "pretrain", dict(intermediate=I, finetune=F))
            if s is None:
                continue
            add(f"H1_P_F{int(F)}_I{int(I)}", f"gain per doubling of P falls with P (F={int(F)}, I={I})",
                "slope of per-doubling gain vs log2 P over P > 0 (pp/doubling^2)", s,
                _directional(s["ci_lo"], s["ci_hi"], -1), f"{s['levels']} pre-training sizes > 0")
    if n_pos < 3:
        notes.add(f"{metric}: H1_P not tested: {n_pos} pre-training sizes > 0 (needs 3)")
    add("H2_P", f"{metric} plateaus in pre-training size", "plateau in P", {}, "inconclusive",
        f"not testable: {n_pos} pre-training sizes > 0; a 3-parameter saturating curve needs >= 5 to leave "
        "residual degrees of freedom")
    # ---- pre-training effect
    pt0 = paired_pt[(paired_pt.metric == metric) & (~paired_pt.intermediate.astype(bool))] if len(paired_pt) else paired_pt
    if len(pt0):
        res, v = _every_cell(pt0, +1)
        add("PT_EVERY_CELL", f"pre-training raises {metric} in every (P, F) cell (no intermediate)",
            "fraction of cells with a positive difference (p = largest Holm p)", res, v)
    for term, cid, claim, sign in (
        ("mean", "PT_HELPS", "pre-training raises {m} on average", +1),
        ("log2_finetune", "PT_SHRINKS_WITH_F", "the pre-training gain shrinks as F grows", -1),
        ("pretrain_100k", "PT_GROWS_WITH_P", "the pre-training gain grows with pre-training size", +1),
    ):
        r = pooled_df[(pooled_df.metric == metric) & (pooled_df.effect == "pretrain") & (pooled_df.term == term)]
        if len(r):
            r = r.iloc[0]
            add(cid, claim.format(m=metric), f"pooled model term '{term}' (pp)", r.to_dict(),
                _directional(r.ci_lo, r.ci_hi, sign), r.model)
    # ---- intermediate effect
    it = paired_int[paired_int.metric == metric] if len(paired_int) else paired_int
    if len(it):
        res, v = _every_cell(it, -1)
        add("INT_EVERY_CELL", f"intermediate fine-tuning lowers {metric} in every (P, F) cell",
            "fraction of cells with a negative difference (p = largest Holm p)", res, v)
    for term, cid, claim, sign in (
        ("mean", "INT_HURTS", "intermediate fine-tuning lowers {m} on average", -1),
        ("log2_finetune", "INT_SHRINKS_WITH_F", "the intermediate penalty shrinks as F grows", +1),
        ("pretrain_100k", "INT_WORSE_WITH_P", "the intermediate penalty grows with pre-training size", -1),
    ):
        r = pooled_df[(pooled_df.metric == metric) & (pooled_df.effect == "intermediate") & (pooled_df.term == term)]
        if len(r):
            r = r.iloc[0]
            add(cid, claim.format(m=metric), f"pooled model term '{term}' (pp)", r.to_dict(),
                _directional(r.ci_lo, r.ci_hi, sign), r.model)
    out = pd.DataFrame(rows, columns=VERDICT_COLS)
    return attach(out, notes.items + fits.attrs.get("notes", []) + paired_int.attrs.get("notes", [])
                  + paired_pt.attrs.get("notes", []) + pooled_df.attrs.get("notes", []))


HEADLINES = {
    "HL1": "more pre-training and more fine-tuning data improve the downstream metric",
    "HL2": "both pre-training and fine-tuning show diminishing returns",
    "HL3": "intermediate fine-tuning on Intel classification lowers the downstream metric",
}


def _combine(*groups) -> str:
    """yes if every component of every group is supported (and no group is empty), no if any is
    not supported, else inconclusive."""
    v = [x for g in groups for x in g]
    if any(x == "not supported" for x in v):
        return "no"
    if v and all(len(list(g)) for g in groups) and all(x == "supported" for x in v):
        return "yes"
    return "inconclusive"


def headline(verdicts: pd.DataFrame) -> pd.DataFrame:
    """headline.csv: whether each of the paper's three headline claims holds (yes/no/inconclusive)."""
    v = verdicts
    rows = []
    for m in dict.fromkeys(v.metric):
        vm = v[v.metric == m]

        def sel(prefix, only_i0=False, vm=vm):
            keep = vm.claim_id.str.startswith(prefix)
            if only_i0:
                keep &= ~vm.claim_id.str.endswith("_I1")
            return vm[keep]

        def count(df):
            return ", ".join(f"{k}: {n}" for k, n in df.verdict.value_counts().sort_index().items()) or "none"

        ft, pt = sel("FT_HELPS", True), pd.concat([sel("PT_EVERY_CELL"), sel("PT_HELPS")])
        h1f, h1p, h2 = sel("H1_F", True), sel("H1_P", True), sel("H2_F", True)
        hl3 = sel("INT_HURTS")
        rows.append(dict(claim_id="HL1", claim=HEADLINES["HL1"], holds_in_ours=_combine(ft.verdict, pt.verdict),
                         detail=f"{m}; fine-tuning gains (no intermediate): {count(ft)}; pre-training gains: "
                                f"{count(pt)}", metric=m))
        rows.append(dict(claim_id="HL2", claim=HEADLINES["HL2"],
                         holds_in_ours=_combine(pd.concat([h1f, h2]).verdict, h1p.verdict),
                         detail=f"{m}; falling per-doubling gains in F (no intermediate): {count(h1f)}; "
                                f"plateau in F identified: {count(h2)}; falling per-doubling gains in P: {count(h1p)}",
                         metric=m))
        rows.append(dict(claim_id="HL3", claim=HEADLINES["HL3"], holds_in_ours=_combine(hl3.verdict),
                         detail=f"{m}; pooled intermediate effect: {count(hl3)}; every cell: "
                                f"{count(sel('INT_EVERY_CELL'))}", metric=m))
    return pd.DataFrame(rows, columns=["claim_id", "claim", "holds_in_ours", "detail", "metric"])
