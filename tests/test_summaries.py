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


def test_the_left_out_table_gives_one_row_per_reason_with_its_conditions_counted():
    from types import SimpleNamespace

    from diminish.report.skipped import skipped_rows

    notes = [f"miou: pretrain={p}, intermediate={i}, pow3: skipped: {n} fine-tune sizes < 4 needed"
             for p, i, n in ((0, False, 2), (0, True, 1), (300, False, 3), (300, True, 2))]
    notes += ["accuracy: pretrain=0, intermediate=False, pow3: skipped: 2 fine-tune sizes < 4 needed",
              "miou: H1_F at P=300, I=True not tested: fewer than 3 fine-tune sizes",
              "miou: intermediate effect at pretrain=300, finetune=40: no complete pair (cell missing)",
              "miou: H2_P not tested: 2 pre-training sizes > 0 (needs 5)", "miou: a note that skips nothing"]
    inp = SimpleNamespace(metric="miou", analysis=SimpleNamespace(report={"notes": notes}))
    rows = skipped_rows(inp)
    assert rows[0] == ("4 conditions: no pre-training, without the intermediate stage; no pre-training, with the "
                       "intermediate stage; and 2 more", "pow3: skipped: 1 to 3 fine-tune sizes < 4 needed")
    assert rows[1] == ("300 pre-training images, with the intermediate stage",
                       "H1_F not tested: fewer than 3 fine-tune sizes")
    assert rows[2] == ("whole study", "H2_P not tested: 2 pre-training sizes > 0 (needs 5)")
    assert len(rows) == 3
