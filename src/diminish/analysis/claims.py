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
    Returns must exist to diminish: H1_F, H1_P, DR_F and DR_P are not supported where the metric
    falls over the measured range (last minus first level, 95% interval below 0), and only
    inconclusive where that rise is not shown.
    H1_F, H1_P and H2_F are diminishing returns in the strong sense (each doubling buys less, or
    a ceiling below 100 %). The paper's own sense is weaker: each added image is worth less, i.e.
    the curve is concave on a linear axis. DR_F (per condition) and DR_P (per F, I; P = 0
    included) test it: the gain per added image over the first interval minus that over the last,
    (y2 - y1) / (x2 - x1) - (yk - y(k-1)) / (xk - x(k-1)), a linear contrast of cell means like
    H1 (positive = diminishing in the paper's sense). Units: points per 100 images for F and per
    100k images for P. A log-linear curve is diminishing in the paper's sense but not in the
    strong one.

Verdict rules (a 95% interval or the Akaike weights decide; each row of verdicts.csv carries its
rule in words in ``rule`` and its kind in ``kind``, so no reader has to re-derive a verdict):
    directional claims: supported if the interval excludes 0 on the claimed side, not supported
    if it excludes 0 on the other side, else inconclusive (the data cannot tell).
    H2_F: decided in :mod:`.plateaus` (one plateau per condition, shared with plateaus.csv).
    "every cell" claims: supported if every cell's 95% interval lies on the claimed side (an
    intersection-union test: each cell must pass at 0.05, no correction needed); not supported if
    some cell goes the other way with Holm-adjusted p < 0.05 (one cell among many: corrected);
    else inconclusive. The share of cells with the claimed sign is reported but does not decide.
    Claims about how an effect changes (PT_SHRINKS_WITH_F "the head start narrows",
    INT_SHRINKS_WITH_F "the penalty shrinks", PT_GROWS_WITH_P, INT_WORSE_WITH_P) check the sign
    of the effect itself, not only the slope (effect_by_f.csv gives the effect at each F):
    narrowing/shrinking: supported if the effect at the smallest F has the claimed sign (its
    interval excludes 0 on that side), the slope in log2 F has the opposite sign (interval), and
    the effect keeps its sign at every F (estimates); not supported if the slope's interval is on
    the claimed sign's side (it grows), or the effect's interval at the smallest F, at any F, or on
    average lies on the other side (there is no such effect, or it turns into its opposite); else
    inconclusive. Growing with P: supported if the average effect and the slope in log2 P both
    have the claimed sign (intervals); not supported if either interval is on the other side.

Each rule is one function of :mod:`.rules`, which returns the verdict with the quantity that decided it
(columns ``decided_by`` and ``decisive_*``). H2_P is "not testable", a verdict of its own. The paper's
headline claims are combined from these rows in :mod:`.headline`.
"""

# ruff: noqa: E741  (P, I, F: pre-training size, intermediate flag, fine-tune size, as in the study)
from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from . import rules
from .common import Notes, attach, check_metric, conditions, is_summary, n_seeds
from .contrasts import (  # noqa: F401  (contrast, gain_slope_weights re-exported)
    contrast,
    end_gain,
    gain_slope,
    gain_slope_weights,
    mean_gain,
    per_image_drop,
    pools,
)
from .plateaus import condition_plateau

VERDICT_COLS = ["claim_id", "claim", "statistic", "estimate", "ci_lo", "ci_hi", "p", "verdict", "metric", "detail",
                "kind", "rule", "n_seeds"] + rules.DECISION_COLS
RULE_DIR = {+1: "supported: 95% interval above 0; not supported: 95% interval below 0; otherwise inconclusive",
            -1: "supported: 95% interval below 0; not supported: 95% interval above 0; otherwise inconclusive"}
RULE_EVERY = ("supported: every cell's 95% interval lies on the claimed side of 0 (a claim about all cells needs "
              "each cell to pass, so no multiplicity correction); not supported: at least one cell goes the other way "
              "with Holm-adjusted p below 0.05 (a claim about any one cell among many needs the correction); "
              "otherwise inconclusive (the share of cells with the claimed sign does not decide)")
RULE_DIM = {+1: "supported: 95% interval above 0 and the metric rises over the measured range (95% interval of "
                "last minus first level above 0); not supported: interval below 0, or the metric falls over the range "
                "(no returns to diminish); otherwise inconclusive",
            -1: "supported: 95% interval below 0 and the metric rises over the measured range (95% interval of "
                "last minus first level above 0); not supported: interval above 0, or the metric falls over the range "
                "(no returns to diminish); otherwise inconclusive"}
PER_F, PER_P = 100.0, 100_000.0  # units of the per-image gains of DR_F and DR_P
RULE_H2P = "not testable: a plateau in P needs at least 5 pre-training sizes above 0"
SLOPE_UNIT = {"F": "points per doubling of F, per doubling of F", "P": "points per doubling of P, per doubling of P"}


def rule_narrows(sign: int) -> str:
    what = "gain" if sign > 0 else "loss"
    return (f"supported: a {what} at the smallest F (95% interval), a slope in log2 F of the opposite sign (95% "
            f"interval) and a {what} at every F (estimates); not supported: the slope's interval shows it growing, "
            f"or the interval at the smallest F, at any F or on average shows the opposite of a {what}; "
            "otherwise inconclusive")


def rule_grows(sign: int) -> str:
    what = "gain" if sign > 0 else "loss"
    return (f"supported: the average effect is a {what} and grows in size with log2 P (both 95% intervals); "
            f"not supported: either interval shows the opposite; otherwise inconclusive")


def _narrow_detail(by_f: pd.DataFrame, sign: int) -> str:
    if by_f.empty:
        return "no effect per fine-tune size"
    b = by_f.sort_values("finetune")
    first, last = b.iloc[0], b.iloc[-1]
    keeps = bool((sign * b.estimate.to_numpy(float) > 0).all())
    return (f"effect {first.estimate:+.3g} [{first.ci_lo:.3g}, {first.ci_hi:.3g}] at F={int(first.finetune)}, "
            f"{last.estimate:+.3g} [{last.ci_lo:.3g}, {last.ci_hi:.3g}] at F={int(last.finetune)}; "
            f"{'keeps its sign at every F' if keeps else 'changes sign along F'}")


def _every_cell(df: pd.DataFrame, sign: int) -> tuple[dict, rules.Decision, str]:
    """(statistics, decision, detail) of 'the difference has sign ``sign`` in every cell' (RULE_EVERY)."""
    d = df[np.isfinite(df.mean_delta.to_numpy(float))]
    names = [f"P = {int(r.pretrain)}, F = {int(r.finetune)}" for r in d.itertuples()]
    dec = rules.every_cell(d.mean_delta, d.ci_lo, d.ci_hi, d.p_holm, sign, names, d.n)
    if d.empty:
        return dict(estimate=np.nan, ci_lo=np.nan, ci_hi=np.nan, p=np.nan), dec, "no cell"
    est = d.mean_delta.to_numpy(float)
    sides = np.array([rules.side(lo, hi) for lo, hi in zip(d.ci_lo.to_numpy(float), d.ci_hi.to_numpy(float))])
    wrong = (np.sign(est) == -sign) & (d.p_holm.to_numpy(float) < 0.05)
    right = int((np.sign(est) == sign).sum())
    detail = (f"{right} of {len(d)} cells have the claimed sign, {int((sides == sign).sum())} with a 95% interval on "
              f"that side; {int(wrong.sum())} go the other way with Holm-adjusted p < 0.05")
    return dict(estimate=right / len(d), ci_lo=np.nan, ci_hi=np.nan, p=np.nan), dec, detail


def claims(ds: xr.Dataset, metric: str = "miou", fits: pd.DataFrame | None = None,
           paired_int: pd.DataFrame | None = None, paired_pt: pd.DataFrame | None = None,
           pooled_df: pd.DataFrame | None = None, by_f: pd.DataFrame | None = None, n_boot: int = 200,
           seed: int = 0, **fit_kw) -> pd.DataFrame:
    """verdicts.csv rows for one metric (computes the inputs it is not given)."""
    from .curves import fit_curves
    from .paired import paired_intermediate, paired_pretrain
    from .pooled import effect_by_f, pooled

    check_metric(ds, metric)
    notes = Notes()
    fits = fits if fits is not None else fit_curves(ds, metric, n_boot=n_boot, seed=seed, **fit_kw)
    paired_int = paired_int if paired_int is not None else paired_intermediate(ds, metric)
    paired_pt = paired_pt if paired_pt is not None else paired_pretrain(ds, metric)
    pooled_df = pooled_df if pooled_df is not None else pooled(ds, metric)
    by_f = by_f if by_f is not None else effect_by_f(ds, metric)
    ns = n_seeds(ds)
    rows = []

    def add(cid, kind, claim, statistic, res, dec: rules.Decision, rule, detail=""):
        rows.append(dict(claim_id=cid, claim=claim, statistic=statistic, estimate=res.get("estimate", np.nan),
                         ci_lo=res.get("ci_lo", np.nan), ci_hi=res.get("ci_hi", np.nan), p=res.get("p", np.nan),
                         verdict=dec.verdict, metric=metric, detail=detail, kind=kind, rule=rule, n_seeds=ns,
                         **dec.columns()))

    conds = conditions(ds, metric)
    pool = ("variance pooled over all cells (fewer than 3 seeds per cell); " if pools(ds) else "")
    if pool:
        notes.add(f"{metric}: fewer than 3 seeds per cell: gain and diminishing-returns intervals use the "
                  "within-cell variance pooled over all cells")
    if not is_summary(ds) and ds.sizes["seed"] < 2:
        notes.add(f"{metric}: a single seed: no cell variances, so every interval-based claim is inconclusive")
    # ---- fine-tuning helps / diminishing returns along F, per condition
    for P, I in conds:
        tag = f"P{P}_I{int(I)}"
        g = mean_gain(ds, metric, dict(pretrain=P, intermediate=I))
        if g is not None:
            add(f"FT_HELPS_{tag}", "FT_HELPS", f"more fine-tuning data raises {metric} (P={P}, I={I})",
                "mean gain per doubling of F over the measured range (points)", g,
                rules.directional(g, +1, "the mean gain per doubling of F", "points per doubling of F"),
                RULE_DIR[+1], pool.rstrip("; "))
        s = gain_slope(ds, metric, "finetune", dict(pretrain=P, intermediate=I))
        rf = end_gain(ds, metric, "finetune", dict(pretrain=P, intermediate=I))
        if s is None:
            notes.add(f"{metric}: H1_F at P={P}, I={I} not tested: fewer than 3 fine-tune sizes")
        else:
            add(f"H1_F_{tag}", "H1_F", f"gain per doubling of F falls with F (P={P}, I={I})",
                "slope of per-doubling gain vs log2 F (points per doubling, per doubling)", s,
                rules.diminishing(s, rf, -1, "the slope of the per-doubling gain", SLOPE_UNIT["F"]), RULE_DIM[-1],
                f"{pool}{s['levels']} sizes")
        d = per_image_drop(ds, metric, "finetune", dict(pretrain=P, intermediate=I), PER_F)
        if d is not None:
            add(f"DR_F_{tag}", "DR_F", f"each added fine-tuning image raises {metric} less at larger F (P={P}, I={I})",
                "gain per 100 added images over the first interval of F minus over the last (points)", d,
                rules.diminishing(d, rf, +1, "the drop in the gain per added image", "points per 100 images"),
                RULE_DIM[+1], f"{pool}{d['levels']} sizes")
        h2 = condition_plateau(fits, metric, P, I)
        detail = (f"{h2['status']}" + (f" ({h2['reason']})" if h2["reason"] else "")
                  + (f"; best saturating curve {h2['family']}" if h2["family"] else "")
                  + (f"; Akaike weight saturating={h2['w_saturating']:.3g}, log-linear={h2['w_log2']:.3g}"
                     if np.isfinite(h2["w_saturating"]) else ""))
        add(f"H2_F_{tag}", "H2_F", f"{metric} plateaus below 100% in F (P={P}, I={I})",
            "plateau (%), NaN when not identified",
            dict(estimate=h2["plateau"], ci_lo=h2["plateau_lo"], ci_hi=h2["plateau_hi"]), rules.plateau(h2),
            h2["rule"], detail)
    # ---- diminishing returns along P, per F
    n_pos = int((ds.pretrain.values > 0).sum())
    for I in (bool(i) for i in ds.intermediate.values):
        for F in ds.finetune.values:
            s = gain_slope(ds, metric, "pretrain", dict(intermediate=I, finetune=F))
            if s is None:
                continue
            rp = end_gain(ds, metric, "pretrain", dict(intermediate=I, finetune=F))
            add(f"H1_P_F{int(F)}_I{int(I)}", "H1_P", f"gain per doubling of P falls with P (F={int(F)}, I={I})",
                "slope of per-doubling gain vs log2 P over P > 0 (points per doubling, per doubling)", s,
                rules.diminishing(s, rp, -1, "the slope of the per-doubling gain", SLOPE_UNIT["P"]), RULE_DIM[-1],
                f"{pool}{s['levels']} pre-training sizes > 0")
    for I in (bool(i) for i in ds.intermediate.values):
        for F in ds.finetune.values:
            d = per_image_drop(ds, metric, "pretrain", dict(intermediate=I, finetune=F), PER_P)
            if d is None:
                continue
            rp = end_gain(ds, metric, "pretrain", dict(intermediate=I, finetune=F), include_zero=True)
            add(f"DR_P_F{int(F)}_I{int(I)}", "DR_P",
                f"each added pre-training image raises {metric} less at larger P (F={int(F)}, I={I})",
                "gain per 100k added pre-training images over the first interval of P minus over the last (points)",
                d, rules.diminishing(d, rp, +1, "the drop in the gain per added image", "points per 100k images"),
                RULE_DIM[+1],
                f"{pool}{d['levels']} pre-training sizes" + (" incl. P = 0" if d["has_zero"] else " (no P = 0 cells)"))
    if n_pos < 3:
        notes.add(f"{metric}: H1_P not tested: {n_pos} pre-training sizes > 0 (needs 3)")
    notes.add(f"{metric}: a plateau in pre-training size (H2_P) not testable: {n_pos} pre-training sizes above 0, "
              "and a 3-parameter saturating curve needs at least 5 to leave a residual degree of freedom")
    add("H2_P", "H2_P", f"{metric} plateaus in pre-training size", "plateau in P", {},
        rules.not_testable("the number of pre-training sizes above 0" if n_pos < 5 else
                           "a plateau fit in P, which the analysis does not make", n_pos), RULE_H2P,
        f"{n_pos} pre-training sizes > 0; a 3-parameter saturating curve needs >= 5 to leave residual "
        "degrees of freedom")
    # ---- the two effects: every cell, pooled mean, and how they change
    for effect, table, sign in (("pretrain", paired_pt, +1), ("intermediate", paired_int, -1)):
        P_, word = ("PT", "raises") if effect == "pretrain" else ("INT", "lowers")
        name = "pre-training" if effect == "pretrain" else "intermediate fine-tuning"
        cells = table[table.metric == metric] if len(table) else table
        if effect == "pretrain" and len(cells):
            cells = cells[~cells.intermediate.astype(bool)]
        if len(cells):
            res, v, detail = _every_cell(cells, sign)
            add(f"{P_}_EVERY_CELL", f"{P_}_EVERY_CELL", f"{name} {word} {metric} in every (P, F) cell"
                + (" (no intermediate)" if effect == "pretrain" else ""),
                f"share of cells with a {'positive' if sign > 0 else 'negative'} difference",
                res, v, RULE_EVERY, detail)
        pe = pooled_df[(pooled_df.metric == metric) & (pooled_df.effect == effect)] if len(pooled_df) else pooled_df
        terms = {r.term: r._asdict() for r in pe.itertuples()} if len(pe) else {}
        arms = str(pe.arms.iloc[0]) if len(pe) and "arms" in pe else ""
        mean = terms.get("mean")
        if mean is None:
            continue
        add(f"{P_}_HELPS" if effect == "pretrain" else "INT_HURTS", f"{P_}_HELPS" if effect == "pretrain" else "INT_HURTS",
            f"{name} {word} {metric} on average", "pooled model: average difference (points)", mean,
            rules.directional(mean, sign, "the average difference"), RULE_DIR[sign] + " (pooled model)",
            f"{mean['model']}; arms: {arms}")
        bf = by_f[(by_f.metric == metric) & (by_f.effect == effect)] if len(by_f) else by_f
        slope = terms.get("log2_finetune")
        if slope is not None:
            v, d = rules.narrows(mean, slope, bf, sign, "points per doubling of F"), _narrow_detail(bf, sign)
            cid = f"{P_}_SHRINKS_WITH_F"
            claim = ("the pre-training head start narrows as F grows" if effect == "pretrain"
                     else "the intermediate penalty shrinks as F grows")
            add(cid, cid, claim, "pooled model: change of the difference per doubling of F (points)", slope, v,
                rule_narrows(sign), d)
        slope = terms.get("log2_pretrain")
        if slope is not None:
            cid = "PT_GROWS_WITH_P" if effect == "pretrain" else "INT_WORSE_WITH_P"
            claim = ("the pre-training gain grows with pre-training size" if effect == "pretrain"
                     else "the intermediate penalty grows with pre-training size")
            add(cid, cid, claim, "pooled model: change of the difference per doubling of P (points)", slope,
                rules.grows(mean, slope, sign, "points per doubling of P"), rule_grows(sign),
                f"pre-trained models only; arms: {arms}")
    out = pd.DataFrame(rows, columns=VERDICT_COLS)
    return attach(out, notes.items + fits.attrs.get("notes", []) + paired_int.attrs.get("notes", [])
                  + paired_pt.attrs.get("notes", []) + pooled_df.attrs.get("notes", []))
