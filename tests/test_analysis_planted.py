"""The analysis against planted truths (tests/planted.py): verdicts, one plateau per condition, small n.

Each scenario's verdicts must equal the planted truth where the planted effect is large; every
verdict carries the rule that decided it; a claim about how an effect changes is never supported
when the effect itself has the other sign; 2-seed results are flagged where a method carries no
information. Curve fits use two families and no bootstrap where the test is not about plateaus.
"""

from __future__ import annotations

import numpy as np
import pytest

from diminish.analysis.claims import claims
from diminish.analysis.curves import fit_curves
from diminish.analysis.paired import paired_intermediate, paired_pretrain
from diminish.analysis.pipeline import small_n
from diminish.analysis.plateaus import plateaus
from diminish.analysis.pooled import effect_by_f, pooled
from diminish.analysis.transfer import transfer
from planted import SCENARIOS, scenario, truth

_CACHE: dict = {}


def verdicts(name: str, **kw):
    key = (name, tuple(sorted(kw.items())))
    if key not in _CACHE:
        ds = scenario(name, **kw)
        fits = fit_curves(ds, "miou", families=("exp3", "log2"), n_boot=0, n_restarts=1)
        _CACHE[key] = ds, claims(ds, "miou", fits=fits)
    return _CACHE[key]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_verdicts_equal_the_planted_truth(name):
    _, v = verdicts(name)
    got = dict(zip(v.claim_id, v.verdict))
    expected = truth(**SCENARIOS[name])["expected"]
    assert {k: got.get(k) for k in expected} == expected
    # one verdict per claim, each with its kind and its rule in words (no code identifiers)
    assert v.claim_id.is_unique
    assert v.rule.str.len().gt(40).all() and v.kind.notna().all()
    assert not v.rule.str.contains(r"_|pretrain_100k|log2_").any()
    assert not v.statistic.str.contains("'").any()


@pytest.mark.parametrize("name", ["int_helps", "int_mixed", "mixed_two_seeds"])
def test_a_shrinking_penalty_is_never_supported_when_the_effect_is_a_gain(name):
    _, v = verdicts(name)
    row = v.set_index("claim_id")
    assert row.loc["INT_HURTS", "estimate"] > 0
    assert row.loc["INT_SHRINKS_WITH_F", "verdict"] == "not supported"
    assert row.loc["INT_WORSE_WITH_P", "verdict"] != "supported"


def test_mixed_evidence_is_reported_as_both_facts():
    _, v = verdicts("int_mixed")
    row = v.set_index("claim_id")
    t = truth(**SCENARIOS["int_mixed"])
    assert t["inter_cells_lower"] > t["inter_cells"] / 2 and t["inter_mean"] > 0  # what was planted
    assert row.loc["INT_EVERY_CELL", "estimate"] > 0.5  # most cells lose ...
    assert row.loc["INT_HURTS", "ci_lo"] > 0  # ... yet the average is a gain
    assert row.loc["INT_HURTS", "verdict"] == "not supported"


def test_a_head_start_that_crosses_zero_does_not_narrow():
    ds, v = verdicts("pt_crosses")
    row = v.set_index("claim_id").loc["PT_SHRINKS_WITH_F"]
    assert row.estimate < 0 and row.ci_hi < 0  # the slope alone would say "narrows"
    assert row.verdict == "not supported" and "changes sign" in row.detail
    bf = effect_by_f(ds, "miou")
    pt = bf[bf.effect == "pretrain"].sort_values("finetune")
    assert pt.estimate.iloc[0] > 0 > pt.estimate.iloc[-1]


def test_pooled_pretraining_model_uses_one_arm_and_matches_the_cells():
    ds, _ = verdicts("int_hurts")
    po = pooled(ds, "miou").set_index(["effect", "term"])
    pp = paired_pretrain(ds, "miou")
    cells = pp[~pp.intermediate]
    # the pooled mean is the plain mean of the cells it says it uses (a full grid)
    assert po.loc[("pretrain", "mean"), "estimate"] == pytest.approx(cells.mean_delta.mean(), abs=1e-9)
    assert "without intermediate" in po.loc[("pretrain", "mean"), "arms"]
    # slopes per doubling, in units that match a 100-800 image axis
    assert set(po.loc["pretrain"].index) == {"mean", "log2_finetune", "log2_pretrain"}
    assert po.loc[("pretrain", "log2_pretrain"), "unit"] == "points per doubling of P (pre-trained models)"
    assert po.loc["intermediate"].formula.str.startswith("delta = b0").all()
    # the pre-training model fits the runs (the shared from-scratch run enters once), one F at a time
    assert po.loc["pretrain"].formula.str.startswith("at each F: y = a_F").all()


def test_two_seeds_are_flagged_where_they_carry_no_information():
    ds, _ = verdicts("two_seeds")
    pi = paired_intermediate(ds, "miou")
    assert set(np.round(pi.p_perm, 6)) <= {0.5, 1.0}  # what 2 seeds allow
    assert (~pi.perm_informative).all() and (pi.p_perm_min == 0.5).all()
    assert pi.dz.isna().all() and pi.dz_note.str.contains("n = 2").all()
    ds3, _ = verdicts("int_hurts")
    pi3 = paired_intermediate(ds3, "miou")
    assert pi3.dz.notna().all() and (~pi3.perm_informative).all() and (pi3.p_perm_min == 0.25).all()
    fits = fit_curves(ds, "miou", families=("exp3",), n_boot=4, n_restarts=1)
    assert fits.boot.str.startswith("residual bootstrap").all()
    # cell contrasts borrow the within-cell variance of every cell instead of 1 df per cell
    _, v = verdicts("two_seeds")
    h1 = v[v.kind == "H1_F"]
    assert h1.detail.str.contains("variance pooled over all cells").all()
    assert (h1.ci_hi - h1.ci_lo < 1.0).all()
    _, v3 = verdicts("int_hurts")
    assert not v3.detail.fillna("").str.contains("pooled over all cells").any()
    # report.json says the same, for the methods text
    assert small_n(ds) == dict(per_seed=True, n_seeds=2, p_perm_min=0.5, perm_informative=False, dz_reported=False,
                               contrast_variance="pooled over all cells",
                               curve_bootstrap="residual bootstrap of each fit")
    assert small_n(ds3)["dz_reported"] and small_n(ds3)["contrast_variance"] == "each cell's own"


def test_one_plateau_per_condition_everywhere():
    ds = scenario("int_hurts", noise=0.1)
    fits = fit_curves(ds, "miou", families=("exp3", "pow3", "log2"), n_boot=20, n_restarts=2)
    pl = plateaus(fits)
    assert len(pl) == 8 and not pl.duplicated(["metric", "pretrain", "intermediate"]).any()
    v = claims(ds, "miou", fits=fits).set_index("claim_id")
    for r in pl.itertuples():
        h2 = v.loc[f"H2_F_P{r.pretrain}_I{int(r.intermediate)}"]
        np.testing.assert_equal([h2.estimate, h2.ci_lo, h2.ci_hi], [r.plateau, r.plateau_lo, r.plateau_hi])
        assert h2.verdict == r.verdict
        if not r.identified:  # nothing that is not a plateau carries a value or an interval
            assert np.isnan([r.plateau, r.plateau_lo, r.plateau_hi]).all() and r.reason
    sat = fits[fits.family != "log2"]
    assert sat[~sat.identified][["plateau", "plateau_lo", "plateau_hi"]].isna().all().all()
    # the planted plateau (75) is found where the curve bends within the measured range
    found = pl[pl.identified]
    assert len(found) >= 4 and (abs(found.plateau - 75) < 3).all()


def test_a_log_linear_curve_never_gets_a_supported_plateau():
    ds = scenario("loglinear")
    fits = fit_curves(ds, "miou", families=("exp3", "pow3", "log2"), n_boot=10, n_restarts=2)
    pl = plateaus(fits)
    assert not (pl.verdict == "supported").any()


def test_transfer_is_not_fitted_through_as_few_points_as_parameters():
    ds, _ = verdicts("pt_crosses")
    fits = fit_curves(ds, "miou", families=("exp3", "log2"), n_boot=0, n_restarts=1)
    tr, tf = transfer(ds, "miou", fits=fits)
    assert len(tr) == 7 * len(ds.finetune)  # every condition but the from-scratch one, negatives kept
    assert (tr.d_t.dropna() <= 0).any() and tr.status.notna().all()
    few = tf[tf.n_points < 3]
    assert few.k.isna().all() and few.alpha.isna().all() and few.fit_note.str.contains("at least 3").all()
    assert tf[tf.n_points >= 3].alpha.notna().all()
