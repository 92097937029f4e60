"""The paper's tables about claims: the verdict summary with each rule, every claim by condition,
the original paper's headline claims, and what the analysis left out.

Registered in :data:`.tables.TABLES` like the others; rendered through the same booktabs template.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..analysis.headline import RULE
from .inputs import Inputs, plateau_of
from .latex import Tex, escape, interval, isnan, num, pvalue
from .macros import METRIC_LABEL, readable
from .macros_claims import _PER_CONDITION, claim_groups, rule_of, shows_estimate
from .render import table_tex as _tab
from .skipped import skipped_rows
from .statements import ci, signed, verdict_counts
from .statements_verdicts import decision_cell, decision_phrase, row_decision

VERDICT_ROWS_PER_PAGE = 44  # the claims appendix is split into tables of about this many rows (one per page)


def verdicts(inp: Inputs) -> str | None:
    """Summary: study-level claims one per row, per-condition claims one row per kind, each with the
    number of the rule that decided it; the rules are written out once, below the table."""
    v = _verdict_rows(inp)
    if not len(v):
        return None
    rules: list[str] = []

    def rule_no(key: str, row) -> str:
        text = str(rule_of(key, row))
        if text not in rules:
            rules.append(text)
        return str(rules.index(text) + 1)

    rows = []
    for g in claim_groups(v, METRIC_LABEL[inp.metric]):
        if g["per_condition"]:
            rows.append([escape(g["claim"]), unbroken_verdicts(escape(verdict_counts(g["counts"]))),
                         rule_no(g["key"], g["rows"][0])])
        else:
            r = g["rows"][0]
            d = row_decision(r)
            if d["by"]:
                est = Tex(": " + str(decision_phrase(d["by"], d["est"], d["lo"], d["hi"], d["unit"], d["need"])))
            else:
                est = "" if isnan(r.estimate) or not shows_estimate(g["key"], r.statistic) else \
                    Tex(f" ({signed(r.estimate)}, {ci(r.ci_lo, r.ci_hi)})")
            rows.append([escape(g["claim"]), Tex(r"\textbf{\mbox{" + str(escape(str(r.verdict).strip())) + "}}") + est,
                         rule_no(g["key"], r)])
    note = Tex("Rules. " + " ".join(f"({k}) {t}." for k, t in enumerate(rules, 1))
               + " Claims tested once per condition are summarised by their verdict counts and listed in full in "
               "Table~\\ref{tab:verdicts-all}. Each study-level verdict names the quantity that decided it (the "
               "first condition of its rule that failed, or the claimed trend when all held), with its unit.")
    return _tab("Claims tested by the analysis, their verdicts and the rule (listed below) that decided each.",
                "tab:verdicts", r"p{0.5\linewidth}p{0.36\linewidth}c", [["Claim", "Verdict", "Rule"]], [rows],
                size=r"\footnotesize\setlength{\tabcolsep}{4pt}", note=note)


def _verdict_rows(inp: Inputs) -> pd.DataFrame:
    v = inp.analysis.verdicts
    return v[v["metric"] == inp.metric] if "metric" in v.columns else v


def verdicts_all(inp: Inputs) -> str | None:
    v = _verdict_rows(inp)
    if not len(v):
        return None
    groups: list[list] = []
    for g in claim_groups(v, METRIC_LABEL[inp.metric]):
        rows = []
        for r in g["rows"]:
            d = row_decision(r)
            est, lo, hi, p = d["est"], d["lo"], d["hi"], d["p"]
            if g["key"] == "H2_F" and not d["by"]:  # the condition's one plateau, as in Table fits
                m = re.search(r"_P(\d+)_I(\d)$", str(r.claim_id))
                pl = plateau_of(inp, int(m.group(1)), m.group(2) == "1") if m else None
                ok = bool(pl and pl["identified"])
                est, lo, hi = (pl["plateau"], pl["plateau_lo"], pl["plateau_hi"]) if ok else (np.nan,) * 3
            cond = short_condition(str(r.claim_id))
            units = {row_decision(x)["unit"] for x in g["rows"]}
            one_unit = g["per_condition"] and len(units) == 1
            rows.append([escape(g["claim"] if not cond else cond),
                         decision_cell(_no_article(d["by"]), est, lo, hi, "" if one_unit else d["unit"]),
                         num(est, 0 if d["unit"] == "" and d["by"] else 2), interval(lo, hi), pvalue(p),
                         _verdict_cell(r.verdict)])
        if g["per_condition"]:
            unit = f" (estimates in {units.pop()})" if one_unit and next(iter(units)) else ""
            rows.insert(0, [Tex(r"\multicolumn{6}{l}{\textit{" + str(escape(g["claim"] + unit)) + ":}}")])
        groups.append(rows)
    # one float per page at most: blocks of about 50 rows, the later ones marked as continued
    pages: list[list] = [[]]
    for grp in groups:
        if pages[-1] and sum(len(x) for x in pages[-1]) + len(grp) > VERDICT_ROWS_PER_PAGE:
            pages.append([])
        pages[-1].append(grp)
    caption = escape(f"Every claim tested on {METRIC_LABEL[inp.metric]}, one row per condition for the claims "
                     "tested per condition (rules as in ") + Tex(
        "Table~\\ref{tab:verdicts}). Each row prints the quantity that decided its verdict, in the unit given "
        "beside it or after the claim; p is that quantity's p value (Holm-adjusted for a cell). $P$: pre-training "
        "size, $F$: fine-tune size, $I$: the intermediate stage.")
    header = [["Claim / condition", "Decided by (unit)", "Estimate", "95% CI", "p", "Verdict"]]
    return "\n".join(_tab(caption if k == 0 else Tex("Every claim (continued from Table~\\ref{tab:verdicts-all})."),
                           "tab:verdicts-all" if k == 0 else f"tab:verdicts-all-{k}",
                           r"p{0.2\linewidth}p{0.3\linewidth}rccl", header, page, size=r"\scriptsize")
                     for k, page in enumerate(pages))


def short_condition(claim_id: str) -> str:
    """'P = 100, I off' / 'F = 80, I on' / '' (the condition of a per-condition claim id, in the paper's symbols)."""
    m = _PER_CONDITION.search(claim_id)
    if not m:
        return ""
    what = f"P = {int(m.group(1))}" if m.group(1) is not None else f"F = {int(m.group(2))}"
    return f"{what}, I {'on' if m.group(3) == '1' else 'off'}"


def _no_article(text: str) -> str:
    return text[4:] if text.startswith("the ") else text


_VERDICT_WORDS = re.compile(r"\b(not supported|not testable|inconclusive|supported)\b")


def unbroken_verdicts(text: Tex) -> Tex:
    """Every verdict phrase of a table cell in an \\mbox, so LaTeX never hyphenates or splits it."""
    return Tex(_VERDICT_WORDS.sub(lambda m: r"\mbox{" + m.group(1) + "}", str(text)))


def _verdict_cell(v: object) -> Tex:
    """A verdict that is never hyphenated: 'not supported' and 'not testable' stay on one line each word."""
    return Tex(r"\mbox{" + str(escape(str(v).strip())) + "}")



def headline(inp: Inputs) -> str | None:
    h = inp.analysis.headline
    if "metric" in h.columns:
        h = h[h["metric"] == inp.metric]
    if not len(h):
        return None
    paper = "holds_in_paper" in h.columns

    def bold(x):
        return Tex(r"\textbf{" + str(escape(str(x))) + "}")

    def detail(x):
        text = re.sub(r"^(miou|accuracy);\s*", "", str(x))
        return Tex(escape(readable(text)).replace(";", ";\\allowbreak{}"))

    rows = []
    for r in h.itertuples():
        how = detail(r.detail)
        if paper and isinstance(getattr(r, "detail_paper", None), str):
            how = Tex(r"\textit{Ours:} " + how + r"\newline\textit{Published:} " + detail(r.detail_paper))
        published = [escape(str(r.holds_in_paper))] if paper else []
        rows.append([escape(readable(r.claim)), bold(r.holds_in_ours)] + published + [how])
    header = [["Claim", "Ours"] + (["Published"] if paper else []) + ["How it was decided (verdict counts)"]]
    note = Tex(escape(RULE[:1].upper() + RULE[1:]) + ". `Published' applies the same tests to the original "
               "paper's tables (means and spreads only).") if paper else ""
    return _tab("The original paper's headline claims, checked on our results.", "tab:headline",
                r"p{0.25\linewidth}l" + ("l" if paper else "") + r"p{0.45\linewidth}", header, [rows],
                size=r"\footnotesize", note=note)


def _math_words(text: Tex) -> Tex:
    """The analysis's plain-text symbols (D_T = k F^alpha, d_z, n >= 3) as LaTeX math."""
    s = str(text).replace(r"D\_T = k F\textasciicircum{}alpha", r"$D_T = k F^{\alpha}$")
    s = s.replace(r"D\_T", r"$D_T$").replace(r"d\_z", r"$d_z$").replace(r"F\_eff", r"$F_{\mathrm{eff}}$")
    s = re.sub(r"\b([nF]) \\textgreater\{\}= (\d+)", r"$\1 \\ge \2$", s)
    return Tex(s)


def skipped(inp: Inputs) -> str | None:
    rows = [[escape(w), _math_words(escape(t))] for w, t in skipped_rows(inp)]
    if not rows:
        return None
    return _tab("Tests and fits the analysis left out, and why.", "tab:skipped", r"p{0.3\linewidth}p{0.62\linewidth}",
                [["Condition", "What was left out, and why"]], [rows], size=r"\footnotesize")
