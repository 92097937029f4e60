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


def test_transfer_flags_sign_disagreements_and_counts_each_side():
    from diminish.analysis.transfer import extrapolation_side, sign_disagrees, transfer

    assert extrapolation_side(5.0, 20, 320) == "below" and extrapolation_side(400.0, 20, 320) == "above"
    assert extrapolation_side(40.0, 20, 320) == "" and extrapolation_side(np.nan, 20, 320) == ""
    assert sign_disagrees(5.0, -0.97) and not sign_disagrees(5.0, 0.3) and not sign_disagrees(np.nan, -1.0)
    tr, _ = transfer(scenario("pt_crosses"), "miou")
    finite = tr[np.isfinite(tr.d_t)]
    flagged = finite[finite.sign_disagrees.astype(bool)]
    assert (np.sign(flagged.d_t) != np.sign(flagged.measured_diff)).all()
    rest = finite[~finite.sign_disagrees.astype(bool)]
    assert (np.sign(rest.d_t) * np.sign(rest.measured_diff) >= 0).all()
    sides = finite.extrapolated_side
    assert ((sides != "") == finite.extrapolated.astype(bool)).all()


def test_transfer_sentences_count_each_side_and_name_every_case():
    from diminish.report.statements_transfer import extrapolation_sentence, sign_sentence

    s = str(extrapolation_sentence(7, 3))
    assert s.startswith("7 need the from-scratch curve below the smallest") and "3 need it beyond the largest" in s
    assert "beyond" not in str(extrapolation_sentence(2, 0)) and "below" not in str(extrapolation_sentence(0, 1))
    cases = [("no pre-training, with the intermediate stage", 40, -0.97, 5.2), ("P = 100", 80, 0.4, -12.0)]
    s = str(sign_sentence(40, cases)).replace(r"\ensuremath{-}", "-").replace(r"\ensuremath{+}", "+")
    assert "in 2 of the 40 points" in s and "measured -0.97 points, $D_T$ +5.2 images" in s and "-12 images" in s
    assert "agrees with the measured difference at all 40 points" in str(sign_sentence(40, []))


def test_an_even_split_of_cells_is_not_worded_as_evidence():
    from diminish.report.statements import effect_sentence

    s = str(effect_sentence("the intermediate stage", "mIoU", 10, 10, 20, 0.58, 0.06, 1.10, seeds=2))
    assert "evenly split" in s and "raises mIoU in 10 and lowers it in 10 of the 20 cells" in s
    assert "does so in 10" not in s
    s = str(effect_sentence("pre-training", "mIoU", 4, 11, 15, -1.66, -2.78, -0.53, seeds=2))
    assert "does so in 11 of the 15 cells" in s


def test_the_settings_sentence_lists_every_difference_without_nested_parentheses():
    from diminish.report.statements import settings_sentence

    diffs = [f"model dim {k} (paper: {2 * k})" for k in range(1, 14)]
    s = str(settings_sentence(diffs))
    assert "in 13 respects" in s and "more" not in s
    assert all(f"model dim {k} instead of {2 * k}" in s for k in range(1, 14))
    assert "(" not in s


def test_the_schedule_sentence_counts_steps_and_flags_a_late_learning_rate_cut():
    from diminish.report.statements import convergence_reading
    from diminish.report.statements_schedule import (
        drops_in_tail,
        optimiser_steps,
        schedule_sentence,
    )

    assert optimiser_steps(100, 4, 64) == 8 and optimiser_steps(800, 4, 64) == 52 and optimiser_steps(0, 4, 64) == 0
    assert drops_in_tail((3,), 4, 1) == [3] and drops_in_tail((50, 85), 100, 25) == [85]
    assert drops_in_tail((2,), 4, 1) == []
    s = str(schedule_sentence([0, 100, 300, 800], 4, 64, (3,), 0.1, 1))
    assert "8 to 52 optimiser steps" in s and "cut 10-fold from epoch 4 of 4" in s
    assert "cut" not in str(schedule_sentence([0, 100], 4, 64, (2,), 0.1, 1))
    assert "coincides with the cut" in str(convergence_reading("levelled", lr_drop_in_tail=True))
    assert "not cut short" in str(convergence_reading("levelled"))


def test_provenance_prints_no_absolute_path(tmp_path):
    from pathlib import Path

    from diminish.report.tables import display_path, provenance_value

    assert display_path(str(tmp_path / "data" / "pets"), base=tmp_path) == "data/pets"
    assert display_path("/elsewhere/tmp/x/pets") == ".../x/pets"
    assert display_path("results/demo/results.nc") == "results/demo/results.nc"
    s = str(provenance_value("pets_root", str(Path.cwd() / "data" / "synth" / "pets")))
    assert str(Path.cwd()) not in s.replace("\\allowbreak{}", "").replace("\\_", "_")


def test_the_examples_sentence_says_how_the_cell_was_chosen_and_reads_the_border_class():
    from diminish.report.statements_examples import class_shares, examples_sentence

    truth = np.array([[0, 1, 2, 2]])
    assert class_shares(truth, np.array([[0, 1, 1, 1]])) == (0.5, 0.0)
    s = str(examples_sentence("P = 800, F = 320, seed 0", "mIoU", 38.2, 7, 8, 320, 0.123, 0.0))
    assert "fixes in advance" in s and "rank 7 of the 8 runs" in s and "never predicts it" in s
    assert "never" not in str(examples_sentence("c", "mIoU", 38.2, 1, 8, 320, 0.1, 0.05))


def test_an_average_carried_by_one_cell_says_so():
    from diminish.report.statements_cells import one_cell_note, rests_on_one

    cells = {"P = 0": -0.12, "P = 100": 0.1, "P = 300": -0.2, "P = 800": 4.76}
    assert rests_on_one(cells) == "P = 800"
    s = str(one_cell_note("at F = 320", cells)).replace(r"\ensuremath{-}", "-").replace(r"\ensuremath{+}", "+")
    assert "rests on one cell, P = 800 at +4.76" in s and "other 3 lie between -0.20 and +0.10" in s
    assert rests_on_one({"a": 1.0, "b": 1.2, "c": 0.9}) is None  # a shared effect
    assert rests_on_one({"a": 1.0, "b": 3.0}) is None  # too few cells to say


def test_verdict_words_are_never_hyphenated_in_tables():
    from diminish.report.tables_claims import unbroken_verdicts

    s = str(unbroken_verdicts("inconclusive in 7 of the 8 conditions and not supported in 1; not testable"))
    assert s.count(r"\mbox{") == 3 and r"\mbox{not supported}" in s and r"\mbox{inconclusive}" in s
    assert r"\mbox{not testable}" in s and "not \\mbox{supported}" not in s
