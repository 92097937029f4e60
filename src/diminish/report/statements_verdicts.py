"""Sentences and table cells that state a verdict together with the quantity that decided it.

The analysis (:mod:`diminish.analysis.rules`) records for every verdict the one quantity that
decided it: what it is (``by``), its estimate and 95% interval, its unit and the side of zero the
rule needs it on (``need``). The functions here word that quantity; where it lies ("above 0",
"below 0", "includes 0", "has the claimed sign") is read from its own numbers, never from the
verdict, so a sentence cannot cite a number that contradicts its verdict word. A verdict without a
recorded deciding quantity (an older analysis folder) falls back to the claim's own statistic.
"""

from __future__ import annotations

from .latex import Tex, escape, isnan, num
from .statements import _sign, ci, side, signed

_WORD = {+1: "above 0", -1: "below 0"}


def where(est: object, lo: object, hi: object, need: int) -> str:
    """Where a deciding quantity lies, from its numbers: 'above 0, as the claim needs', 'below 0, where the claim
    needs it above 0', 'its interval includes 0', or, with no interval, whether the estimate has the needed sign."""
    s = side(lo, hi)
    need = int(need) if not isnan(need) else 0
    if isnan(lo) or isnan(hi):
        e = _sign(est)
        if not need or not e:
            return ""
        return "the sign the claim needs" if e == need else "the opposite of the sign the claim needs"
    if s == 0:
        return "its interval includes 0"
    if not need:
        return _WORD[s]
    return f"{_WORD[s]}, as the claim needs" if s == need else f"{_WORD[s]}, where the claim needs it {_WORD[need]}"


def quantity(est: object, lo: object, hi: object, unit: str) -> Tex:
    """'-2.54 points (95% CI [-3.10, -1.98])', or the bare value for a weight or count."""
    if isnan(est):
        return Tex("not estimated")
    u = f" {escape(unit)}" if unit else ""
    if unit == "":  # a count
        return Tex(f"{num(est, 0)}")
    if unit == "weight":
        return Tex(f"{num(est)} (Akaike weight)")
    return Tex(f"{signed(est)}{u}" + ("" if isnan(lo) or isnan(hi) else f" ({ci(lo, hi)})"))


def decision_phrase(by: str, est: object, lo: object, hi: object, unit: str, need: int) -> Tex:
    """'the effect at F = 320, -2.54 points (95% CI [...]), below 0, where the claim needs it above 0'."""
    w = where(est, lo, hi, need)
    return Tex(f"{escape(by)}, {quantity(est, lo, hi, unit)}" + (f", {w}" if w else ""))


def decision_sentence(claim: str, verdict: str, by: str, est: object, lo: object, hi: object, unit: str,
                      need: int) -> Tex:
    """'That <claim> is <verdict>: decided by <the deciding quantity with its number and where it lies>.'"""
    v = str(verdict).strip()
    head = f"That {escape(claim)} is \\textit{{{escape(v)}}}"
    if v == "not testable":
        value = "" if isnan(est) else f" ({num(est, 0)})"
        return Tex(f"{head} with this design: it is decided by {escape(by)}{value}, too few for the test.")
    if not by:
        return Tex(f"{head}.")
    return Tex(f"{head}: it is decided by {decision_phrase(by, est, lo, hi, unit, need)}.")


def decision_cell(by: str, est: object, lo: object, hi: object, unit: str) -> Tex:
    """The table cell naming what decided a verdict: 'the effect at F = 320 (points)'."""
    if not by:
        return Tex("")
    return Tex(escape(by) + (f" ({escape(unit)})" if unit else ""))


def row_decision(r: object) -> dict:
    """The deciding quantity of a verdicts.csv row (named tuple), falling back to the row's own statistic."""
    by = getattr(r, "decided_by", None)
    if not isinstance(by, str) or not by.strip():
        return dict(by="", est=r.estimate, lo=r.ci_lo, hi=r.ci_hi, unit="", need=0, p=r.p)
    return dict(by=by.strip(), est=r.decisive_estimate, lo=r.decisive_lo, hi=r.decisive_hi,
                unit=str(r.decisive_unit) if isinstance(r.decisive_unit, str) else "",
                need=0 if isnan(r.decisive_need) else int(r.decisive_need), p=r.decisive_p)
