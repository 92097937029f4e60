"""numbers.tex macros about the study as it was run and what it measured.

The grid (sizes, seeds, how many runs are done or missing), the model and pre-training settings
from the config (or the defaults when no config is recorded), headline cell means such as the best
cell and the gain of the largest pre-training over none at the smallest and largest fine-tune
size, the Intel accuracy after the intermediate stage, how our cells compare with the paper's, and
where the results came from (config hash, date).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..config import ExperimentConfig, StageConfig, load
from .inputs import Inputs, cell_table
from .latex import integer, isnan, num, size_label
from .macros import METRIC_LABEL, Numbers, count_phrase, join_words, plural, rows_where, snum
from .statements import headline_sentence, settings_sentence

# The original study's settings (Appendix A1 and its ViNy), as the repository's paper config states them.
PAPER_CONFIG = Path(__file__).resolve().parents[3] / "experiments" / "paper.toml"
MODEL_FIELDS = ("image_size", "patch_size", "dim", "depth", "heads", "dim_head", "mlp_dim")
STAGE_FIELDS = ("epochs", "lr", "weight_decay", "gamma", "milestones", "warmup_epochs", "grad_clip")
STAGE_NAMES = (("pretrain", "pre-training"), ("intermediate", "intermediate"), ("finetune", "fine-tuning"))


def paper_config(path: Path = PAPER_CONFIG) -> ExperimentConfig | None:
    """The paper's configuration, or None where the repository's experiments/ folder is absent."""
    return load(path) if path.is_file() else None


def _fmt(v: object) -> str:
    if isinstance(v, tuple):
        return "{" + ", ".join(str(x) for x in v) + "}"
    return f"{v:g}" if isinstance(v, float) else str(v)


def differences_from_paper(cfg: ExperimentConfig, paper: ExperimentConfig) -> list[str]:
    """What in ``cfg`` differs from the paper's model and Appendix A1 schedule, in words
    ('fine-tuning epochs 4 (paper: 100)'); empty when the settings are the paper's. Batch sizes
    are left out: the paper does not give them."""
    out = [f"model {f.replace('_', ' ')} {_fmt(getattr(cfg.model, f))} (paper: {_fmt(getattr(paper.model, f))})"
           for f in MODEL_FIELDS if getattr(cfg.model, f) != getattr(paper.model, f)]
    if cfg.simmim.mask_ratio != paper.simmim.mask_ratio:
        out.append(f"mask ratio {cfg.simmim.mask_ratio:g} (paper: {paper.simmim.mask_ratio:g})")
    for attr, name in STAGE_NAMES:
        ours: StageConfig = getattr(cfg, attr)
        theirs: StageConfig = getattr(paper, attr)
        for f in STAGE_FIELDS:
            a, b = getattr(ours, f), getattr(theirs, f)
            if a != b:
                out.append(f"{name} {f.replace('_', ' ').replace('lr', 'learning rate')} {_fmt(a)} (paper: {_fmt(b)})")
    return out


def params_of(model_cfg) -> int:
    return model_cfg.backbone_parameters


def millions(k: int) -> str:
    return f"{k / 1e6:.2f}M" if k >= 1e6 else f"{k:,}"


def add_grid(n: Numbers, inp: Inputs) -> None:
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


def add_config(n: Numbers, inp: Inputs) -> None:
    cfg = inp.config
    n.flags["has_config"] = cfg is not None
    n.flags["config_error"] = inp.config_error
    shown = cfg if cfg is not None else ExperimentConfig(name="defaults")
    m = shown.model
    params = params_of(m)
    paper = paper_config()
    diffs = differences_from_paper(cfg, paper) if cfg is not None and paper is not None else None
    n.set("SettingsSentence", settings_sentence(diffs))
    n.flags["settings_differ"] = bool(diffs)
    n.flags["settings_are_papers"] = diffs == []
    n.flags["model_is_papers"] = paper is not None and all(getattr(m, f) == getattr(paper.model, f)
                                                           for f in MODEL_FIELDS)
    n.flags["has_paper_config"] = paper is not None
    if paper is not None:
        pm_ = paper.model
        n.set("PaperDepth", integer(pm_.depth))
        n.set("PaperDim", integer(pm_.dim))
        n.set("PaperHeads", integer(pm_.heads))
        n.set("PaperMlpDim", integer(pm_.mlp_dim))
        n.set("PaperParams", millions(params_of(pm_)))
        for attr, _ in STAGE_NAMES:
            st = getattr(paper, attr)
            tag = {"pretrain": "Pretrain", "intermediate": "Intermediate", "finetune": "Finetune"}[attr]
            n.set(f"Paper{tag}Epochs", integer(st.epochs))
            n.set(f"Paper{tag}Lr", _fmt(st.lr))
    if cfg is not None:
        for attr, _ in STAGE_NAMES:
            st = getattr(cfg, attr)
            tag = {"pretrain": "Pretrain", "intermediate": "Intermediate", "finetune": "Finetune"}[attr]
            n.set(f"{tag}Epochs", integer(st.epochs))
            n.set(f"{tag}Lr", _fmt(st.lr))
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


def add_results(n: Numbers, inp: Inputs) -> None:
    ds, m = inp.results, inp.metric
    st = cell_table(inp, m)
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


def add_compare(n: Numbers, inp: Inputs) -> None:
    c = rows_where(inp.analysis.compare, metric=inp.metric).dropna(subset=["ours_mean", "paper_mean"])
    n.flags["has_compare"] = len(c) > 0
    n.set("CompareCells", integer(len(c)))
    n.set("CompareWithinTol", integer(int(c["within_tol"].astype(bool).sum()) if len(c) else 0))
    n.set("CompareMeanDiff", num(c["diff"].mean() if len(c) else np.nan, sign=True))
    n.set("CompareMeanAbsDiff", num(c["diff"].abs().mean() if len(c) else np.nan))
    n.set("CompareMaxAbsDiff", num(c["diff"].abs().max() if len(c) else np.nan))
    n.set("CompareWithinPhrase", f"within the tolerance {count_phrase(int(c['within_tol'].astype(bool).sum()), len(c))}"
          if len(c) else "not comparable (no cell in common)")
    h = inp.analysis.headline
    if "metric" in h.columns:
        h = h[h["metric"] == inp.metric]
    holds = h["holds_in_ours"].astype(str).str.strip().str.lower()
    n.set("HeadlineSentence", headline_sentence(int((holds == "yes").sum()), int((holds == "no").sum()),
                                                int((holds == "inconclusive").sum()),
                                                int((holds == "not testable").sum())))


def add_provenance(n: Numbers, inp: Inputs) -> None:
    a = inp.attrs
    n.set("ConfigHash", str(a.get("config_hash", "not recorded")))
    created = str(a.get("created", a.get("creation_time", a.get("date", "")))) or "date not recorded"
    n.set("ResultsDate", created)
