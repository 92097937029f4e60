"""The paper's tables, each rendered through ``templates/table.tex.j2`` (booktabs).

Cell means and SDs are the analysis's (``summary.csv`` through :func:`.inputs.cell_table`: SD over
seeds with ddof 1), like everything else in them. Each table is one ``.tex`` file in the output folder; a table that does
not apply to the results (e.g. no baseline row) is written as a comment-only stub so the build's
file list never changes, and the paper skips it (``flags`` from :mod:`.numbers`). The tables about
claims live in :mod:`.tables_claims` and are registered here with the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from .inputs import Inputs, cell_table, plateau_of
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
from .macros import FAMILY_TEX, family_name, family_short, plural
from .macros_effects import pretrain_arm_only
from .macros_study import paper_config
from .numbers import METRIC_LABEL, plateau_text
from .registry import TABLES as REGISTERED
from .render import table_tex as _tab
from .tables_claims import headline, skipped, verdicts, verdicts_all

# The functions that render the tables, by name; TABLES (below the last one) puts them in the
# registry's order and refuses a table that is drawn here but not registered, or the reverse.
_DRAWN: dict[str, Callable[[Inputs], str | None]] = {
    "verdicts": verdicts, "verdicts_all": verdicts_all, "headline": headline, "skipped": skipped}


def table(name: str):
    def deco(fn):
        if name in _DRAWN:
            raise ValueError(f"table {name!r} defined twice")
        _DRAWN[name] = fn
        return fn
    return deco


def _yesno(v: object) -> str:
    return "yes" if bool(v) else "no"


def _intermediate_word(v: object) -> str:
    return "with" if bool(v) else "without"


def _cells(inp: Inputs, intermediate: bool, pretrain: list[int]) -> list[list[list]]:
    acc, miou = cell_table(inp, "accuracy"), cell_table(inp, "miou")
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
    note = (f"Mean $\\pm$ sample SD over {ns} seeds, in percent on the held-out test images." if ns > 1 else
            "The one seed's value (no SD with one seed), in percent on the held-out test images.")
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


def _stage_row(name: str, data: str, st, optional: list[str]) -> list:
    row = [name, data, integer(st.epochs), Tex(f"{st.lr:g}".replace("e-0", "e-")), Tex(f"{st.weight_decay:g}"),
           Tex(f"{st.gamma:g}"), Tex("\\{" + ", ".join(str(m) for m in st.milestones) + "\\}")]
    if "batch" in optional:
        row.append(integer(st.batch_size))
    if "warmup" in optional:
        row.append(integer(st.warmup_epochs))
    if "clip" in optional:
        row.append(Tex(f"{st.grad_clip:g}") if st.grad_clip else "off")
    return row


@table("hyper")
def hyper(inp: Inputs) -> str | None:
    cfg = inp.config
    if cfg is None:
        return None
    paper = paper_config()
    stages = (("Pre-training (SimMIM)", "pretrain", "ImageNet subset"), ("Intermediate", "intermediate", "Intel scenes"),
              ("Fine-tuning", "finetune", "Pets tri-maps"))
    if inp.synthetic:
        stages = tuple((a, b, "synthetic " + c.split()[0]) for a, b, c in stages)
    confs = [cfg] + ([paper] if paper is not None else [])
    # warm-up and clipping are shown only where some stage uses them (else the note says so)
    optional = ["batch"] + [k for k, f in (("warmup", "warmup_epochs"), ("clip", "grad_clip"))
                            if any(getattr(getattr(c, a), f) for c in confs for _, a, _ in stages)]
    groups = []
    for name, attr, data in stages:
        rows = [_stage_row(name, data, getattr(cfg, attr), optional)]
        if paper is not None:
            prow = _stage_row("", "paper (A1)", getattr(paper, attr), optional)
            if "batch" in optional:
                prow[7] = "not given"
            rows.append(prow)
        groups.append(rows)
    header = ["Stage", "Data", "Epochs", "LR", "WD", "Gamma", "Milestones", "Batch"] + \
        [{"warmup": "Warm-up", "clip": "Clip"}[k] for k in optional if k != "batch"]
    note = (f"Configuration {cfg.name} (hash {inp.attrs.get('config_hash', cfg.hash)}), read from the results file"
            + ("; each stage's second row is the original paper's Appendix A1 setting" if paper is not None else "")
            + ". AdamW optimiser and a step schedule that multiplies the learning rate by gamma at each milestone "
              "epoch" + ("; no warm-up and no gradient clipping." if len(optional) == 1 else "."))
    return _tab("Training settings of the three stages as recorded in the results file"
                + (", beside the original paper's." if paper is not None else "."), "tab:hyper",
                "ll" + "r" * 4 + "c" + "r" * (len(header) - 7), [header], groups, size=r"\footnotesize", note=note)


@table("fits")
def fits(inp: Inputs) -> str | None:
    df = inp.analysis.fits
    df = df[df["metric"] == inp.metric]
    if not len(df):
        return None
    fams = sorted(df["family"].astype(str).unique(), key=lambda f: (f == "log2", list(FAMILY_TEX).index(f)
                                                                   if f in FAMILY_TEX else 99, f))
    plateaus = {(int(p), bool(i)): plateau_of(inp, int(p), bool(i))
                for p, i in df[["pretrain", "intermediate"]].drop_duplicates().itertuples(index=False)}
    show_f95 = any(pl and pl["identified"] and not isnan(pl["f95"]) for pl in plateaus.values())
    show_plateau = any(pl and pl["identified"] for pl in plateaus.values())  # else a constant column
    header = [["Pre-train", "Interm."] + [family_short(f) for f in fams] + ["Best"]
              + (["Plateau (%) [95% CI]"] if show_plateau else []) + ([Tex("$F_{95}$")] if show_f95 else [])]
    groups = []
    for p, gp in df.groupby("pretrain", sort=True):
        rows = []
        for i, g in gp.groupby("intermediate", sort=True):
            w = {str(r.family): r.akaike_weight for r in g.itertuples()}
            best = g[g["best"] == True]  # noqa: E712
            pl = plateaus[(int(p), bool(i))]
            row = [size_label(p), _yesno(i)] + [num(w.get(f, np.nan)) for f in fams] \
                + [family_name(best.iloc[0]["family"]) if len(best) else DASH]
            if show_plateau:
                row.append(plateau_text(pl))
            if show_f95:
                row.append(integer(round(pl["f95"])) if pl and pl["identified"] and not isnan(pl["f95"]) else DASH)
            rows.append(row)
        groups.append(rows)
    note = Tex("Columns per family (short names of Table~\\ref{tab:families}): Akaike weight (AICc) of each curve "
               "family; the log-linear family has no plateau. "
               + ("Plateau: asymptote of the best saturating family with its bootstrap interval, or `not identified' "
                  "(Section~\\ref{sec:definitions})." if show_plateau else
                  "No condition has an identified plateau (Section~\\ref{sec:definitions}), so none is listed.")
               + (" $F_{95}$: fine-tune images needed to reach 95\\% of the plateau." if show_f95 else ""))
    return _tab(f"Curve families fitted to {METRIC_LABEL[inp.metric]} against fine-tune size, per condition.",
                "tab:fits", "rl" + "r" * len(fams) + "l" + ("c" if show_plateau else "") + ("r" if show_f95 else ""),
                header, groups, size=r"\footnotesize\setlength{\tabcolsep}{4pt}", note=note)


PERM_MIN_SEEDS = 5  # with n seeds the exact sign-flip p cannot go below 2 / 2^n (0.0625 at n = 4)
DZ_MIN_SEEDS = 3  # d_z = mean / SD of the differences: with 2 seeds the SD rests on one degree of freedom


def _paired(df: pd.DataFrame, with_arm: bool) -> tuple[list, list[list[list]], str]:
    """(header, row groups, note) of a per-cell paired table; columns that the number of seeds
    makes uninformative are left out, and the note says which and why."""
    nmax = int(df["n"].max()) if len(df) else 0
    perm = bool(df["perm_informative"].any()) if "perm_informative" in df.columns else nmax >= PERM_MIN_SEEDS
    dz = nmax >= DZ_MIN_SEEDS and bool(df["dz"].notna().any())
    header = ["Pre-train"] + (["Interm."] if with_arm else []) + ["Fine-tune", Tex("$\\Delta$ $\\pm$ SE"), "95% CI"] \
        + ([Tex("$d_z$")] if dz else []) + [Tex("$p_t$")] + ([Tex("$p_{\\mathrm{perm}}$")] if perm else []) \
        + [Tex("$p_{\\mathrm{Holm}}$")]
    groups = []
    for p, g in df.sort_values(["pretrain"] + (["intermediate"] if with_arm else []) + ["finetune"]).groupby(
            "pretrain", sort=True):
        rows = []
        last_arm = None
        for k, r in enumerate(g.itertuples()):
            arm = _yesno(r.intermediate) if with_arm else None
            rows.append(([size_label(p)] if k == 0 else [""]) + ([arm if arm != last_arm else ""] if with_arm else [])
                        + [integer(r.finetune), pm(r.mean_delta, r.se), interval(r.ci_lo, r.ci_hi)]
                        + ([num(r.dz) if r.n >= DZ_MIN_SEEDS else DASH] if dz else []) + [pvalue(r.p_t)]
                        + ([pvalue(r.p_perm)] if perm else []) + [pvalue(r.p_holm)])
            last_arm = arm
        groups.append(rows)
    note = f"Paired by seed ({plural(nmax, 'seed')} per cell); SE and the 95% CI from the paired t distribution."
    if nmax < 2:  # one difference per cell: nothing to test it against
        note = ("Paired by seed (1 seed per cell): each cell has one difference and no spread, so its SE, interval "
                "and tests are not testable (--); the pooled model, where it can be fitted, gives intervals.")
    elif not perm:
        note += (f" The exact sign-flip test is left out: with {nmax} seeds its smallest possible p is "
                 f"{2 / 2 ** nmax:.3g}.")
    if 2 <= nmax < DZ_MIN_SEEDS:
        note += f" The standardised effect $d_z$ needs at least {DZ_MIN_SEEDS} seeds and is left out."
    return [header], groups, Tex(str(escape(note)).replace(r"\$d\_z\$", "$d_z$"))


@table("paired_intermediate")
def paired_intermediate(inp: Inputs) -> str | None:
    df = inp.analysis.paired_intermediate
    df = df[df["metric"] == inp.metric]
    if not len(df):
        return None
    header, groups, note = _paired(df, False)
    return _tab(f"Intermediate fine-tuning effect on {METRIC_LABEL[inp.metric]} per cell: with minus without the "
                "intermediate stage.", "tab:paired-intermediate", "rrccc" + "r" * (len(header[0]) - 5),
                header, groups, size=r"\footnotesize", note=note)


@table("paired_pretrain")
def paired_pretrain(inp: Inputs) -> str | None:
    df = inp.analysis.paired_pretrain
    df = df[df["metric"] == inp.metric]
    if pretrain_arm_only(inp):
        df = df[df["intermediate"] == False]  # noqa: E712 - the cells the pooled model uses
    if not len(df):
        return None
    arms = df["intermediate"].nunique() > 1
    header, groups, note = _paired(df, arms)
    return _tab(f"Pre-training effect on {METRIC_LABEL[inp.metric]} per cell: pre-trained minus from scratch"
                + (", with and without the intermediate stage (the cells the pooled model uses)." if arms
                   else ", without the intermediate stage (the cells the pooled model uses)."),
                "tab:paired-pretrain", ("rl" if arms else "r") + "rccc" + "r" * (len(header[0]) - (6 if arms else 5)),
                header, groups, size=r"\footnotesize", note=note)


@table("transfer")
def transfer(inp: Inputs) -> str | None:
    df = inp.analysis.transfer_fit
    df = df[(df["metric"] == inp.metric) & df["alpha"].notna() & (df["n_points"] >= 3)]
    df = df.sort_values(["pretrain", "intermediate"])
    if not len(df):
        return None
    rows = [[size_label(r.pretrain), _yesno(r.intermediate), sci(r.k), num(r.alpha), integer(r.n_points)]
            for r in df.itertuples()]
    return _tab(Tex("Effective data transferred: fits of $D_T = k F^{\\alpha}$ per condition (pre-training size "
                    "and intermediate stage), only where at least three values of $D_T$ are positive."),
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


PROVENANCE_ORDER = ("config_name", "config_hash", "description", "synthetic", "created", "git_commit", "device",
                    "package_version", "torch_version", "accelerate_version", "batch_sizes", "pets_root",
                    "intel_root", "imagenet_root", "cache_hash_pets", "cache_hash_intel", "cache_hash_imagenet",
                    "intermediate_accuracy_split")


def provenance_value(key: str, value: object) -> Tex:
    """One provenance attribute for print: flags as yes/no, device counts in words, prose as prose
    (wrapped at spaces), identifiers and paths in typewriter type (breakable)."""
    text = str(value)
    if key == "synthetic":
        return Tex("yes" if text.strip().lower() not in ("", "0", "false", "no") else "no")
    if key == "device":
        text = re.sub(r"\bcpu\b", "CPU", text)
        text = re.sub(r"\b1 threads\b", "1 thread", text)
        return escape(text)
    if key == "description" or " " in text.strip():
        return escape(text)
    return breakable_tt(text)


@table("provenance")
def provenance(inp: Inputs) -> str | None:
    a = {k: v for k, v in inp.attrs.items() if k != "config_text"}
    keys = [k for k in PROVENANCE_ORDER if k in a] + sorted(k for k in a if k not in PROVENANCE_ORDER)
    rows = [[breakable_tt(k), provenance_value(k, a[k])] for k in keys]
    if inp.results_path is not None:
        rows.append([breakable_tt("results file"), breakable_tt(inp.results_path.as_posix())])
    rows.append([breakable_tt("analysis folder"), breakable_tt(inp.analysis.folder.as_posix())])
    return _tab("Provenance of the results this paper was built from (attributes of the results file).",
                "tab:provenance", r"p{0.25\linewidth}p{0.68\linewidth}", [["Attribute", "Value"]], [rows],
                size=r"\footnotesize")


def _registered(drawn: dict[str, Callable[[Inputs], str | None]]) -> dict[str, Callable[[Inputs], str | None]]:
    unregistered = [n for n in drawn if n not in REGISTERED]
    undrawn = [n for n in REGISTERED if n not in drawn]
    if unregistered or undrawn:
        raise ValueError(f"report.tables: tables not in report/registry.py TABLES: {unregistered}; "
                         f"registered tables without a function: {undrawn}")
    return {name: drawn[name] for name in REGISTERED}


TABLES: dict[str, Callable[[Inputs], str | None]] = _registered(_DRAWN)


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
