"""The sentences that summarise many items (report/summaries.py) count what they are given."""

from __future__ import annotations

import math
import re

from diminish.report.summaries import EXAMPLES, counted, spread_sentence


def test_counted_gives_the_count_the_reason_and_at_most_a_few_examples():
    items = [("with no finite value", f"F = {f}") for f in range(10, 60, 10)]
    s = str(counted(items, 40))
    assert s == "5 of the 40 values with no finite value: F = 10; F = 20; and 3 more"
    assert len(re.findall(r"F = \d+", s)) == EXAMPLES


def test_counted_groups_by_reason_in_the_order_first_met():
    items = [("because a", "x1"), ("because b", "y1"), ("because a", "x2"), ("because a", "x3")]
    assert str(counted(items, 4, "cells", examples=1)) == \
        "all 4 cells: 3 because a (x1; and 2 more), 1 because b (y1)"


def test_counted_says_nothing_for_nothing_and_names_one_of_many():
    assert str(counted([], 10)) == ""
    assert str(counted([("with no value", "F = 5")], 10)) == "1 of the 10 values with no value: F = 5"


def test_counted_escapes_latex():
    assert r"100\%" in str(counted([("at 100%", "P = 0")], 3))


def test_spread_sentence_names_both_ends_and_skips_nan():
    cells = [(0.5, "a"), (-1.25, "b"), (math.nan, "c"), (2.0, "d")]
    s = str(spread_sentence("of the difference", cells))
    assert s.startswith("Cell means of the difference range from ") and "(b) to " in s and s.endswith("(d).")
    assert "1.25" in s and "2.00" in s
    assert str(spread_sentence("of the difference", [(math.nan, "a")])) == ""
    one = str(spread_sentence("of the difference", [(0.3, "a"), (math.nan, "b")]))
    assert one.startswith("The only cell mean of the difference is ") and one.endswith("(a).")
