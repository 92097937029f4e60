"""The pooled models' 95% intervals cover planted truths (analysis.coverage: the demo grid and its noise).

200 simulated data sets per case, 2 and 3 seeds, null and non-null effects. The pre-training model
fits the runs, so the from-scratch run shared by every difference at one (F, seed) enters once;
the old model of those differences as independent is kept as the check that the simulation can
see the fault it was built for.
"""

from __future__ import annotations

import pytest

from diminish.analysis.coverage import coverage

N_SETS = 200


@pytest.mark.parametrize("n_seeds", [2, 3])
@pytest.mark.parametrize("nonnull", [False, True])
def test_pretraining_intervals_cover(n_seeds, nonnull):
    c = coverage(N_SETS, n_seeds, nonnull, "pretrain", "runs")
    assert c["n_sets"] == N_SETS
    assert c["mean"] >= 0.90 and c["by_f"] >= 0.90, c
    assert c["mean"] <= 0.995, c  # not covering by being uselessly wide


def test_intermediate_intervals_cover():
    for n_seeds in (2, 3):
        c = coverage(N_SETS, n_seeds, True, "intermediate", "differences")
        assert c["mean"] >= 0.90 and c["by_f"] >= 0.90, c


def test_the_simulation_sees_the_shared_baseline():
    # differences sharing one from-scratch run, taken as independent: intervals too narrow
    c = coverage(N_SETS, 2, False, "pretrain", "differences")
    assert c["by_f"] < 0.88 and c["mean"] < 0.92, c
