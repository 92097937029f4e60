"""The paper's per-cell paired tables (the intermediate and the pre-training effect, cell by cell).

Registered in :data:`.tables.TABLES` like the others. A cell's paired t interval with 2 seeds rests on
one degree of freedom (some 25 SEs wide), so it is printed as "n = 2: no interval"; each note states
the size of the Holm family its adjusted p values count (the analysis's ``holm_m``).
"""

from __future__ import annotations

import pandas as pd

from .inputs import Inputs
from .latex import DASH, Tex, escape, integer, interval, isnan, num, pm, pvalue, size_label
from .macros import plural
from .macros_effects import pretrain_arm_only
from .numbers import METRIC_LABEL
from .render import table_tex as _tab


def _yesno(v: object) -> str:
    return "yes" if bool(v) else "no"


def cell_interval(n: object, lo: object, hi: object) -> Tex:
    """A per-cell paired t interval, or 'n = 2: no interval' where it would rest on one degree of freedom."""
    if not isnan(n) and int(n) <= 2:
        return Tex(f"n = {int(n)}: no interval")
    return interval(lo, hi)


def holm_family_note(df: pd.DataFrame, with_arm: bool) -> str:
    """'Holm's correction counts the 15 cells of each intermediate setting as one family.' (from holm_m)."""
    if "holm_m" not in df.columns or not len(df):
        return "Holm's correction is applied over the cells of this table."
    if with_arm:
        sizes = {("with" if bool(i) else "without"): int(g.holm_m.max()) for i, g in df.groupby("intermediate")}
        parts = [f"{m} cells {w} the intermediate stage" for w, m in sizes.items()]
        return "Holm's correction counts each intermediate setting as its own family: " + " and ".join(parts) + "."
    return f"Holm's correction counts the {int(df.holm_m.max())} cells of this table as one family."


PERM_MIN_SEEDS = 5  # with n seeds the exact sign-flip p cannot go below 2 / 2^n (0.0625 at n = 4)
DZ_MIN_SEEDS = 3  # d_z = mean / SD of the differences: with 2 seeds the SD rests on one degree of freedom


def _paired(df: pd.DataFrame, with_arm: bool) -> tuple[list, list[list[list]], str]:
    """(header, row groups, note) of a per-cell paired table; columns that the number of seeds
    makes uninformative are left out, and the note says which and why."""
    nmax = int(df["n"].max()) if len(df) else 0
    perm = bool(df["perm_informative"].any()) if "perm_informative" in df.columns else nmax >= PERM_MIN_SEEDS
    dz = nmax >= DZ_MIN_SEEDS and bool(df["dz"].notna().any())
    delta = Tex("$\\bar\\Delta$ $\\pm$ SE (points)")
    header = ["Pre-train"] + (["Interm."] if with_arm else []) + ["Fine-tune", delta, "95% CI"] \
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
                        + [integer(r.finetune), pm(r.mean_delta, r.se), cell_interval(r.n, r.ci_lo, r.ci_hi)]
                        + ([num(r.dz) if r.n >= DZ_MIN_SEEDS else DASH] if dz else []) + [pvalue(r.p_t)]
                        + ([pvalue(r.p_perm)] if perm else []) + [pvalue(r.p_holm)])
            last_arm = arm
        groups.append(rows)
    note = f"Paired by seed ({plural(nmax, 'seed')} per cell); SE and the 95% CI from the paired t distribution"
    note += (f" (with {nmax} seeds it has {nmax - 1} degree of freedom and an interval some 25 SEs wide, so none is "
             "printed)." if nmax == 2 else ".")
    if nmax < 2:  # one difference per cell: nothing to test it against
        note = ("Paired by seed (1 seed per cell): each cell has one difference and no spread, so its SE, interval "
                "and tests are not testable (--); the pooled model, where it can be fitted, gives intervals.")
    note += " " + holm_family_note(df, with_arm)
    if nmax >= 2 and not perm:
        note += (f" The exact sign-flip test is left out: with {nmax} seeds its smallest possible p is "
                 f"{2 / 2 ** nmax:.3g}.")
    if 2 <= nmax < DZ_MIN_SEEDS:
        note += f" The standardised effect $d_z$ needs at least {DZ_MIN_SEEDS} seeds and is left out."
    return [header], groups, Tex(str(escape(note)).replace(r"\$d\_z\$", "$d_z$"))


def paired_intermediate(inp: Inputs) -> str | None:
    df = inp.analysis.paired_intermediate
    df = df[df["metric"] == inp.metric]
    if not len(df):
        return None
    header, groups, note = _paired(df, False)
    return _tab(f"Intermediate fine-tuning effect on {METRIC_LABEL[inp.metric]} per cell: with minus without the "
                "intermediate stage.", "tab:paired-intermediate", "rrccc" + "r" * (len(header[0]) - 5),
                header, groups, size=r"\footnotesize", note=note)


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
