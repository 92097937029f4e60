"""The paper's tables, each rendered through ``templates/table.tex.j2`` (booktabs).

Cell means and SDs come straight from ``results.nc`` (SD over seeds with ddof 1), everything else
from the analysis folder. Each table is one ``.tex`` file in the output folder; a table that does
not apply to the results (e.g. no baseline row) is written as a comment-only stub so the build's
file list never changes, and the paper skips it (``flags`` from :mod:`.numbers`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .inputs import Inputs, best_fit, cell_stats
from .latex import (
    DASH,
    Tex,
    breakable_tt,
    escape,
    integer,
    interval,
    isnan,
    num,
    pm,
    pvalue,
    sci,
    size_label,
)
from .numbers import METRIC_LABEL, claim_groups, claim_text, plateau_text
from .render import render

TABLES: dict[str, Callable[[Inputs], str | None]] = {}


def table(name: str):
    def deco(fn):
        TABLES[name] = fn
        return fn
    return deco


def _tab(caption: str | Tex, label: str, colspec: str, header: list[list], groups: list[list[list]], *,
         size: str = r"\small", note: str | Tex = "", rules: list[str] | None = None,
         float_env: str = "table") -> str:
    return render("table.tex.j2", caption=escape(caption), label=Tex(label), colspec=Tex(colspec),
                  header=header, groups=groups, size=Tex(size), note=escape(note) if note else "",
                  rules=[Tex(r) for r in (rules or [""] * len(header))], float=Tex(float_env))


def _yesno(v: object) -> str:
    return "yes" if bool(v) else "no"


def _intermediate_word(v: object) -> str:
    return "with" if bool(v) else "without"


def _cells(inp: Inputs, intermediate: bool, pretrain: list[int]) -> list[list[list]]:
    acc, miou = cell_stats(inp.results, "accuracy"), cell_stats(inp.results, "miou")
    groups = []
    for p in pretrain:
        rows = []
        for k, f in enumerate(inp.results.finetune.values):
            sel = dict(pretrain=p, intermediate=intermediate, finetune=f)
            a, m = acc.sel(sel), miou.sel(sel)
            rows.append([size_label(p) if k == 0 else "", integer(f), pm(a["mean"], a["sd"]),
                         pm(m["mean"], m["sd"])])
        groups.append(rows)
    return groups


def _seed_note(inp: Inputs) -> Tex:
    ns = len(inp.results.seed)
    missing = int(inp.results["miou"].isnull().sum())
    note = f"Mean $\\pm$ sample SD over {ns} seeds, in percent on the held-out test images."
    if missing:
        runs = "run is" if missing == 1 else "runs are"
        note += f" {missing} {runs} missing; -- marks a cell without any finished run."
    return Tex(note)


@table("baseline")
def baseline(inp: Inputs) -> str | None:
    P, I = list(inp.results.pretrain.values), list(inp.results.intermediate.values)  # noqa: E741
    if 0 not in P or False not in I:
        return None
    groups = [[row[1:] for row in g] for g in _cells(inp, False, [0])]
    return _tab(escape("ViNy without pre-training or intermediate fine-tuning, by number of fine-tuning images "
                       "(counterpart of the original Table 1). ") + _seed_note(inp),
                "tab:baseline", "rcc", [["Fine-tune images", "Accuracy (%)", "mIoU (%)"]], groups)


@table("pretrained")
def pretrained(inp: Inputs) -> str | None:
    P = [int(p) for p in inp.results.pretrain.values if p > 0]
    if not P or False not in list(inp.results.intermediate.values):
        return None
    return _tab(escape("SimMIM pre-trained ViNy without intermediate fine-tuning, by pre-training and "
                       "fine-tuning images (counterpart of Table A2). ") + _seed_note(inp), "tab:pretrained", "rrcc",
                [["Pre-train", "Fine-tune", "Accuracy (%)", "mIoU (%)"]], _cells(inp, False, P))


@table("intermediate")
def intermediate(inp: Inputs) -> str | None:
    if True not in list(inp.results.intermediate.values):
        return None
    P = [int(p) for p in inp.results.pretrain.values]
    return _tab(escape("ViNy with intermediate Intel fine-tuning, by pre-training and fine-tuning images "
                       "(counterpart of Table A3; the rows without pre-training are new). ") + _seed_note(inp),
                "tab:intermediate", "rrcc", [["Pre-train", "Fine-tune", "Accuracy (%)", "mIoU (%)"]],
                _cells(inp, True, P))


@table("hyper")
def hyper(inp: Inputs) -> str | None:
    cfg = inp.config
    if cfg is None:
        return None
    rows = []
    for name, st, data in (("Pre-training (SimMIM)", cfg.pretrain, "ImageNet subset"),
                           ("Intermediate", cfg.intermediate, "Intel scenes"),
                           ("Fine-tuning", cfg.finetune, "Pets tri-maps")):
        rows.append([name, data, integer(st.epochs), Tex(f"{st.lr:g}".replace("e-0", "e-")),
                     Tex(f"{st.weight_decay:g}"), Tex(f"{st.gamma:g}"),
                     Tex("\\{" + ", ".join(str(m) for m in st.milestones) + "\\}"), integer(st.batch_size),
                     integer(st.warmup_epochs), Tex(f"{st.grad_clip:g}") if st.grad_clip else "off"])
    note = (f"Configuration '{cfg.name}' (hash {inp.attrs.get('config_hash', cfg.hash)}), read from the "
            f"results file. AdamW optimiser and a step schedule that multiplies the learning rate by gamma "
            f"at each milestone epoch.")
    return _tab("Training settings of the three stages, as recorded in the results file.", "tab:hyper",
                "llrrrrcrrr", [["Stage", "Data", "Epochs", "LR", "WD", "Gamma", "Milestones", "Batch",
                                "Warm-up", "Clip"]], [rows], size=r"\footnotesize", note=note)


@table("fits")
def fits(inp: Inputs) -> str | None:
    df = inp.analysis.fits
    df = df[df["metric"] == inp.metric]
    if not len(df):
        return None
    fams = sorted(df["family"].astype(str).unique(), key=lambda f: (f == "log2", f))
    header = [["Pre-train", "Interm."] + [Tex(f"$w_{{\\mathrm{{{escape(f)}}}}}$") for f in fams]
              + ["Best", "Plateau (%) [95% CI]", Tex("$F_{95}$")]]
    groups = []
    for p, gp in df.groupby("pretrain", sort=True):
        rows = []
        for i, g in gp.groupby("intermediate", sort=True):
            w = {str(r.family): r.akaike_weight for r in g.itertuples()}
            b = best_fit(df, inp.metric, p, i)
            f95 = b["f95"] if b is not None else np.nan
            rows.append([size_label(p), _yesno(i)] + [num(w.get(f, np.nan)) for f in fams]
                        + [str(b["family"]) if b is not None else DASH, plateau_text(b),
                           integer(round(f95)) if not isnan(f95) and b is not None and b["identified"] else DASH])
        groups.append(rows)
    note = Tex("$w$: Akaike weight of each curve family (AICc); log2 is the non-saturating straight line in "
               "$\\log F$. Plateau: asymptote of the best family with a bootstrap interval over seeds, or "
               "`not identified' when it sits on a bound or its interval is too wide. $F_{95}$: fine-tune "
               "images needed to reach 95\\% of the plateau.")
    return _tab(f"Curve families fitted to {METRIC_LABEL[inp.metric]} against fine-tune size, per condition.",
                "tab:fits", "rl" + "r" * len(fams) + "lcr", header, groups, size=r"\footnotesize", note=note)


@table("verdicts")
def verdicts(inp: Inputs) -> str | None:
    """Summary: study-level claims one per row, per-condition claims one row per kind."""
    v = inp.analysis.verdicts
    if not len(v):
        return None
    rows = []
    for g in claim_groups(v):
        if g["per_condition"]:
            stat = claim_text(g["rows"][0].statistic)
            tally = ", ".join(f"{k}/{g['n']} {v}" for v, k in g["counts"].items() if k)
            rows.append([escape(g["claim"]), escape(f"per condition ({g['n']}): {stat}"), DASH, escape(tally)])
        else:
            r = g["rows"][0]
            rows.append([escape(g["claim"]), escape(claim_text(r.statistic)),
                         Tex(f"{num(r.estimate)} {interval(r.ci_lo, r.ci_hi)}"),
                         Tex(r"\textbf{" + str(escape(str(r.verdict).strip())) + "}")])
    note = Tex("A directional claim is supported when its 95\\% interval excludes zero on the claimed side and "
               "not supported when it excludes zero on the other side; otherwise the data are inconclusive. "
               "Claims tested once per condition are summarised here and listed in full in "
               "Table~\\ref{tab:verdicts-all}.")
    return _tab("Claims tested by the analysis and their verdicts.", "tab:verdicts",
                r"p{0.28\linewidth}p{0.24\linewidth}cp{0.15\linewidth}",
                [["Claim", "Statistic", "Estimate [95% CI]", "Verdict"]], [rows],
                size=r"\footnotesize\setlength{\tabcolsep}{4pt}", note=note)


@table("verdicts_all")
def verdicts_all(inp: Inputs) -> str | None:
    v = inp.analysis.verdicts
    if not len(v):
        return None
    groups: list[list] = []
    single = False
    for g in claim_groups(v):
        rows = [[escape(claim_text(r.claim)), num(r.estimate), interval(r.ci_lo, r.ci_hi), pvalue(r.p),
                 escape(str(r.verdict).strip())] for r in g["rows"]]
        if not g["per_condition"] and single:
            groups[-1].extend(rows)  # study-level claims share one block
        else:
            groups.append(rows)
        single = not g["per_condition"]
    caption = escape(f"Every claim tested on {METRIC_LABEL[inp.metric]}; claims tested per condition have one "
                     "row per condition (statistics as in ") + Tex("Table~\\ref{tab:verdicts}).")
    return _tab(caption, "tab:verdicts-all", r"p{0.5\linewidth}rccl",
                [["Claim", "Estimate", "95% CI", "p", "Verdict"]], groups, size=r"\scriptsize")


def _paired_rows(df: pd.DataFrame, keys: list[str]) -> list[list[list]]:
    groups = []
    for p, g in df.sort_values(keys).groupby("pretrain", sort=True):
        rows = []
        for k, r in enumerate(g.itertuples()):
            rows.append(([size_label(p)] if k == 0 else [""])
                        + ([_yesno(r.intermediate)] if "intermediate" in keys else [])
                        + [integer(r.finetune), pm(r.mean_delta, r.se), interval(r.ci_lo, r.ci_hi), num(r.dz),
                           pvalue(r.p_t), pvalue(r.p_perm), pvalue(r.p_holm)])
        groups.append(rows)
    return groups


# the columns of both per-cell paired tables
_PAIRED_HEADER = [["Pre-train", "Fine-tune", Tex("$\\Delta$ $\\pm$ SE"), "95% CI", Tex("$d_z$"), Tex("$p_t$"),
                   Tex("$p_{\\mathrm{perm}}$"), Tex("$p_{\\mathrm{Holm}}$")]]


@table("paired_intermediate")
def paired_intermediate(inp: Inputs) -> str | None:
    df = inp.analysis.paired_intermediate
    df = df[df["metric"] == inp.metric]
    if not len(df):
        return None
    method = ", ".join(sorted(df["method"].astype(str).unique()))
    return _tab(f"Intermediate fine-tuning effect on {METRIC_LABEL[inp.metric]} per cell: with minus without "
                f"Intel fine-tuning, paired by seed (method: {method}).", "tab:paired-intermediate", "rrcccrrrr",
                _PAIRED_HEADER, _paired_rows(df, ["pretrain", "finetune"]), size=r"\footnotesize")


@table("paired_pretrain")
def paired_pretrain(inp: Inputs) -> str | None:
    df = inp.analysis.paired_pretrain
    df = df[(df["metric"] == inp.metric) & (df["intermediate"] == False)]  # noqa: E712
    if not len(df):
        return None
    return _tab(f"Pre-training effect on {METRIC_LABEL[inp.metric]} per cell without intermediate fine-tuning: "
                f"pre-trained minus from scratch, paired by seed.", "tab:paired-pretrain", "rrcccrrrr",
                _PAIRED_HEADER, _paired_rows(df, ["pretrain", "finetune"]), size=r"\footnotesize")


@table("transfer")
def transfer(inp: Inputs) -> str | None:
    df = inp.analysis.transfer_fit
    df = df[df["metric"] == inp.metric].sort_values(["pretrain", "intermediate"])
    df = df[df["alpha"].notna() | (df["n_points"] > 0)]  # conditions with nothing to fit are left out
    if not len(df):
        return None
    rows = [[size_label(r.pretrain), _yesno(r.intermediate), sci(r.k), num(r.alpha), integer(r.n_points)]
            for r in df.itertuples()]
    return _tab(Tex("Effective data transferred: fits of $D_T = k F^{\\alpha}$ per pre-training size."),
                "tab:transfer", "rlrrr", [["Pre-train", "Interm.", Tex("$k$"), Tex("$\\alpha$"), "Points"]],
                [rows])


@table("compare")
def compare(inp: Inputs) -> str | None:
    df = inp.analysis.compare.dropna(subset=["ours_mean", "paper_mean"])
    if not len(df):
        return None
    metrics = [m for m in ("miou", "accuracy") if m in set(df["metric"])]
    idx = df.set_index(["metric", "pretrain", "intermediate", "finetune"]).sort_index()
    keys = sorted({k[1:] for k in idx.index})
    header = [["", "", ""] + sum([[Tex(f"\\multicolumn{{4}}{{c}}{{{METRIC_LABEL[m]} (\\%)}}")] for m in metrics], []),
              ["Pre-train", "Interm.", "Fine-tune"] + ["Ours", "Paper", Tex("$\\Delta$"), Tex("$z$")] * len(metrics)]
    rules = [" ".join(f"\\cmidrule(lr){{{4 + 4 * k}-{7 + 4 * k}}}" for k in range(len(metrics))), ""]
    groups: list[list[list]] = []
    last = None
    for p, i, f in keys:
        if (p, i) != last:
            groups.append([])
            last = (p, i)
        row: list = [size_label(p) if not groups[-1] else "", _yesno(i) if not groups[-1] else "", integer(f)]
        for m in metrics:
            if (m, p, i, f) in idx.index:
                r = idx.loc[(m, p, i, f)]
                mark = "" if bool(r["within_tol"]) else Tex("$^{*}$")
                row += [num(r["ours_mean"]), num(r["paper_mean"]), num(r["diff"], sign=True) + mark, num(r["z"])]
            else:
                row += [DASH] * 4
        groups[-1].append(row)
    return _tab(Tex("Our cell means beside the published ones (counterparts of Tables 1, A2 and A3). "
                    "$\\Delta$ is ours minus published; $z$ uses both spreads."), "tab:compare",
                "rlr" + "rrrr" * len(metrics), header, groups, size=r"\scriptsize", rules=rules,
                note=Tex("$^{*}$ outside the tolerance given to the comparison."))


@table("headline")
def headline(inp: Inputs) -> str | None:
    h = inp.analysis.headline
    if not len(h):
        return None
    paper = "holds_in_paper" in h.columns

    def bold(x):
        return Tex(r"\textbf{" + str(escape(str(x))) + "}")

    rows = [[escape(claim_text(r.claim)), bold(r.holds_in_ours)] + ([escape(str(r.holds_in_paper))] if paper else [])
            + [Tex(escape(claim_text(r.detail)).replace(";", ";\\allowbreak{}"))] for r in h.itertuples()]
    header = [["Claim", "Ours"] + (["Published"] if paper else []) + ["How it was decided (our data)"]]
    note = Tex("`Published' applies the same tests to the original paper's tables (summary statistics only).") \
        if paper else ""
    return _tab("The original paper's headline claims, checked on our results.", "tab:headline",
                r"p{0.28\linewidth}l" + ("l" if paper else "") + r"p{0.38\linewidth}", header, [rows],
                size=r"\footnotesize", note=note)


PROVENANCE_ORDER = ("config_name", "config_hash", "description", "synthetic", "created", "git_commit", "device",
                    "package_version", "torch_version", "accelerate_version", "batch_sizes", "pets_root",
                    "intel_root", "imagenet_root", "cache_hash_pets", "cache_hash_intel", "cache_hash_imagenet",
                    "intermediate_accuracy_split")


@table("provenance")
def provenance(inp: Inputs) -> str | None:
    a = {k: v for k, v in inp.attrs.items() if k != "config_text"}
    keys = [k for k in PROVENANCE_ORDER if k in a] + sorted(k for k in a if k not in PROVENANCE_ORDER)
    rows = []
    for k in keys:
        v = a[k]
        text = str(v)
        if len(text) > 300:
            text = text[:300] + " ..."
        rows.append([breakable_tt(k), breakable_tt(text)])
    if inp.results_path is not None:
        rows.append([breakable_tt("results file"), breakable_tt(inp.results_path.as_posix())])
    rows.append([breakable_tt("analysis folder"), breakable_tt(inp.analysis.folder.as_posix())])
    return _tab("Provenance of the results this paper was built from (attributes of the results file).",
                "tab:provenance", r"p{0.25\linewidth}p{0.68\linewidth}", [["Attribute", "Value"]], [rows],
                size=r"\footnotesize")


def write_tables(inp: Inputs, out_dir: str | Path) -> list[Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fn in TABLES.items():
        text = fn(inp)
        if text is None:
            text = f"% Table '{name}' does not apply to these results; the paper leaves it out.\n"
        path = out_dir / f"{name}.tex"
        path.write_text(text)
        written.append(path)
    return written


def applicable(inp: Inputs) -> dict[str, bool]:
    return {name: fn(inp) is not None for name, fn in TABLES.items()}
