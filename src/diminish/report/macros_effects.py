"""numbers.tex macros about the measured effects and the fitted learning curves.

Pre-training and the intermediate stage: how many paired cells move each way, how many are
significant after Holm correction, the largest and smallest intermediate effect, and the pooled
model's average effect with its interval; the direction words come from the same counts. Curves:
how many conditions have an identified plateau, which family fits best most often, plateaus,
gains per doubling and F95 for the no-pre-training and largest-pre-training conditions, and the
effective-transfer exponent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .inputs import Inputs, best_fit
from .latex import Tex, integer, interval, isnan, num, pvalue, sci, size_label
from .macros import ALPHA, METRIC_LABEL, Numbers, count_phrase, rows_where


def add_pretrain_effect(n: Numbers, inp: Inputs) -> None:
    df = rows_where(inp.analysis.paired_pretrain, metric=inp.metric)
    if False in n.flags["I"]:
        df = df[df["intermediate"] == False]  # noqa: E712 - pandas comparison
    tot = len(df)
    pos = int((df["mean_delta"] > 0).sum())
    sig = int(((df["mean_delta"] > 0) & (df["p_holm"] < ALPHA)).sum())
    n.set("PretrainCells", integer(tot))
    n.set("PretrainPositive", integer(pos))
    n.set("PretrainSignificant", integer(sig))
    label = METRIC_LABEL[inp.metric]
    if tot and pos * 2 < tot:
        n.set("PretrainDirection", f"is lower with pre-training than without {count_phrase(tot - pos, tot)}")
    else:
        n.set("PretrainDirection", f"is higher with pre-training than without {count_phrase(pos, tot)}")
    if tot and pos * 2 >= tot:
        n.set("PretrainVerb", f"raises {label} {count_phrase(pos, tot)}")
    else:
        n.set("PretrainVerb", f"lowers {label} {count_phrase(tot - pos, tot)}")
    n.set("PretrainSignificance", f"the difference is significant after Holm correction "
                                  f"{count_phrase(sig, tot)}")
    n.flags.update(pretrain_all_positive=tot > 0 and pos == tot, pretrain_none_positive=pos == 0,
                   pretrain_cells=tot, pretrain_majority_positive=tot > 0 and pos * 2 >= tot)
    pooled = _pooled_main(rows_where(inp.analysis.pooled, metric=inp.metric), "pretrain")
    n.flags["has_pooled_pretrain"] = pooled is not None
    if pooled is not None:
        n.set("PooledPretrain", num(pooled["estimate"], sign=True))
        n.set("PooledPretrainCI", interval(pooled["ci_lo"], pooled["ci_hi"]))


def _pooled_main(df: pd.DataFrame, effect: str) -> pd.Series | None:
    """The average-effect row of the pooled model (term 'mean' when present, else the first main term)."""
    rows = df[df["effect"] == effect]
    mean = rows[rows["term"].astype(str).isin(["mean", effect, "Intercept"])]
    if len(mean):
        return mean.iloc[0]
    rows = rows[~rows["term"].astype(str).str.contains(":")]
    return rows.iloc[0] if len(rows) else None


def add_intermediate_effect(n: Numbers, inp: Inputs) -> None:
    df = rows_where(inp.analysis.paired_intermediate, metric=inp.metric)
    tot = len(df)
    neg = int((df["mean_delta"] < 0).sum())
    sig = int(((df["mean_delta"] < 0) & (df["p_holm"] < ALPHA)).sum())
    sigpos = int(((df["mean_delta"] > 0) & (df["p_holm"] < ALPHA)).sum())
    n.set("IntermediateCells", integer(tot))
    n.set("IntermediateNegative", integer(neg))
    n.set("IntermediateSignificant", integer(sig))
    n.set("IntermediateSignificantPositive", integer(sigpos))
    if tot and neg * 2 >= tot:
        n.set("IntermediateDirection", f"lowers {METRIC_LABEL[inp.metric]} {count_phrase(neg, tot)}")
    else:
        n.set("IntermediateDirection", f"raises {METRIC_LABEL[inp.metric]} {count_phrase(tot - neg, tot)}")
    n.set("IntermediateSignificance", f"the drop is significant after Holm correction {count_phrase(sig, tot)}")
    if tot:
        worst = df.loc[df["mean_delta"].idxmin()]
        least = df.loc[df["mean_delta"].idxmax()]
        n.set("IntermediateWorst", num(worst["mean_delta"], sign=True))
        n.set("IntermediateWorstPretrain", size_label(worst["pretrain"]))
        n.set("IntermediateWorstFinetune", integer(worst["finetune"]))
        n.set("IntermediateLeast", num(least["mean_delta"], sign=True))
        n.set("IntermediateLeastPretrain", size_label(least["pretrain"]))
        n.set("IntermediateLeastFinetune", integer(least["finetune"]))
        # does the effect shrink with more fine-tuning data? compare mean |delta| at min vs max F
        fmin, fmax = df["finetune"].min(), df["finetune"].max()
        at_min = df[df["finetune"] == fmin]["mean_delta"].mean()
        at_max = df[df["finetune"] == fmax]["mean_delta"].mean()
        n.set("IntermediateAtMinF", num(at_min, sign=True))
        n.set("IntermediateAtMaxF", num(at_max, sign=True))
        n.flags["intermediate_shrinks"] = bool(abs(at_max) < abs(at_min))
        n.set("PermFloor", Tex(f"{2.0 / 2 ** int(df['n'].max()):.3g}"))
    pooled = _pooled_main(rows_where(inp.analysis.pooled, metric=inp.metric), "intermediate")
    n.flags["has_pooled_intermediate"] = pooled is not None
    if pooled is not None:
        n.set("PooledIntermediate", num(pooled["estimate"], sign=True))
        n.set("PooledIntermediateCI", interval(pooled["ci_lo"], pooled["ci_hi"]))
        n.set("PooledIntermediateP", pvalue(pooled["p"]))
        n.set("PooledModel", str(pooled["model"]))
        n.flags["pooled_intermediate_sign"] = (
            "negative" if pooled["ci_hi"] < 0 else "positive" if pooled["ci_lo"] > 0 else "unclear")
    n.flags.update(intermediate_cells=tot, intermediate_all_negative=tot > 0 and neg == tot,
                   intermediate_mostly_negative=tot > 0 and neg * 2 >= tot, intermediate_negative=neg)


def plateau_text(row: pd.Series | None) -> Tex:
    """'68.12\\% [66.01, 70.30]' or 'not identified'."""
    if row is None or not bool(row["identified"]) or isnan(row["plateau"]):
        return Tex("not identified")
    return Tex(f"{num(row['plateau'])}\\% {interval(row['plateau_lo'], row['plateau_hi'])}")


def add_fits(n: Numbers, inp: Inputs) -> None:
    fits = inp.analysis.fits
    P = n.flags["P"]
    i0 = False if False in n.flags["I"] else n.flags["I"][0]
    mf = rows_where(fits, metric=inp.metric)
    n_cond = mf.groupby(["pretrain", "intermediate"]).ngroups if len(mf) else 0
    ident_best = 0
    best_families = []
    for (p, i), _ in (mf.groupby(["pretrain", "intermediate"]) if len(mf) else []):
        b = best_fit(mf, inp.metric, p, i)
        if b is not None:
            best_families.append(str(b["family"]))
            ident_best += bool(b["identified"])
    n.set("FitConditions", integer(n_cond))
    n.set("FitIdentified", integer(ident_best))
    n.set("FitIdentifiedIn", count_phrase(ident_best, n_cond, "conditions"))
    n.set("FitIdentifiedPhrase", f"identified {count_phrase(ident_best, n_cond, 'conditions')}")
    fam = pd.Series(best_families).value_counts() if best_families else pd.Series(dtype=int)
    if len(fam):
        top = sorted(fam.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        n.set("FitModalFamily", top[0])
        n.set("FitModalCount", integer(top[1]))
    else:
        n.set("FitModalFamily", "--")
        n.set("FitModalCount", integer(0))
    n.flags["fit_conditions"] = n_cond
    n.flags["fit_identified"] = ident_best
    n.flags["log2_best"] = int(sum(f == "log2" for f in best_families))
    n.set("FitLogBest", integer(n.flags["log2_best"]))
    n.flags["gains_in_range"] = min(n.flags["F"]) <= 1000 and max(n.flags["F"]) >= 4000
    for tag, p in (("Base", 0 if 0 in P else None), ("Top", max(P))):
        b = best_fit(mf, inp.metric, p, i0) if p is not None else None
        n.set(f"Plateau{tag}", plateau_text(b))
        n.set(f"Plateau{tag}Family", str(b["family"]) if b is not None else "--")
        n.flags[f"plateau_{tag.lower()}_identified"] = bool(b is not None and b["identified"])
        gains = [b[f"gain_{g}"] if b is not None else np.nan for g in (1000, 2000, 4000)]
        for word, g in zip(("Thousand", "TwoThousand", "FourThousand"), gains):
            n.set(f"Gain{tag}{word}", num(g))
        n.flags[f"{tag.lower()}_gains_known"] = not any(isnan(g) for g in gains)
        n.set(f"FNinetyFive{tag}", integer(round(b["f95"])) if b is not None and not isnan(b["f95"])
              else Tex("not identified"))


def add_transfer(n: Numbers, inp: Inputs) -> None:
    tf = rows_where(inp.analysis.transfer_fit, metric=inp.metric)
    tr = rows_where(inp.analysis.transfer, metric=inp.metric)
    n.flags["has_transfer"] = len(tr) > 0
    n.set("TransferPoints", integer(len(tr)))
    n.set("TransferExtrapolated", integer(int(tr["extrapolated"].astype(bool).sum()) if len(tr) else 0))
    if False in n.flags["I"]:
        tf = tf[tf["intermediate"] == False]  # noqa: E712
    tf = tf.dropna(subset=["alpha"]).sort_values("pretrain")
    n.flags["has_transfer_fit"] = len(tf) > 0
    if len(tf):
        top = tf.iloc[-1]
        n.set("TransferAlphaTop", num(top["alpha"]))
        n.set("TransferKTop", sci(top["k"]))
        n.set("TransferPretrainTop", size_label(top["pretrain"]))
        n.set("TransferAlphaMin", num(tf["alpha"].min()))
        n.set("TransferAlphaMax", num(tf["alpha"].max()))
