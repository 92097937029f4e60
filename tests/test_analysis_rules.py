"""Every verdict rule, branch by branch: the verdict, the quantity that decided it, and a sentence quoting it.

Each case plants the statistics a rule reads (intervals whose side of zero is set) and names the
verdict and the deciding quantity the rule must return; the sentence built from the decision must
quote that quantity's number and say on which side of zero it lies.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pandas as pd
import pytest

from diminish.analysis import rules
from diminish.analysis.headline import combine
from diminish.report.statements_verdicts import decision_sentence, where

UP, DOWN, ZERO = (0.5, 1.0, 1.5), (-1.5, -1.0, -0.5), (-1.0, 0.25, 1.5)  # (lo, estimate, hi)


def st(t, p=np.nan):
    return dict(estimate=t[1], ci_lo=t[0], ci_hi=t[2], p=p)


def by_f(*cells):
    return pd.DataFrame([dict(finetune=F, estimate=t[1], ci_lo=t[0], ci_hi=t[2]) for F, t in cells])


def sentence(d: rules.Decision) -> str:
    tex = str(decision_sentence("the claim", d.verdict, d.by, d.estimate, d.lo, d.hi, d.unit, d.need))
    s = tex.replace(r"\ensuremath{-}", "-").replace(r"\ensuremath{+}", "+").replace(r"\%", "%")
    return re.sub(r"\\textit\{([^}]*)\}", r"\1", s).replace("{,}", ",").replace("$", "")


def quotes(d: rules.Decision) -> bool:
    s = sentence(d)
    ok = d.by in s and f"{d.estimate:+.2f}" in s
    if np.isfinite(d.lo):
        ok &= f"{d.lo:+.2f}" in s
    return ok


def check(d, verdict, by):
    assert d.verdict == verdict, d
    assert d.by.startswith(by), d
    assert quotes(d), sentence(d)
    assert f"is {verdict}:" in sentence(d)


@pytest.mark.parametrize("t, sign, verdict", [(UP, +1, "supported"), (DOWN, +1, "not supported"),
                                              (ZERO, +1, "inconclusive"), (DOWN, -1, "supported"),
                                              (UP, -1, "not supported"), (ZERO, -1, "inconclusive")])
def test_directional_every_branch(t, sign, verdict):
    d = rules.directional(st(t), sign, "the average difference")
    check(d, verdict, "the average difference")
    s = sentence(d)
    assert ("includes 0" in s) == (t is ZERO)
    assert ("as the claim needs" in s) == (verdict == "supported")


@pytest.mark.parametrize("stat, rise, verdict, by", [
    (DOWN, DOWN, "not supported", "the rise"),      # the metric falls: no returns to diminish
    (DOWN, UP, "supported", "the slope"),           # falling gains and a rise shown
    (DOWN, ZERO, "inconclusive", "the rise"),       # falling gains, rise not shown
    (UP, UP, "not supported", "the slope"),         # rising gains
    (ZERO, UP, "inconclusive", "the slope"),        # the slope cannot tell
])
def test_diminishing_every_branch(stat, rise, verdict, by):
    d = rules.diminishing(st(stat), st(rise), -1, "the slope of the per-doubling gain", "points")
    check(d, verdict, by)


def test_every_cell_every_branch():
    names = ["A", "B", "C"]
    d = rules.every_cell([1.0, 2.0, 3.0], [0.4, 0.1, 0.5], [1.6, 3.9, 5.5], [0.01, 0.2, 0.02], +1, names)
    check(d, "supported", "the weakest cell, B")          # B's lower end is closest to 0
    d = rules.every_cell([1.0, -2.0, 3.0], [0.4, -3.0, 0.5], [1.6, -1.0, 5.5], [0.01, 0.03, 0.02], +1, names)
    check(d, "not supported", "the cell B")
    assert d.p == 0.03
    d = rules.every_cell([1.0, -2.0, 3.0], [0.4, -5.0, 0.5], [1.6, 1.0, 5.5], [0.01, 0.4, 0.02], +1, names)
    check(d, "inconclusive", "the weakest cell, B")
    assert "includes 0" in sentence(d)
    # with 2 seeds the weakest cell's 1-df interval is not printed; where it lies is said instead
    d = rules.every_cell([1.0, 2.0], [-30.0, 0.1], [32.0, 3.9], [0.9, 0.2], +1, ["A", "B"], n=[2, 2])
    assert d.verdict == "inconclusive" and np.isnan(d.lo) and "n = 2) includes 0" in d.by
    assert "-30" not in sentence(d) and "+1.00 points" in sentence(d)


NARROW = [  # (slope, effects at F = 20, 80, 320, mean, verdict, deciding quantity), claimed: a gain narrowing
    (DOWN, (UP, UP, UP), UP, "supported", "the slope"),
    (UP, (UP, UP, UP), UP, "not supported", "the slope"),                     # it widens
    (DOWN, (DOWN, DOWN, DOWN), DOWN, "not supported", "the effect at F = 20"),  # a loss from the start
    (DOWN, (UP, ZERO, DOWN), ZERO, "not supported", "the effect at F = 320"),  # turns into a loss
    (ZERO, (ZERO, ZERO, ZERO), DOWN, "not supported", "the average effect"),
    (DOWN, (ZERO, ZERO, ZERO), ZERO, "inconclusive", "the effect at F = 20"),
    (ZERO, (UP, UP, UP), UP, "inconclusive", "the slope"),
    (DOWN, (UP, UP, (-2.0, -0.2, 1.6)), UP, "inconclusive", "the estimate at F = 320"),  # sign change (estimate)
]


@pytest.mark.parametrize("slope, eff, mean, verdict, by", NARROW)
def test_narrows_every_branch(slope, eff, mean, verdict, by):
    d = rules.narrows(st(mean), st(slope), by_f(*zip((20, 80, 320), eff)), +1, "points per doubling of F")
    assert d.verdict == verdict and d.by.startswith(by), d
    s = sentence(d)
    assert f"{d.estimate:+.2f}" in s and d.by in s
    if by.startswith("the estimate"):
        assert "opposite of the sign the claim needs" in s


def test_narrows_for_a_loss_mirrors_a_gain():
    for slope, eff, mean, verdict, by in NARROW:
        neg = [tuple(-x for x in reversed(t)) for t in eff]
        d = rules.narrows(st(tuple(-x for x in reversed(mean))), st(tuple(-x for x in reversed(slope))),
                          by_f(*zip((20, 80, 320), neg)), -1, "points per doubling of F")
        assert (d.verdict, d.by[:len(by)]) == (verdict, by)


@pytest.mark.parametrize("mean, slope, verdict, by", [
    (UP, UP, "supported", "the slope"), (DOWN, UP, "not supported", "the average"),
    (UP, DOWN, "not supported", "the slope"), (ZERO, UP, "inconclusive", "the average"),
    (UP, ZERO, "inconclusive", "the slope"), (ZERO, DOWN, "not supported", "the slope")])
def test_grows_every_branch(mean, slope, verdict, by):
    check(rules.grows(st(mean), st(slope), +1, "points per doubling of P"), verdict, by)


def test_plateau_and_not_testable_name_their_quantity():
    d = rules.plateau(dict(verdict="not supported", w_log2=0.95, w_saturating=0.05, identified=False))
    assert d.by.startswith("the Akaike weight of the log-linear") and "0.95" in sentence(d)
    d = rules.plateau(dict(verdict="supported", identified=True, plateau=62.0, plateau_lo=58.0, plateau_hi=70.0))
    assert d.by == "the plateau" and "+62.00" in sentence(d) and "[+58.00, +70.00]" in sentence(d)
    d = rules.not_testable("the number of pre-training sizes above 0", 3)
    assert d.verdict == "not testable" and "not testable" in sentence(d) and "(3)" in sentence(d)


def test_where_reads_the_numbers_not_the_verdict():
    assert where(1.0, 0.5, 1.5, -1) == "above 0, where the claim needs it below 0"
    assert where(-1.0, -1.5, -0.5, -1) == "below 0, as the claim needs"
    assert where(-1.0, np.nan, np.nan, +1) == "the opposite of the sign the claim needs"


# ---------------------------------------------------------------- combination rules, exhaustively

V = ("supported", "inconclusive", "not supported", "not testable")


def _expected(groups):
    flat = [x for g in groups for x in g]
    if "not supported" in flat:
        return "no"
    if any(all(x == "not testable" for x in g) for g in groups):  # includes an empty part
        return "not testable"
    if all(x in ("supported", "not testable") for x in flat):
        return "yes"
    return "inconclusive"


def test_headline_combination_over_every_input_combination():
    parts = [c for k in range(3) for c in itertools.product(V, repeat=k)]  # every part of 0, 1 or 2 components
    seen = set()
    for g1, g2 in itertools.product(parts, repeat=2):
        got = combine(g1, g2)
        assert got == _expected((g1, g2)), (g1, g2)
        seen.add(got)
        if "not testable" in g1 + g2 and got == "inconclusive":  # "not testable" never turns a claim inconclusive
            assert "inconclusive" in g1 + g2
    assert seen == {"yes", "no", "inconclusive", "not testable"}
    # the case the referee found: one part supported, the every-cell part inconclusive -> not "yes"
    assert combine(["supported"], ["inconclusive"]) == "inconclusive"
