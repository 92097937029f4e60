"""What the referee of issue 24 checked, as properties: Holm family sizes, per-cell intervals with 2 seeds.

The Holm family a table's adjusted p counts is recorded per row (``holm_m``), each pre-training
claim is about one intermediate arm, so each arm is its own family, and the table note and the
significance sentence state the size that the adjusted p values imply.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from diminish.analysis.paired import holm, paired_intermediate, paired_pretrain
from diminish.report.statements import significant_cells
from diminish.report.tables_paired import cell_interval, holm_family_note
from planted import FINETUNE, PRETRAIN, scenario


def test_holm_families_are_the_arms_and_their_size_is_recorded():
    ds = scenario("two_seeds")
    pp = paired_pretrain(ds, "miou")
    per_arm = (len(PRETRAIN) - 1) * len(FINETUNE)
    assert set(pp.holm_m) == {per_arm}
    for _, g in pp.groupby("intermediate"):
        assert np.allclose(g.p_holm, holm(g.p_t.to_numpy(float)), equal_nan=True)
        # the largest adjustment a family can make is its size
        ratio = (g.p_holm / g.p_t)[g.p_holm < 1]
        assert (ratio <= per_arm + 1e-9).all()
    pi = paired_intermediate(ds, "miou")
    assert set(pi.holm_m) == {len(PRETRAIN) * len(FINETUNE)}


def test_captions_and_sentences_state_the_family_size():
    df = pd.DataFrame(dict(intermediate=[False] * 15 + [True] * 15, holm_m=15))
    assert "15 cells without the intermediate stage and 15 cells with" in holm_family_note(df, True)
    assert "the 15 cells of this table as one family" in holm_family_note(df[:15], False)
    s = str(significant_cells(1, 0, 15, family=15))
    assert "over a family of 15 tests" in s and "in 1 of the 15 cells" in s


def test_two_seeds_print_no_interval():
    assert str(cell_interval(2, -48.83, 36.11)) == "n = 2: no interval"
    assert "48.83" in str(cell_interval(3, -48.83, 36.11))
