"""One function per verdict rule; each returns the verdict together with the quantity that decided it.

A rule with several conditions (a slope, the sign at the smallest F, the sign at every F, the
average) is decided by one of them: the first condition that fails, or, when all hold, the one the
claim is about. :class:`Decision` carries that quantity: what it is (``by``, a noun phrase such as
"the effect at F = 320"), its estimate, 95% interval, p where there is one, its unit, and the side
of zero the rule needs it on (``need``: +1 above, -1 below). verdicts.csv stores these beside the
claim's own statistic (columns ``decided_by``, ``decisive_estimate``, ``decisive_lo``, ``decisive_hi``,
``decisive_p``, ``decisive_unit``, ``decisive_need``), and the paper's sentence and tables print them,
so a reader sees the number that decided each verdict rather than a statistic that did not.

Verdicts: "supported", "not supported", "inconclusive" (the data cannot tell) and "not testable"
(the design cannot test the claim; never counted as inconclusive).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, NOT_TESTABLE = "supported", "not supported", "inconclusive", "not testable"
VERDICTS = (SUPPORTED, INCONCLUSIVE, NOT_SUPPORTED, NOT_TESTABLE)
DECISION_COLS = ["decided_by", "decisive_estimate", "decisive_lo", "decisive_hi", "decisive_p", "decisive_unit",
                 "decisive_need"]


@dataclass(frozen=True)
class Decision:
    verdict: str
    by: str                     # the deciding quantity, as a noun phrase ("the slope in log2 F")
    estimate: float = np.nan
    lo: float = np.nan          # its 95% interval (NaN where only the estimate decides)
    hi: float = np.nan
    unit: str = "points"
    need: int = 0               # the side of zero the rule needs this quantity on (+1, -1; 0: none)
    p: float = np.nan

    def columns(self) -> dict:
        d = asdict(self)
        return dict(decided_by=d["by"], decisive_estimate=d["estimate"], decisive_lo=d["lo"], decisive_hi=d["hi"],
                    decisive_p=d["p"], decisive_unit=d["unit"], decisive_need=d["need"])


def side(lo, hi) -> int:
    """+1 if the interval lies above 0, -1 if below, 0 if it contains 0 or is undefined."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return 0
    return 1 if lo > 0 else (-1 if hi < 0 else 0)


def _q(stat: dict | None, key: str) -> float:
    return float(stat.get(key, np.nan)) if stat else np.nan


def _dec(verdict: str, by: str, stat: dict | None, unit: str, need: int) -> Decision:
    return Decision(verdict, by, _q(stat, "estimate"), _q(stat, "ci_lo"), _q(stat, "ci_hi"), unit, need,
                    _q(stat, "p"))


def directional(stat: dict, sign: int, by: str, unit: str = "points") -> Decision:
    """Supported if the 95% interval lies on the claimed side ``sign``, not supported if on the other, else
    inconclusive (also when there is no interval)."""
    s = side(_q(stat, "ci_lo"), _q(stat, "ci_hi"))
    v = SUPPORTED if s == sign else NOT_SUPPORTED if s == -sign else INCONCLUSIVE
    return _dec(v, by, stat, unit, sign)


RISE = "the rise over the measured range (last minus first level)"


def diminishing(stat: dict, returns: dict | None, sign: int, by: str, unit: str) -> Decision:
    """A diminishing-returns statistic with claimed sign ``sign`` that needs returns to diminish: not supported
    when the metric falls over the range (decided by the rise), supported when the statistic's interval is on
    the claimed side and the rise is shown (decided by the statistic), inconclusive when the statistic would
    support but the rise is not shown (decided by the rise); otherwise the statistic decides."""
    r = side(_q(returns, "ci_lo"), _q(returns, "ci_hi"))
    if r < 0:
        return _dec(NOT_SUPPORTED, RISE, returns, "points", +1)
    d = directional(stat, sign, by, unit)
    if d.verdict == SUPPORTED and r == 0:
        return _dec(INCONCLUSIVE, RISE, returns, "points", +1)
    return d


def every_cell(est, lo, hi, p_holm, sign: int, cells: list[str], n=None) -> Decision:
    """'The difference has sign ``sign`` in every cell': supported if every cell's interval lies on that side
    (decided by the weakest cell, the one whose interval end comes closest to 0); not supported if a cell goes
    the other way with Holm p < 0.05 (decided by that cell, with its Holm p); else inconclusive (decided by the
    weakest cell, whose interval does not lie on the claimed side)."""
    est, lo, hi, ph = (np.asarray(x, float) for x in (est, lo, hi, p_holm))
    n = np.full(len(est), np.inf) if n is None else np.asarray(n, float)
    ok = np.isfinite(est)
    if not ok.any():
        return Decision(INCONCLUSIVE, "no cell with a difference", need=sign)
    idx = np.flatnonzero(ok)
    wrong = [i for i in idx if np.sign(est[i]) == -sign and ph[i] < 0.05]
    if wrong:
        i = min(wrong, key=lambda k: ph[k])
        return Decision(NOT_SUPPORTED, f"the cell {cells[i]}", est[i], lo[i], hi[i], "points", sign, ph[i])
    near = np.where(np.isfinite(lo) & np.isfinite(hi), np.where(sign > 0, lo, -hi), -np.inf)  # >0: on the side
    i = min(idx, key=lambda k: near[k])
    v = SUPPORTED if all(side(lo[k], hi[k]) == sign for k in idx) else INCONCLUSIVE
    if n[i] <= 2:  # a 1-df interval is not printed: say where it lies instead
        at = {+1: "lies above 0", -1: "lies below 0", 0: "includes 0"}[side(lo[i], hi[i])]
        return Decision(v, f"the weakest cell, {cells[i]}, whose t interval on 1 degree of freedom (n = 2) {at}",
                        est[i], np.nan, np.nan, "points", sign, ph[i])
    return Decision(v, f"the weakest cell, {cells[i]}", est[i], lo[i], hi[i], "points", sign, ph[i])


def narrows(mean: dict | None, slope: dict, by_f: pd.DataFrame, sign: int, axis_unit: str) -> Decision:
    """'An effect of sign ``sign`` narrows as F grows'. Checked in this order, the first that applies decides:
    not supported if the slope's interval shows the effect growing, the effect's interval at the smallest F, at
    any F or on average lies on the other side; supported if the effect at the smallest F has the claimed sign
    (interval), the slope the opposite sign (interval) and the estimate at every F the claimed sign (then the
    slope decides); inconclusive otherwise, decided by the first of those three conditions that fails."""
    if by_f.empty or not np.isfinite(_q(slope, "estimate")):
        return Decision(INCONCLUSIVE, "no effect per fine-tune size or no slope", need=sign)
    b = by_f.sort_values("finetune")
    rows = [dict(estimate=r.estimate, ci_lo=r.ci_lo, ci_hi=r.ci_hi, F=int(r.finetune)) for r in b.itertuples()]
    at = [f"the effect at F = {r['F']}" for r in rows]
    if side(_q(slope, "ci_lo"), _q(slope, "ci_hi")) == sign:
        return _dec(NOT_SUPPORTED, "the slope in log2 F", slope, axis_unit, -sign)
    if side(rows[0]["ci_lo"], rows[0]["ci_hi"]) == -sign:
        return _dec(NOT_SUPPORTED, at[0], rows[0], "points", sign)
    opp = [k for k, r in enumerate(rows) if side(r["ci_lo"], r["ci_hi"]) == -sign]
    if opp:
        k = max(opp, key=lambda j: -sign * rows[j]["estimate"])
        return _dec(NOT_SUPPORTED, at[k], rows[k], "points", sign)
    if mean is not None and side(_q(mean, "ci_lo"), _q(mean, "ci_hi")) == -sign:
        return _dec(NOT_SUPPORTED, "the average effect", mean, "points", sign)
    if side(rows[0]["ci_lo"], rows[0]["ci_hi"]) != sign:
        return _dec(INCONCLUSIVE, at[0], rows[0], "points", sign)
    if side(_q(slope, "ci_lo"), _q(slope, "ci_hi")) != -sign:
        return _dec(INCONCLUSIVE, "the slope in log2 F", slope, axis_unit, -sign)
    flips = [k for k, r in enumerate(rows) if not sign * r["estimate"] > 0]
    if flips:
        k = max(flips, key=lambda j: -sign * rows[j]["estimate"])
        return Decision(INCONCLUSIVE, f"the estimate at F = {rows[k]['F']}", float(rows[k]["estimate"]), np.nan,
                        np.nan, "points", sign)
    return _dec(SUPPORTED, "the slope in log2 F", slope, axis_unit, -sign)


def grows(mean: dict | None, slope: dict, sign: int, axis_unit: str) -> Decision:
    """'An effect of sign ``sign`` grows in size with P': not supported if the average effect's interval, or
    else the slope's, lies on the other side (that one decides); supported if both lie on the claimed side
    (the slope decides); else inconclusive, decided by the first of the two whose interval includes 0."""
    s_mean = side(_q(mean, "ci_lo"), _q(mean, "ci_hi"))
    s_slope = side(_q(slope, "ci_lo"), _q(slope, "ci_hi"))
    if s_mean == -sign:
        return _dec(NOT_SUPPORTED, "the average effect", mean, "points", sign)
    if s_slope == -sign:
        return _dec(NOT_SUPPORTED, "the slope in log2 P", slope, axis_unit, sign)
    if s_mean != sign:
        return _dec(INCONCLUSIVE, "the average effect", mean, "points", sign)
    return _dec(SUPPORTED if s_slope == sign else INCONCLUSIVE, "the slope in log2 P", slope, axis_unit, sign)


def plateau(row: dict) -> Decision:
    """H2_F from a plateaus.csv row (its verdict is decided in :mod:`.plateaus`): not supported is decided
    by the log-linear curve's Akaike weight, supported by the plateau's upper limit (below 100%), inconclusive
    by the plateau when it is not identified or else by the saturating curves' Akaike weight."""
    w_log, w_sat = float(row.get("w_log2", np.nan)), float(row.get("w_saturating", np.nan))
    v = row["verdict"]
    pl = dict(estimate=row.get("plateau", np.nan), ci_lo=row.get("plateau_lo", np.nan),
              ci_hi=row.get("plateau_hi", np.nan))
    if v == NOT_SUPPORTED:
        return Decision(v, "the Akaike weight of the log-linear curve", w_log, unit="weight")
    if v == SUPPORTED or not row.get("identified"):
        return _dec(v, "the plateau" if row.get("identified") else "the plateau (not identified)", pl, "%", 0)
    return Decision(v, "the Akaike weight of the saturating curves", w_sat, unit="weight")


def not_testable(by: str, value: float) -> Decision:
    return Decision(NOT_TESTABLE, by, float(value), unit="")
