"""Sentences that state a direction, a count or a verdict, each computed from the numbers it cites.

Every function here is pure: it takes the numbers a sentence cites (counts, a mean difference, its
95% interval, the number of seeds, a verdict) and returns the sentence as :class:`~.latex.Tex`.
The direction words ("raises", "lowers", "narrows", "turns into a loss") are chosen from the signs
of those same numbers, never fixed in a template, so a sentence cannot contradict what it cites.
Mixed evidence (most cells one way, the average the other), an interval that includes zero, and
too few seeds to say anything each get their own wording.

:mod:`.numbers` calls each function once per statement and stores the result as one macro; the
abstract, results, discussion and conclusion all print that macro, so they cannot disagree.
"""

from __future__ import annotations

import math
import re

from .latex import Tex, escape, integer, isnan, num

# ----------------------------------------------------------------------------- counting words


def plural(k: int, word: str) -> str:
    """'1 seed' / '3 seeds'."""
    return f"{k} {word}" if k == 1 else f"{k} {word}s"


def join_words(items: list[str]) -> str:
    """'a' / 'a and b' / 'a, b and c'."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _singular(unit: str) -> str:
    return unit[:-1] if unit.endswith("s") else unit


def count_phrase(k: int, n: int, unit: str = "cells") -> str:
    """'in all 6 cells' / 'in 4 of the 6 cells' / 'in none of the 6 cells' / 'in the only cell'."""
    if n == 0:
        return f"in no {_singular(unit)} (nothing to compare)"
    if n == 1:
        return f"in the only {_singular(unit)}" if k == 1 else f"not in the only {_singular(unit)}"
    if k == n:
        return f"in all {n} {unit}"
    if k == 0:
        return f"in none of the {n} {unit}"
    return f"in {k} of the {n} {unit}"


VERDICT_ORDER = ("supported", "inconclusive", "not supported", "not testable")


def verdict_counts(counts: dict[str, int], unit: str = "conditions") -> str:
    """How often each verdict was reached, as one grammatical phrase:
    'supported in all 8 conditions', 'supported in 1 of the 8 conditions and inconclusive in the
    other 7', 'inconclusive in 7 of the 8 conditions and not supported in the remaining one',
    'supported in 2 of the 8 conditions, inconclusive in 5 and not supported in 1'."""
    n = sum(int(k) for k in counts.values())
    parts = sorted(((v, int(k)) for v, k in counts.items() if k), key=lambda vk: (-vk[1], VERDICT_ORDER.index(vk[0])
                                                                                  if vk[0] in VERDICT_ORDER else 9))
    if n == 0:
        return f"not tested in any {_singular(unit)}"
    if len(parts) == 1:
        v = parts[0][0]
        return f"{v} in the only {_singular(unit)}" if n == 1 else f"{v} in all {n} {unit}"
    (v1, k1), rest = parts[0], parts[1:]
    first = f"{v1} in {k1} of the {n} {unit}"
    if len(rest) == 1:
        v2, k2 = rest[0]
        return f"{first} and {v2} in " + ("the remaining one" if k2 == 1 else f"the other {k2}")
    return first + ", " + join_words([f"{v} in {k}" for v, k in rest])


# ----------------------------------------------------------------------------- numbers


def signed(x: object) -> Tex:
    """A signed difference in points: +0.58 / -0.58 (math minus)."""
    return num(x, sign=True)


def _end(x: object) -> Tex:
    """A signed interval end with as many decimals (2 to 5) as it takes not to print a nonzero end as 0.00."""
    digits = 2
    while not isnan(x) and float(x) != 0 and round(float(x), digits) == 0 and digits < 5:
        digits += 1
    return num(x, digits, sign=True)


def ci(lo: object, hi: object) -> Tex:
    """'95% CI [+0.07, +1.09]' (signed ends, so the side of zero is visible; an end that would round
    to zero gets more decimals, so '+0.003' and not '+0.00' bounds an interval above zero)."""
    return Tex(f"95\\% CI [{_end(lo)}, {_end(hi)}]")


def side(lo: object, hi: object) -> int:
    """+1 when a 95% interval lies above zero, -1 below, 0 when it includes zero or is missing."""
    if isnan(lo) or isnan(hi):
        return 0
    return 1 if float(lo) > 0 else -1 if float(hi) < 0 else 0


def _sign(x: object) -> int:
    return 0 if isnan(x) or float(x) == 0 else int(math.copysign(1, float(x)))


def verb(sign: int, up: str = "raises", down: str = "lowers", flat: str = "does not change") -> str:
    return up if sign > 0 else down if sign < 0 else flat


# ----------------------------------------------------------------------------- effects


def effect_sentence(subject: str, metric: str, pos: int, neg: int, n: int, mean: object, lo: object, hi: object,
                    *, seeds: int, unit: str = "cells", source: str = "") -> Tex:
    """One sentence on an effect measured in ``n`` paired cells: how many cells move each way
    (``pos`` up, ``neg`` down), and the average difference ``mean`` with its 95% interval.

    ``source`` names where the average comes from (e.g. 'pooled model'), printed after it.
    Wording: agreement ('raises mIoU on average ...; it does so in 15 of the 20 cells'), mixed
    evidence ('lowers mIoU in 11 of the 18 cells, yet raises it on average'), an interval that
    includes zero ('... which is not significant'), and too few seeds for an interval.
    """
    S = subject[:1].upper() + subject[1:]
    m = escape(metric)
    if n == 0 or isnan(mean):
        return Tex(f"{escape(S)} could not be measured: no cell has a paired difference.")
    src = f", {escape(source)}" if source else ""
    avg = Tex(f"mean difference {signed(mean)} points{src}")
    s_mean, s_ci = _sign(mean), side(lo, hi)
    if s_ci == 0 and (isnan(lo) or isnan(hi)):
        # with 2+ seeds, what is missing is differences: too few for the pooled model, or one fitted exactly
        why = "with one seed per cell" if seeds < 2 else "with too few paired differences"
        return Tex(f"{escape(S)} {verb(s_mean)} {m} on average ({avg}), but {why} no interval can be "
                   f"given, so the direction is not established; it raises {m} {count_phrase(pos, n, unit)} "
                   f"and lowers it {count_phrase(neg, n, unit)}.")
    if s_ci == 0:
        return Tex(f"{escape(S)} changes {m} by {signed(mean)} points on average{src}, which is not significant "
                   f"({ci(lo, hi)} includes zero); it raises {m} {count_phrase(pos, n, unit)} and lowers it "
                   f"{count_phrase(neg, n, unit)}.")
    same = pos if s_ci > 0 else neg
    other = neg if s_ci > 0 else pos
    if same == other:  # an even split is no evidence either way: say so instead of quoting one side
        return Tex(f"{escape(S)} {verb(s_ci)} {m} on average ({avg}, {ci(lo, hi)}), while the cells are evenly split: "
                   f"it raises {m} in {pos} and lowers it in {neg} of the {plural(n, _singular(unit))}.")
    if same > other:
        return Tex(f"{escape(S)} {verb(s_ci)} {m} on average ({avg}, {ci(lo, hi)}), and does so "
                   f"{count_phrase(same, n, unit)}.")
    return Tex(f"{escape(S)} {verb(-s_ci)} {m} {count_phrase(other, n, unit)}, yet {verb(s_ci)} it on average "
               f"({avg}, {ci(lo, hi)}).")


def significant_cells(k_up: int, k_down: int, n: int, alpha: float = 0.05, unit: str = "cells",
                      noun: str = "the difference", family: int | None = None) -> Tex:
    """'After Holm correction the difference is significant in 3 of the 20 cells (2 higher, 1 lower).'
    With ``family`` (the number of tests the correction counts) the sentence names it: 'After Holm
    correction over a family of 20 tests ...'."""
    k = k_up + k_down
    if n == 0:
        return Tex("")
    where = count_phrase(k, n, unit)
    detail = ""
    if k and k_up and k_down:
        detail = f" ({k_up} higher, {k_down} lower)"
    elif k:
        detail = " (all higher)" if k_up else " (all lower)"
        if k == 1:
            detail = " (higher)" if k_up else " (lower)"
    over = "" if family is None else f" over a family of {plural(int(family), 'test')}"
    return Tex(f"After Holm correction{over} {escape(noun)} is significant at $p<{alpha:g}$ {where}{detail}.")


def trend_sentence(noun: str, at_lo: object, at_hi: object, f_lo: int, f_hi: int, slope: object,
                   lo: object, hi: object, axis: str = "F", per: str = "", short: str = "its",
                   note: str = "") -> Tex:
    """How a paired difference moves along a size axis: the two ends, described from their signs
    ('a gain that narrows', 'a gain that turns into a loss'), then the pooled slope (per doubling,
    or over the span ``per`` names) with its interval, described from its own sign and interval."""
    N = noun[:1].upper() + noun[1:]
    a, b = _sign(at_lo), _sign(at_hi)
    ends = f"{signed(at_lo)} points at ${axis}={integer(f_lo)}$ and {signed(at_hi)} at ${axis}={integer(f_hi)}$"
    if a > 0 and b > 0:
        shape = "a gain that narrows" if float(at_hi) < float(at_lo) else "a gain that widens"
    elif a < 0 and b < 0:
        shape = "a loss that shrinks" if float(at_hi) > float(at_lo) else "a loss that deepens"
    elif a > 0 > b:
        shape = "a gain that turns into a loss"
    elif a < 0 < b:
        shape = "a loss that turns into a gain"
    else:
        shape = "no change at one end"
    out = f"{escape(N)} is {ends}: {shape}{note}."  # note: e.g. statements_cells.one_cell_note
    if isnan(slope):
        return Tex(out)
    s = side(lo, hi)
    per = per or f"Per doubling of ${axis}$"
    trend = (f" {per} the pooled model puts the change of {escape(short)} at {signed(slope)} points "
             f"({ci(lo, hi)}), ")
    significant = "significantly " + ("upwards" if s > 0 else "downwards") + "."
    trend += significant if s else "not significantly different from zero."
    return Tex(out + trend)


def range_phrase(values: list[float], noun: str) -> Tex:
    """'the exponent is +0.62' for one value (or several equal ones), 'the exponent lies between
    -0.57 and +5.79' otherwise; nothing to say for no value."""
    vals = [float(v) for v in values if not isnan(v)]
    if not vals:
        return Tex(f"no {escape(noun)} could be estimated")
    lo, hi = min(vals), max(vals)
    if str(num(lo)) == str(num(hi)):
        where = "in the only fitted condition" if len(vals) == 1 else f"in all {len(vals)} fitted conditions"
        return Tex(f"the {escape(noun)} is {num(lo)} {where}")
    if len(vals) == 2:  # two values are two values, not a range
        return Tex(f"the {escape(noun)} is {num(vals[0])} in one fitted condition and {num(vals[1])} in the other")
    return Tex(f"the {escape(noun)} lies between {num(lo)} and {num(hi)} across {len(vals)} conditions")


def pooled_vs_cells(pooled: object, cells_mean: object, n_cells: int, n_obs: int, arms: str,
                    runs: bool = False) -> Tex:
    """Why the pooled model's average is (or is not) the plain mean of the cells in a table. ``runs``: the model
    fits the runs themselves (the pre-training model, where one from-scratch run serves several differences)."""
    same = str(num(pooled)) == str(num(cells_mean))
    what = ("runs, each from-scratch run entering once" if runs else "paired differences")
    head = (f"The pooled model's mean difference, {signed(pooled)} points, is estimated from all {integer(n_obs)} "
            f"{what} ({escape(arms)})")
    if same:
        spread = ("the spread of the runs at each fine-tune size" if runs else "the spread between cells")
        return Tex(head + f"; with every cell complete it equals the plain mean of the {integer(n_cells)} cell "
                          f"means, and its interval uses {spread}.")
    return Tex(head + f"; it differs from the plain mean of the {integer(n_cells)} cell means "
                      f"({signed(cells_mean)}) because cells with missing seeds or unequal spread weigh "
                      "differently in the regression.")


def plateau_phrase(value: object, lo: object, hi: object, identified: bool) -> Tex:
    """'62.44\\% [55.02, 82.76]' or 'not identified'."""
    if not identified or isnan(value):
        return Tex("not identified")
    return Tex(f"{num(value)}\\% [{num(lo)}, {num(hi)}]")


def verdict_sentence(claim: str, verdict: str, estimate: object, lo: object, hi: object, unit: str = "points") -> Tex:
    """'That <claim> is supported (estimate -0.80 points, 95% CI [...]).'"""
    v = str(verdict).strip()
    est = "" if isnan(estimate) else (f" (estimate {signed(estimate)} {escape(unit)}"
                                     + ("" if isnan(lo) else f", {ci(lo, hi)}") + ")")
    return Tex(f"That {escape(claim)} is \\textit{{{escape(v)}}}{est}.")


def settings_sentence(differences: list[str] | None) -> Tex:
    """Whether the training settings are the original paper's (Appendix A1): ``differences`` lists
    what differs (from :func:`~.macros_study.differences_from_paper`); None when the comparison could
    not be made. Up to three differences are named, the rest counted."""
    if differences is None:
        return Tex("Whether the training settings equal the original paper's Appendix A1 could not be checked "
                   "(no readable configuration).")
    if not differences:
        return Tex("The training settings are the original paper's (Appendix A1), not tuned per data size, which "
                   "may favour some sizes over others; the batch sizes are our own choice because the paper does "
                   "not give them.")
    return Tex(f"The model and training settings differ from the original paper's Appendix A1 in "
               f"{plural(len(differences), 'respect')}, so these numbers do not test the published schedule: "
               + str(escape("; ".join(re.sub(r" \(paper: (.*)\)$", r" instead of \1", d) for d in differences)))
               + ".")


def headline_sentence(holds: int, fails: int, inconclusive: int, untestable: int = 0) -> Tex:
    """'Of the original paper's 3 headline claims, 1 holds in our data, 1 does not and 1 is inconclusive.'
    A claim that could not be tested (``untestable``) is counted apart, never as inconclusive."""
    n = holds + fails + inconclusive + untestable
    parts = []
    if holds:
        parts.append(f"{holds} {'holds' if holds == 1 else 'hold'} in our data")
    if fails:
        parts.append(f"{fails} {'does' if fails == 1 else 'do'} not" + ("" if holds else " hold in our data"))
    if inconclusive:
        parts.append(f"{inconclusive} {'is' if inconclusive == 1 else 'are'} inconclusive")
    if untestable:
        parts.append(f"{untestable} {'is' if untestable == 1 else 'are'} not testable with this design")
    if n == 0:
        return Tex("No headline claim of the original paper could be checked.")
    if len(parts) == 1:
        one = n == 1
        text = ("it holds in our data" if one else "all hold in our data") if holds else \
            ("it does not hold in our data" if one else "none holds in our data") if fails else \
            ("it is inconclusive" if one else "all are inconclusive") if inconclusive else \
            ("it is not testable with this design" if one else "none is testable with this design")
        return Tex(f"Of the original paper's {plural(n, 'headline claim')}, {text}.")
    return Tex(f"Of the original paper's {plural(n, 'headline claim')}, {join_words(parts)}.")


# ----------------------------------------------------------------------------- pre-training loss

MIN_EPOCHS = 4  # fewer epochs have no last quarter to judge a loss by
# share of a loss's whole drop that its last quarter of epochs must bring to count as still falling
STILL_FALLING = 0.10


def convergence_state(epochs: int, first: object, last: object, tail_share: object) -> str:
    """Where a training loss stood when its stage stopped, from the seed-mean loss of its first and
    last epochs and the share of that drop its last quarter of epochs brought: 'unknown' (fewer
    than :data:`MIN_EPOCHS` epochs, so that a quarter is at least one), 'no drop' (last >= first),
    'falling' (share >= :data:`STILL_FALLING`) or 'levelled'."""
    if epochs < MIN_EPOCHS or isnan(first) or isnan(last):
        return "unknown"
    if float(last) >= float(first):
        return "no drop"
    # decided on the share as printed (percent, one decimal), so the sentence cannot contradict its number
    return "falling" if not isnan(tail_share) and _percent(tail_share) >= 100 * STILL_FALLING else "levelled"


def _percent(share: object) -> float:
    return round(100 * float(share), 1)


def convergence_sentence(state: str, size: str, epochs: int, first: object, last: object, tail_epochs: int,
                         tail_share: object) -> Tex:
    """One sentence saying whether the SimMIM loss of the largest pre-training size (``size``
    images) was still falling when pre-training stopped, citing the numbers that decide it."""
    who = f"The SimMIM loss of the largest pre-training size ({escape(size)} images)"
    if state == "unknown":
        return Tex(f"{who} was recorded for {plural(epochs, 'epoch')} only, too few (under {MIN_EPOCHS}) to tell "
                   "whether it had levelled off.")
    span = f"from {num(first, 3)} in the first epoch to {num(last, 3)} in the last"
    if state == "no drop":
        return Tex(f"{who} did not fall over its {plural(epochs, 'epoch')}: it went {span}.")
    pct = Tex(f"{num(_percent(tail_share), 1)}\\%")
    last_part = f"its last {plural(tail_epochs, 'epoch')} of {epochs}"
    rule = (f"our rule counts a loss as still falling when the last quarter of its epochs brings at least "
            f"{num(100 * STILL_FALLING, 0)}\\% of its drop")
    if state == "falling":
        return Tex(f"{who} was still falling when pre-training stopped: {last_part} brought {pct} of its drop "
                   f"{span} ({rule}).")
    return Tex(f"{who} had levelled off before pre-training stopped: {last_part} brought only {pct} of its drop "
               f"{span} ({rule}).")


def convergence_reading(state: str, lr_drop_in_tail: bool = False) -> Tex:
    """What the pre-training loss's state says about a pre-training that lowers the score, and
    what it cannot say (used after :func:`convergence_sentence`). With ``lr_drop_in_tail`` (the
    learning rate was cut inside the epochs the loss is judged by) a levelled loss proves little."""
    if state == "levelled" and lr_drop_in_tail:
        return Tex("Its flat end coincides with the cut in the learning rate, so it does not show that pre-training "
                   "had run its course; a low reconstruction loss need not mean features that help segmentation "
                   "either.")
    return Tex({
        "falling": "Pre-training was thus stopped before its own loss settled; a longer schedule might change "
                   "the comparison, which these results cannot tell.",
        "levelled": "Pre-training was thus not cut short by its own measure, so an unfinished pre-training loss "
                    "does not explain the drop here; a low reconstruction loss need not mean features that "
                    "help segmentation.",
        "no drop": "The pre-trained starting point thus carries no reconstruction skill that its loss can show, "
                   "and the comparison does not test SimMIM as intended.",
    }.get(state, ""))
