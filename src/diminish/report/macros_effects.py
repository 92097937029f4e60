"""numbers.tex macros about the measured effects and the fitted learning curves.

Pre-training and the intermediate stage: one effect sentence each (cell counts, the pooled
model's mean difference and interval), the Holm-significant cells, how the difference moves with
F and P, and why the pooled mean may differ from the plain mean of the cells. Curves: the plateau
of each condition (one value or "not identified", shared with the tables), the most frequent best
family, and the effective-transfer exponent. (Diminishing returns in both senses are claims of the
analysis, worded in :mod:`.macros_claims`.) Every sentence is built by a
:mod:`.statements` function from the numbers it cites.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .inputs import Inputs, plateau_of
from .latex import Tex, integer, isnan
from .macros import (
    ALPHA,
    METRIC_LABEL,
    Numbers,
    condition_label,
    count_phrase,
    family_name,
    rows_where,
)
from .statements import (
    effect_sentence,
    plateau_phrase,
    pooled_vs_cells,
    range_phrase,
    side,
    significant_cells,
    trend_sentence,
)
from .statements_cells import one_cell_note
from .statements_transfer import extrapolation_sentence, sign_sentence
from .summaries import spread_sentence


def pooled_term(pooled: pd.DataFrame, metric: str, effect: str, term: str) -> pd.Series | None:
    rows = pooled[(pooled["metric"] == metric) & (pooled["effect"] == effect) & (pooled["term"].astype(str) == term)]
    return rows.iloc[0] if len(rows) else None


def _effect(n: Numbers, inp: Inputs, tag: str, subject: str, df: pd.DataFrame, effect: str) -> None:
    """The macros <tag>Effect, <tag>Significance, <tag>PooledNote, <tag>TrendF, <tag>TrendP."""
    label = METRIC_LABEL[inp.metric]
    d = df["mean_delta"].to_numpy(float)
    ok = ~np.isnan(d)
    tot, pos, neg = int(ok.sum()), int((d > 0).sum()), int((d < 0).sum())
    sig = df["p_holm"].to_numpy(float) < ALPHA
    up, down = int((sig & (d > 0)).sum()), int((sig & (d < 0)).sum())
    pooled = inp.analysis.pooled
    mean = pooled_term(pooled, inp.metric, effect, "mean")
    seeds = len(n.flags["seeds"])
    if mean is not None:
        est, lo, hi, src = mean["estimate"], mean["ci_lo"], mean["ci_hi"], "pooled model"
    else:  # no pooled model: the plain mean of the cells, without an interval
        est, lo, hi, src = (float(np.nanmean(d)) if tot else np.nan), np.nan, np.nan, "mean of the cells"
    n.set(f"{tag}Effect", effect_sentence(subject, label, pos, neg, tot, est, lo, hi, seeds=seeds, source=src))
    fam = int(df["holm_m"].max()) if "holm_m" in df.columns and tot else None
    n.set(f"{tag}Significance", significant_cells(up, down, tot, noun=f"the difference {subject} makes", family=fam))
    n.set(f"{tag}Cells", integer(tot))
    n.flags[f"{tag.lower()}_side"] = side(lo, hi)
    n.flags[f"{tag.lower()}_cells"] = tot
    arms = ("with and without the intermediate stage" if effect == "pretrain" and df["intermediate"].nunique() > 1
            else "every pre-training size" if effect == "intermediate" else "the cells without the intermediate stage")
    if mean is not None and isinstance(mean.get("arms"), str) and mean["arms"].strip():
        arms = mean["arms"].strip()
    has_n = mean is not None and "n_obs" in mean and not isnan(mean["n_obs"])
    n_obs = int(mean["n_obs"]) if has_n else int(df["n"].sum())
    runs = mean is not None and str(mean.get("formula", "")).startswith("at each F: y")
    n.set(f"{tag}PooledNote", pooled_vs_cells(est, float(np.nanmean(d)) if tot else np.nan, tot, n_obs, arms, runs)
          if mean is not None else Tex(""))
    # along F: ends averaged over the other factors, slope from the pooled model
    F = sorted(df["finetune"].unique())
    slope = pooled_term(pooled, inp.metric, effect, "log2_finetune")
    if len(F) >= 2:
        at = df.groupby("finetune")["mean_delta"].mean()
        by_f = inp.analysis.tables.get("effect_by_f")
        if by_f is not None:
            rows = by_f[(by_f["metric"] == inp.metric) & (by_f["effect"] == effect)]
            if len(rows):  # the pooled model's average at each F (same cells as its slope)
                at = rows.set_index("finetune")["estimate"]
                F = sorted(at.index)
        s = (slope["estimate"], slope["ci_lo"], slope["ci_hi"]) if slope is not None else (np.nan,) * 3
        notes = "".join(str(one_cell_note(f"at F = {int(f)}", {f"P = {int(r.pretrain)}": r.mean_delta
                                                               for r in df[df["finetune"] == f].itertuples()}))
                        for f in (F[0], F[-1]))
        n.set(f"{tag}TrendF", trend_sentence(f"averaged over pre-training sizes, the difference {subject} makes",
                                             at[F[0]], at[F[-1]], int(F[0]), int(F[-1]), *s,
                                             short=f"the difference {subject} makes", note=notes))
    else:
        n.set(f"{tag}TrendF", Tex(""))
    # along P (over the pre-training sizes the effect is measured at)
    P = sorted(df["pretrain"].unique())
    if len(P) < 2:
        n.set(f"{tag}TrendP", Tex(""))
    else:
        at = df.groupby("pretrain")["mean_delta"].mean()
        per_doubling = pooled_term(pooled, inp.metric, effect, "log2_pretrain")
        linear = pooled_term(pooled, inp.metric, effect, "pretrain_100k")
        if per_doubling is not None:
            s, per = (per_doubling["estimate"], per_doubling["ci_lo"], per_doubling["ci_hi"]), ""
        elif linear is not None:  # a slope per 100k images, restated over the measured span of P
            span = (P[-1] - P[0]) / 1e5
            s = (linear["estimate"] * span, linear["ci_lo"] * span, linear["ci_hi"] * span)
            per = f"From $P={integer(P[0])}$ to $P={integer(P[-1])}$ (a straight line in $P$)"
        else:
            s, per = (np.nan,) * 3, ""
        n.set(f"{tag}TrendP", trend_sentence(f"averaged over fine-tune sizes, the difference {subject} makes",
                                             at[P[0]], at[P[-1]], int(P[0]), int(P[-1]), *s, axis="P", per=per,
                                             short=f"the difference {subject} makes"))


def add_pretrain_effect(n: Numbers, inp: Inputs) -> None:
    df = rows_where(inp.analysis.paired_pretrain, metric=inp.metric)
    if pretrain_arm_only(inp):
        df = df[df["intermediate"] == False]  # noqa: E712 - the cells the pooled model uses
    _effect(n, inp, "Pretrain", "pre-training", df, "pretrain")
    n.flags["has_pooled_pretrain"] = pooled_term(inp.analysis.pooled, inp.metric, "pretrain", "mean") is not None


def pretrain_arm_only(inp: Inputs) -> bool:
    """Whether the pooled pre-training model uses only the cells without the intermediate stage (the
    analysis records no 'intermediate' term then), so the sentences and Table paired-pretrain do too."""
    pooled = inp.analysis.pooled
    terms = set(pooled[(pooled["effect"] == "pretrain") & (pooled["metric"] == inp.metric)]["term"].astype(str))
    return "intermediate" not in terms and bool((inp.analysis.paired_pretrain["intermediate"] == False).any())  # noqa: E712


def add_intermediate_effect(n: Numbers, inp: Inputs) -> None:
    df = rows_where(inp.analysis.paired_intermediate, metric=inp.metric)
    _effect(n, inp, "Intermediate", "the intermediate stage", df, "intermediate")
    pooled_mean = pooled_term(inp.analysis.pooled, inp.metric, "intermediate", "mean")
    n.flags["has_pooled_intermediate"] = pooled_mean is not None
    cells = [(d, f"{condition_label(p)}, {int(f)} fine-tuning images")
             for d, p, f in zip(df["mean_delta"].astype(float), df["pretrain"], df["finetune"])]
    n.set("IntermediateRange", spread_sentence("of the difference", cells))  # '' when no cell has a difference


def plateau_text(p: dict | None) -> Tex:
    """One condition's plateau as printed everywhere: '62.44\\% [55.02, 82.76]' or 'not identified'."""
    if p is None:
        return Tex("not identified")
    return plateau_phrase(p["plateau"], p["plateau_lo"], p["plateau_hi"], p["identified"])


def add_fits(n: Numbers, inp: Inputs) -> None:
    fits = rows_where(inp.analysis.fits, metric=inp.metric)
    conds = sorted({(int(p), bool(i)) for p, i in zip(fits["pretrain"], fits["intermediate"])})
    plateaus = {c: plateau_of(inp, *c) for c in conds}
    ident = sum(bool(p and p["identified"]) for p in plateaus.values())
    n.set("FitConditions", integer(len(conds)))
    n.set("FitIdentifiedIn", count_phrase(ident, len(conds), "conditions"))
    n.flags.update(fit_conditions=len(conds), fit_identified=ident)
    best = fits[fits["best"] == True]  # noqa: E712
    fam = best["family"].astype(str).value_counts()
    if len(fam):
        top = sorted(fam.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        n.set("FitModalFamily", family_name(top[0]))
        n.set("FitModalIn", count_phrase(int(top[1]), len(conds), "conditions"))
    else:
        n.set("FitModalFamily", "none")
        n.set("FitModalIn", count_phrase(0, len(conds), "conditions"))
    n.set("FitLogBestIn", count_phrase(int(fam.get("log2", 0)), len(conds), "conditions"))
    P = n.flags["P"]
    i0 = False if False in n.flags["I"] else n.flags["I"][0]
    for tag, p in (("Base", 0 if 0 in P else None), ("Top", max(P))):
        pl = plateaus.get((p, i0)) if p is not None else None
        n.set(f"Plateau{tag}", plateau_text(pl))
        n.set(f"Plateau{tag}Family", f" ({family_name(pl['family'])} family)" if pl and pl["identified"] else "")


def add_transfer(n: Numbers, inp: Inputs) -> None:
    tf = rows_where(inp.analysis.transfer_fit, metric=inp.metric)
    tr = rows_where(inp.analysis.transfer, metric=inp.metric)
    n.flags["has_transfer"] = len(tr) > 0
    d = tr["d_t"].to_numpy(float) if len(tr) else np.array([])
    n.set("TransferPoints", integer(int((~np.isnan(d)).sum())))
    n.set("TransferNegative", integer(int((d <= 0).sum())))
    n.set("TransferExtrapolated", integer(int(tr["extrapolated"].astype(bool).sum()) if len(tr) else 0))
    fin = tr[np.isfinite(d)] if len(tr) else tr
    side_of = fin["extrapolated_side"].fillna("").astype(str) if "extrapolated_side" in fin.columns else None
    if side_of is not None:
        n.set("TransferExtrapolation", extrapolation_sentence(int((side_of == "below").sum()),
                                                              int((side_of == "above").sum())))
    else:  # an older analysis folder: no side recorded
        n.set("TransferExtrapolation", Tex(f"{integer(int(fin['extrapolated'].astype(bool).sum()))} need the "
                                           "from-scratch curve outside its measured range and are extrapolations."))
    cases = []
    if "sign_disagrees" in fin.columns:
        for r in fin[fin["sign_disagrees"].astype(str).str.lower() == "true"].itertuples():
            cases.append((condition_label(r.pretrain, bool(r.intermediate)), int(r.finetune), float(r.measured_diff),
                          float(r.d_t)))
    n.set("TransferSign", sign_sentence(len(fin), cases) if "sign_disagrees" in fin.columns else Tex(""))
    n.flags["transfer_sign_cases"] = len(cases)
    # a power law has two parameters: with fewer than three points it is not a fit
    fitted = tf.dropna(subset=["alpha"])
    fitted = fitted[fitted["n_points"] >= 3]
    n.flags["has_transfer_fit"] = len(fitted) > 0
    n.set("TransferFitted", integer(len(fitted)))
    n.set("TransferFittedIn", count_phrase(len(fitted), len(tf), "conditions"))
    n.set("TransferAlphaRange", range_phrase(list(fitted["alpha"]), "exponent"))
