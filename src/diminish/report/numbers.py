"""Every number and every direction word the prose cites, computed from the inputs.

:func:`compute` returns a :class:`Numbers`: ``macros`` (name -> LaTeX, written to ``numbers.tex`` as
``\\newcommand{\\dmName}{...}``) and ``flags`` (plain values the template branches on). The prose
types no result digits: it uses these macros, and where it states a direction ("lowers mIoU in
every cell") the phrase is chosen here from the same analysis tables the paper prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .inputs import Inputs, best_fit, cell_stats
from .latex import Tex, escape, integer, interval, isnan, macro_name, num, pvalue, sci, size_label

PREFIX = "dm"
METRIC_LABEL = {"miou": "mIoU", "accuracy": "accuracy"}
ALPHA = 0.05  # significance level for counting "significant" cells (Holm-adjusted p)


@dataclass
class Numbers:
    macros: dict[str, Tex] = field(default_factory=dict)
    flags: dict[str, object] = field(default_factory=dict)

    def set(self, name: str, value: object) -> None:
        if not name.isalpha():
            raise ValueError(f"macro name must be letters only: {name!r}")
        if name in self.macros:
            raise ValueError(f"macro {name} defined twice")
        self.macros[name] = value if isinstance(value, Tex) else escape(value)


def join_words(items: list[str]) -> str:
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def plural(k: int, word: str) -> str:
    """'1 seed' / '3 seeds'."""
    return f"{k} {word}" if k == 1 else f"{k} {word}s"


def count_phrase(k: int, n: int, unit: str = "cells") -> str:
    """'in every one of the 6 cells' / 'in 4 of the 6 cells' / 'in none of the 6 cells'."""
    one = unit[:-1] if unit.endswith("s") else unit
    if n == 0:
        return f"in no {one} (nothing to compare)"
    if k == n:
        return f"in the only {one}" if n == 1 else f"in every one of the {n} {unit}"
    if k == 0:
        return f"in none of the {n} {unit}"
    return f"in {k} of the {n} {unit}"


_PER_CONDITION = re.compile(r"_(?:P\d+|F\d+)_I\d+$")
_CONDITION_TEXT = re.compile(r"\s*\((?:P|F)=[^)]*\)\s*$")


def claim_text(text: str) -> str:
    """Claim wording for print: the metric's proper name."""
    return re.sub(r"\bmiou\b", "mIoU", str(text))


def claim_groups(verdicts: pd.DataFrame) -> list[dict]:
    """Claims tested once per condition (ids ending in _P<n>_I<k> or _F<n>_I<k>) grouped into one
    entry each; study-level claims stay single. Order follows verdicts.csv."""
    groups: dict[str, dict] = {}
    for r in verdicts.itertuples():
        cid = str(r.claim_id)
        key = _PER_CONDITION.sub("", cid)
        per = key != cid
        g = groups.setdefault(key, dict(key=key, per_condition=per, claim=claim_text(_CONDITION_TEXT.sub("", str(r.claim))),
                                        rows=[]))
        g["rows"].append(r)
    for g in groups.values():
        verdicts_ = [str(r.verdict).strip() for r in g["rows"]]
        g["counts"] = {v: verdicts_.count(v) for v in ("supported", "not supported", "inconclusive")}
        g["n"] = len(verdicts_)
    return list(groups.values())


def group_phrase(g: dict) -> str:
    """'supported in 8 of the 8 conditions' / 'supported in 2, inconclusive in 5, not supported in 1 of the 8 conditions'."""
    n = g["n"]
    parts = [(v, k) for v, k in g["counts"].items() if k]
    if len(parts) == 1:
        v, k = parts[0]
        return f"{v} (in the only condition)" if n == 1 else f"{v} (in all {n} conditions)"
    return ", ".join(f"{v} in {k}" for v, k in parts) + f" of the {n} conditions"


def snum(x: object) -> Tex:
    """A signed difference in points: +13.41 / $-$0.52."""
    return num(x, sign=True)


def _rows(df: pd.DataFrame, **eq) -> pd.DataFrame:
    mask = np.ones(len(df), dtype=bool)
    for k, v in eq.items():
        mask &= (df[k] == v).to_numpy()
    return df[mask]


def _grid(n: Numbers, inp: Inputs) -> None:
    ds = inp.results
    P = [int(p) for p in ds.pretrain.values]
    F = [int(f) for f in ds.finetune.values]
    I = [bool(i) for i in ds.intermediate.values]  # noqa: E741
    seeds = [int(s) for s in ds.seed.values]
    done = int(ds[inp.metric].notnull().sum())
    total = int(ds[inp.metric].size)
    n.set("NSeeds", integer(len(seeds)))
    n.set("SeedsPhrase", plural(len(seeds), "seed"))
    n.set("PretrainSizesPhrase", plural(len(P), "pre-training size"))
    n.set("IntermediatePhrase", plural(len(I), "intermediate condition"))
    n.set("FinetuneSizesPhrase", plural(len(F), "fine-tuning size"))
    n.set("SeedList", join_words([str(s) for s in seeds]))
    n.set("NPretrainSizes", integer(len(P)))
    n.set("NFinetuneSizes", integer(len(F)))
    n.set("NIntermediate", integer(len(I)))
    n.set("NCells", integer(len(P) * len(I) * len(F)))
    n.set("NRuns", integer(total))
    n.set("NRunsDone", integer(done))
    n.set("NRunsMissing", integer(total - done))
    n.set("PretrainSizes", join_words([size_label(p) for p in P]))
    n.set("FinetuneSizes", join_words([str(f) for f in F]))
    n.set("FinetuneMin", integer(min(F)))
    n.set("FinetuneMax", integer(max(F)))
    n.set("PretrainMax", size_label(max(P)))
    nonzero = [p for p in P if p > 0]
    n.set("PretrainMinNonzero", size_label(min(nonzero)) if nonzero else "--")
    n.set("MetricName", METRIC_LABEL[inp.metric])
    n.flags.update(P=P, F=F, I=I, seeds=seeds, has_baseline=0 in P, has_pretrain=bool(nonzero),
                   has_intermediate=(True in I and False in I), complete=done == total,
                   n_missing=total - done)


def _config(n: Numbers, inp: Inputs) -> None:
    from ..config import ExperimentConfig
    from ..model import ViNy, count_parameters

    cfg = inp.config
    n.flags["has_config"] = cfg is not None
    n.flags["config_error"] = inp.config_error
    shown = cfg if cfg is not None else ExperimentConfig(name="defaults")
    m = shown.model
    import torch

    with torch.device("meta"):
        params = count_parameters(ViNy(m))
    for name, value in (("ImageSize", m.image_size), ("PatchSize", m.patch_size), ("ModelDim", m.dim),
                        ("Depth", m.depth), ("Heads", m.heads), ("DimHead", m.dim_head), ("MlpDim", m.mlp_dim),
                        ("NumPatches", m.num_patches), ("SegHeadOut", m.patch_size**2 * 3),
                        ("BackboneParams", params), ("MaskUnit", shown.simmim.mask_patch_size),
                        ("IntelClasses", shown.intermediate.num_classes), ("TestSize", shown.finetune.test_size),
                        ("SplitSeed", shown.finetune.split_seed)):
        n.set(name, integer(value))
    n.set("MaskRatio", f"{shown.simmim.mask_ratio:g}")
    n.set("MaskPercent", f"{100 * shown.simmim.mask_ratio:g}")
    n.flags["cls_in_pretrain"] = shown.simmim.cls_in_pretrain
    n.flags["config_name"] = shown.name if cfg is not None else ""


def _results(n: Numbers, inp: Inputs) -> None:
    ds, m = inp.results, inp.metric
    st = cell_stats(ds, m)
    P, F = n.flags["P"], n.flags["F"]
    fmin, fmax = min(F), max(F)
    has_false = False in n.flags["I"]
    i0 = False if has_false else n.flags["I"][0]
    mean = st["mean"].sel(intermediate=i0)

    def cell(p, f):
        return float(mean.sel(pretrain=p, finetune=f))

    # best cell overall
    flat = st["mean"].to_dataframe().reset_index().dropna(subset=["mean"])
    if len(flat):
        best = flat.loc[flat["mean"].idxmax()]
        n.set("PeakValue", num(best["mean"]))
        n.set("PeakPretrain", size_label(best["pretrain"]))
        n.set("PeakFinetune", integer(best["finetune"]))
        n.flags["peak_intermediate"] = bool(best["intermediate"])
    else:
        n.set("PeakValue", num(np.nan))
        n.set("PeakPretrain", "--")
        n.set("PeakFinetune", "--")
        n.flags["peak_intermediate"] = False
    pmax = max(P)
    if 0 in P:
        n.set("BaseMinF", num(cell(0, fmin)))
        n.set("BaseMaxF", num(cell(0, fmax)))
        n.set("BaseRise", snum(cell(0, fmax) - cell(0, fmin)))
    if 0 in P and pmax > 0:
        pmin = min(p for p in P if p > 0)
        n.set("TopMinF", num(cell(pmax, fmin)))
        n.set("TopMaxF", num(cell(pmax, fmax)))
        n.set("GainTopMinF", snum(cell(pmax, fmin) - cell(0, fmin)))
        n.set("GainTopMaxF", snum(cell(pmax, fmax) - cell(0, fmax)))
        n.set("GainSmallMinF", snum(cell(pmin, fmin) - cell(0, fmin)))
        n.set("GainSmallMaxF", snum(cell(pmin, fmax) - cell(0, fmax)))
        shrinks = (cell(pmax, fmax) - cell(0, fmax)) < (cell(pmax, fmin) - cell(0, fmin))
        n.flags["pretrain_gain_shrinks"] = bool(shrinks)
    # Intel accuracy after the intermediate stage (if recorded)
    ia = ds["intermediate_accuracy"] if "intermediate_accuracy" in ds else None
    val = float(ia.mean(skipna=True)) if ia is not None and bool(ia.notnull().any()) else np.nan
    n.flags["has_intel_accuracy"] = not isnan(val)
    n.set("IntelAccuracy", num(val, 1))
    split = str(inp.attrs.get("intermediate_accuracy_split", ""))
    n.set("IntelAccuracySplit", {"test": "on the held-out Intel test images",
                                 "train": "on its own Intel training images (no test split was available)"}
          .get(split, "on Intel images (the split is not recorded)"))


def _pretrain_effect(n: Numbers, inp: Inputs) -> None:
    df = _rows(inp.analysis.paired_pretrain, metric=inp.metric)
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
    pooled = _pooled_main(_rows(inp.analysis.pooled, metric=inp.metric), "pretrain")
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


def _intermediate_effect(n: Numbers, inp: Inputs) -> None:
    df = _rows(inp.analysis.paired_intermediate, metric=inp.metric)
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
    pooled = _pooled_main(_rows(inp.analysis.pooled, metric=inp.metric), "intermediate")
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


def _fits(n: Numbers, inp: Inputs) -> None:
    fits = inp.analysis.fits
    P = n.flags["P"]
    i0 = False if False in n.flags["I"] else n.flags["I"][0]
    mf = _rows(fits, metric=inp.metric)
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


def _firmness(strength: str, claimed_side: bool) -> str:
    """'significantly in each cell' / 'significantly on average' / 'not significantly', for a sentence
    whose direction is the claimed one (claimed_side) or the opposite one."""
    if claimed_side:
        return {"every": "significantly in each cell", "average": "significantly on average"}.get(
            strength, "not significantly")
    return "significantly on average" if strength == "reversed" else "not significantly"


def _verdicts(n: Numbers, inp: Inputs) -> None:
    v = inp.analysis.verdicts
    counts = v["verdict"].astype(str).str.strip().value_counts()
    n.set("NClaims", integer(len(v)))
    n.set("NSupported", integer(int(counts.get("supported", 0))))
    n.set("NNotSupported", integer(int(counts.get("not supported", 0))))
    n.set("NInconclusive", integer(int(counts.get("inconclusive", 0))))
    n.flags["verdicts"] = {str(r.claim_id): str(r.verdict).strip() for r in v.itertuples()}
    n.flags["groups"] = {}
    ids = n.flags["verdicts"]

    def strength(every: str, average: str, fallback: bool) -> str:
        """How firmly the analysis backs the claimed direction: 'every' (the every-cell claim is
        supported), 'average' (the pooled claim is supported), 'reversed' (the pooled claim is not
        supported: significant the other way), 'means' (only the cell means point that way), 'none'."""
        if ids.get(every) == "supported":
            return "every"
        if ids.get(average) == "supported":
            return "average"
        if ids.get(average) == "not supported":
            return "reversed"
        return "means" if fallback else "none"

    pt = strength("PT_EVERY_CELL", "PT_HELPS", bool(n.flags.get("pretrain_all_positive")))
    it = strength("INT_EVERY_CELL", "INT_HURTS", bool(n.flags.get("intermediate_mostly_negative")))
    n.flags["pretrain_strength"], n.flags["intermediate_strength"] = pt, it
    # a parenthesis for the sentences that state the majority direction of the cell means
    pt_up = bool(n.flags.get("pretrain_majority_positive"))
    it_down = bool(n.flags.get("intermediate_mostly_negative"))
    n.set("PretrainFirmness", _firmness(pt, pt_up))
    n.set("IntermediateFirmness", _firmness(it, it_down))

    for g in claim_groups(v):
        if not g["per_condition"]:
            r = g["rows"][0]
            verdict = str(r.verdict).strip()
            n.set(macro_name("Verdict", g["key"]), Tex(r"\textit{" + str(escape(verdict)) + "}"))
            n.set(macro_name("Claim", g["key"]), escape(g["claim"]))
            n.set(macro_name("Estimate", g["key"]), Tex(f"{num(r.estimate)}, 95\\% CI {interval(r.ci_lo, r.ci_hi)}"))
            n.flags["groups"][g["key"]] = verdict
        else:
            n.set(macro_name("Group", g["key"]), group_phrase(g))
            n.set(macro_name("Claim", g["key"]), escape(g["claim"]))
            n.flags["groups"][g["key"]] = g["counts"]


def _transfer(n: Numbers, inp: Inputs) -> None:
    tf = _rows(inp.analysis.transfer_fit, metric=inp.metric)
    tr = _rows(inp.analysis.transfer, metric=inp.metric)
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


def _compare(n: Numbers, inp: Inputs) -> None:
    c = _rows(inp.analysis.compare, metric=inp.metric).dropna(subset=["ours_mean", "paper_mean"])
    n.flags["has_compare"] = len(c) > 0
    n.set("CompareCells", integer(len(c)))
    n.set("CompareWithinTol", integer(int(c["within_tol"].astype(bool).sum()) if len(c) else 0))
    n.set("CompareMeanDiff", num(c["diff"].mean() if len(c) else np.nan, sign=True))
    n.set("CompareMeanAbsDiff", num(c["diff"].abs().mean() if len(c) else np.nan))
    n.set("CompareMaxAbsDiff", num(c["diff"].abs().max() if len(c) else np.nan))
    n.set("CompareWithinPhrase", f"within the tolerance {count_phrase(int(c['within_tol'].astype(bool).sum()), len(c))}"
          if len(c) else "not comparable (no cell in common)")
    h = inp.analysis.headline
    holds = h["holds_in_ours"].astype(str).str.strip().str.lower()
    n.set("HeadlineClaims", integer(len(h)))
    n.set("HeadlineHold", integer(int((holds == "yes").sum())))
    n.set("HeadlineFail", integer(int((holds == "no").sum())))
    n.set("HeadlineInconclusive", integer(int((holds == "inconclusive").sum())))


def _provenance(n: Numbers, inp: Inputs) -> None:
    a = inp.attrs
    n.set("ConfigHash", str(a.get("config_hash", "not recorded")))
    created = str(a.get("created", a.get("creation_time", a.get("date", "")))) or "date not recorded"
    n.set("ResultsDate", created)


def compute(inp: Inputs) -> Numbers:
    n = Numbers()
    for step in (_grid, _config, _results, _pretrain_effect, _intermediate_effect, _fits, _verdicts,
                 _transfer, _compare, _provenance):
        step(n, inp)
    n.flags["synthetic"] = inp.synthetic
    n.flags["has_examples"] = inp.examples is not None
    n.flags["metric"] = inp.metric
    return n


def numbers_tex(n: Numbers) -> str:
    lines = ["% Generated by `python -m diminish.report numbers`: every result number the prose cites.",
             "% Do not edit; rebuild with `make paper`."]
    for name in sorted(n.macros):
        lines.append(f"\\newcommand{{\\{PREFIX}{name}}}{{{n.macros[name]}}}")
    return "\n".join(lines) + "\n"


def write_numbers(inp: Inputs, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(numbers_tex(compute(inp)))
    return path
