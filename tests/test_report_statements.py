"""Each statement function of diminish.report.statements: its wording follows the signs it cites."""

from __future__ import annotations

import re

import numpy as np
import pytest

from diminish.report import statements as st


def plain(tex: str) -> str:
    """LaTeX from the statements as plain text: math signs, escaped percent, no dollars."""
    s = str(tex).replace(r"\ensuremath{-}", "-").replace(r"\ensuremath{+}", "+").replace(r"\%", "%")
    s = s.replace("{,}", ",").replace("$", "").replace(r"\textit{", "").replace("}", "")
    return s


def test_count_phrase_grammar():
    assert st.count_phrase(8, 8, "conditions") == "in all 8 conditions"
    assert st.count_phrase(1, 8, "conditions") == "in 1 of the 8 conditions"
    assert st.count_phrase(0, 3) == "in none of the 3 cells"
    assert st.count_phrase(1, 1) == "in the only cell"


@pytest.mark.parametrize("counts, expected", [
    ({"supported": 8}, "supported in all 8 conditions"),
    ({"supported": 1}, "supported in the only condition"),
    ({"not supported": 1, "inconclusive": 7},
     "inconclusive in 7 of the 8 conditions and not supported in the remaining one"),
    ({"supported": 1, "inconclusive": 7}, "inconclusive in 7 of the 8 conditions and supported in the remaining one"),
    ({"supported": 4, "inconclusive": 4}, "supported in 4 of the 8 conditions and inconclusive in the other 4"),
    ({"supported": 2, "inconclusive": 5, "not supported": 1},
     "inconclusive in 5 of the 8 conditions, supported in 2 and not supported in 1"),
])
def test_verdict_counts(counts, expected):
    assert st.verdict_counts(counts) == expected


def test_effect_sentence_agreeing_significant():
    s = plain(st.effect_sentence("the intermediate stage", "mIoU", 2, 18, 20, -0.58, -1.09, -0.07, seeds=3))
    assert s.startswith("The intermediate stage lowers mIoU on average (mean difference -0.58 points")
    assert "in 18 of the 20 cells" in s and "raises" not in s


def test_effect_sentence_mixed_evidence():
    s = plain(st.effect_sentence("the intermediate stage", "mIoU", 7, 11, 18, 0.4, 0.1, 0.7, seeds=3))
    assert s == ("The intermediate stage lowers mIoU in 11 of the 18 cells, yet raises it on average "
                 "(mean difference +0.40 points, 95% CI [+0.10, +0.70]).")


def test_effect_sentence_not_significant_and_too_few_seeds():
    s = plain(st.effect_sentence("pre-training", "mIoU", 10, 10, 20, 0.58, -0.2, 1.1, seeds=2))
    assert "not significant" in s and "by +0.58 points" in s and "raises mIoU in 10 of the 20 cells" in s
    s = plain(st.effect_sentence("pre-training", "mIoU", 1, 2, 3, -0.5, np.nan, np.nan, seeds=1))
    assert "one seed per cell no interval" in s and "not established" in s


@pytest.mark.parametrize("seed", range(40))
def test_effect_sentence_average_verb_matches_sign(seed):
    """Property: the verb attached to 'on average' always matches the sign of the cited mean."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 25))
    pos = int(rng.integers(0, n + 1))
    mean = float(rng.normal(0, 2))
    half = abs(float(rng.normal(0, 2)))
    s = plain(st.effect_sentence("x", "mIoU", pos, n - pos, n, mean, mean - half, mean + half, seeds=3))
    m = re.search(r"(raises|lowers) (?:mIoU|it) on average \(mean difference ([+-]\d+\.\d+)", s)
    if mean - half > 0 or mean + half < 0:
        assert m, s
        assert (m.group(1) == "raises") == (float(m.group(2)) > 0), s
    else:
        assert "not significant" in s and not m


@pytest.mark.parametrize("ends, shape", [
    ((3.0, 1.0), "a gain that narrows"), ((1.0, 3.0), "a gain that widens"),
    ((0.54, -2.53), "a gain that turns into a loss"), ((-2.0, -1.0), "a loss that shrinks"),
    ((-1.0, -2.0), "a loss that deepens"), ((-1.0, 2.0), "a loss that turns into a gain"),
])
def test_trend_sentence_shapes(ends, shape):
    s = plain(st.trend_sentence("the difference", ends[0], ends[1], 20, 320, -0.8, -1.2, -0.4))
    assert shape in s and "significantly downwards" in s
    s = plain(st.trend_sentence("the difference", ends[0], ends[1], 20, 320, 0.1, -0.2, 0.4))
    assert "not significantly different from zero" in s


def test_range_phrase_collapses_equal_values():
    assert plain(st.range_phrase([-0.62], "exponent")) == "the exponent is -0.62 in the only fitted condition"
    assert plain(st.range_phrase([-0.62, -0.621], "exponent")).startswith("the exponent is -0.62 in all 2")
    assert plain(st.range_phrase([-0.57, 5.79, np.nan], "exponent")) == \
        "the exponent is -0.57 in one fitted condition and 5.79 in the other"
    assert plain(st.range_phrase([-0.57, 5.79, 1.0], "exponent")) == \
        "the exponent lies between -0.57 and 5.79 across 3 conditions"
    assert "no exponent" in plain(st.range_phrase([np.nan], "exponent"))


def test_pooled_vs_cells_says_why_they_differ():
    s = plain(st.pooled_vs_cells(-1.66, -1.66, 15, 40, "P = 100 minus P = 0", runs=True))
    assert "40 runs, each from-scratch run entering once" in s and "paired differences" not in s
    assert "equals the plain mean of the 15" in st.pooled_vs_cells(-1.66, -1.66, 15, 30, "with and without")
    s = plain(st.pooled_vs_cells(-1.32, -1.66, 15, 30, "with and without the intermediate stage"))
    assert "differs from the plain mean of the 15 cell means (-1.66)" in s


def test_plateau_and_verdict_and_settings():
    assert st.plateau_phrase(62.44, 55.02, 82.76, False) == "not identified"
    assert plain(st.plateau_phrase(62.44, 55.02, 82.76, True)) == "62.44% [55.02, 82.76]"
    s = plain(st.verdict_sentence("pre-training raises mIoU on average", "supported", 1.2, 0.3, 2.1))
    assert s == "That pre-training raises mIoU on average is supported (estimate +1.20 points, 95% CI [+0.30, +2.10])."
    assert "are the original paper's" in st.settings_sentence([])
    s = st.settings_sentence(["fine-tuning epochs 4 (paper: 100)"])
    assert "differ" in s and "are the original paper's" not in s
    assert "could not be checked" in st.settings_sentence(None)


def test_significant_cells():
    assert plain(st.significant_cells(0, 3, 20)) == \
        "After Holm correction the difference is significant at p<0.05 in 3 of the 20 cells (all lower)."
    assert "(2 higher, 1 lower)" in st.significant_cells(2, 1, 20)
    assert "in none of the 20 cells." in st.significant_cells(0, 0, 20)


def test_headline_sentence_grammar():
    assert st.headline_sentence(1, 1, 1) == ("Of the original paper's 3 headline claims, 1 holds in our data, "
                                             "1 does not and 1 is inconclusive.")
    assert st.headline_sentence(0, 3, 0) == "Of the original paper's 3 headline claims, none holds in our data."
    assert st.headline_sentence(2, 0, 1).endswith("2 hold in our data and 1 is inconclusive.")


def test_interval_ends_never_round_to_a_misleading_zero():
    assert plain(st.ci(0.0012, 0.17)) == "95% CI [+0.001, +0.17]"
    s = plain(st.trend_sentence("d", 1.0, 2.0, 20, 320, 0.09, 0.0012, 0.17))
    assert "[+0.001, +0.17]), significantly upwards" in s


@pytest.mark.parametrize("share", [0.0, 0.05, 0.0994, 0.09949, 0.0995, 0.0996, 0.1, 0.2, 0.9])
def test_convergence_sentence_never_contradicts_the_share_it_prints(share):
    state = st.convergence_state(12, 0.9, 0.6, share)
    text = plain(st.convergence_sentence(state, "3000", 12, 0.9, 0.6, 3, share))
    printed = float(re.search(r"brought (?:only )?([0-9.]+)%", text).group(1))
    assert state == ("falling" if printed >= 10 else "levelled")
    assert ("was still falling when" in text) == (printed >= 10)
    assert "from 0.900 in the first epoch to 0.600 in the last" in text


def test_convergence_without_a_drop_or_with_one_epoch_says_so():
    assert st.convergence_state(5, 0.8, 0.8, float("nan")) == "no drop"
    assert st.convergence_state(3, 0.9, 0.6, 0.5) == "unknown"  # no last quarter to judge by
    assert st.convergence_state(5, 0.8, 0.85, float("nan")) == "no drop"
    assert st.convergence_state(1, 0.8, 0.8, float("nan")) == "unknown"
    sentence = st.convergence_sentence("unknown", "1000", 1, 0.8, 0.8, 1, float("nan"))
    assert "too few (under 4) to tell" in plain(sentence)
    assert "did not fall" in plain(st.convergence_sentence("no drop", "1000", 5, 0.8, 0.85, 2, float("nan")))
    assert str(st.convergence_reading("unknown")) == ""
    for state in ("falling", "levelled", "no drop"):  # each state its own reading
        assert str(st.convergence_reading(state))
