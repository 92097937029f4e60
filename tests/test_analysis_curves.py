import numpy as np
import pytest

from diminish.analysis.common import write_csv
from diminish.analysis.curves import (
    F_REF,
    FAMILIES,
    aicc,
    akaike_weights,
    f_to_fraction,
    fit_curves,
    fit_curves_detailed,
    fit_family,
    gain_per_doubling,
    predict,
)
from diminish.results import empty_results, example_results

TRUE = {
    "pow3": [70.0, 12.0, 0.5],
    "exp3": [70.0, 30.0, 1500.0],
    "mmf4": [70.0, 20.0, 800.0, 1.2],
    "wbl4": [70.0, 20.0, 1000.0, 0.8],
    "log2": [10.0, 6.0],
}


def curve_results(fn, sizes=(250, 500, 1000, 2000, 4000, 6000), seeds=(0, 1, 2), noise=0.3, rng_seed=0):
    """A one-condition results set (P=0, no intermediate) with y = fn(F) + noise."""
    rng = np.random.default_rng(rng_seed)
    ds = empty_results([0], [False], sizes, seeds)
    F = ds.finetune.values[None, None, :, None].astype(float)
    ds["miou"][:] = fn(F) + rng.normal(0, noise, ds.miou.shape)
    ds["accuracy"][:] = ds["miou"].values
    return ds


@pytest.mark.parametrize("name", list(FAMILIES))
def test_recovers_known_parameters_from_noisy_curves(name):
    F = np.repeat(np.geomspace(100, 20000, 10), 3)
    true = np.array(TRUE[name])
    for s in range(2):
        y = predict(name, true, F) + np.random.default_rng(s).normal(0, 0.2, len(F))
        fit = fit_family(name, F, y, np.random.default_rng(0))
        assert abs(fit.theta[0] - true[0]) < 0.5
        np.testing.assert_allclose(fit.theta[1:], true[1:], rtol=0.1)
        # residuals at the noise level, i.e. the global optimum was found
        assert fit.rss / len(F) < 0.2**2 * 1.6


def test_pipeline_recovers_plateau_and_prefers_true_family():
    ds = curve_results(lambda F: predict("pow3", TRUE["pow3"], F), noise=0.2)
    t = fit_curves(ds, "miou", n_boot=40)
    pow3 = t[t.family == "pow3"].iloc[0]
    assert pow3.identified and abs(pow3.plateau - 70.0) < 1.5
    assert pow3.plateau_lo <= pow3.plateau <= pow3.plateau_hi
    assert t.set_index("family").akaike_weight["log2"] < 0.01
    np.testing.assert_allclose(t.akaike_weight.sum(), 1.0)
    assert pow3.gain_1000 == pytest.approx(gain_per_doubling("pow3", TRUE["pow3"], 1000), abs=0.3)


def test_identifiability_flag_fires_on_a_straight_line_in_log_f():
    for s in range(2):
        ds = curve_results(lambda F: 10 + 6 * np.log(F), noise=0.4, rng_seed=s)
        t = fit_curves(ds, "miou", n_boot=60)
        sat = t[t.family != "log2"]
        assert not sat.identified.any(), sat[["family", "reason"]]
        assert sat.plateau.isna().all()
        assert (sat.reason.str.len() > 0).all()
        assert t[t.best].family.iloc[0] == "log2"


def test_asymptote_stays_within_0_100():
    # steep rise towards a value above 100: the asymptote must stop at the bound and be flagged
    ds = curve_results(lambda F: 130 - 80 * (F / 250) ** -0.3, noise=0.2)
    t = fit_curves(ds, "miou", n_boot=20)
    sat = t[t.family != "log2"]
    assert (sat.plateau_est <= 100).all() and (sat.plateau_est >= 0).all()
    assert (sat.plateau_hi.dropna() <= 100).all()
    assert sat[sat.plateau_est > 99.9].reason.str.contains("on bound").all()
    # a plateau on the bound is no plateau: no value and no interval anywhere in the table
    on = sat[sat.plateau_est > 99.9]
    assert len(on) and on.plateau.isna().all() and on.plateau_lo.isna().all() and on.plateau_hi.isna().all()


def test_fits_csv_is_byte_identical_across_runs(tmp_path):
    ds = example_results(3)
    a, _ = fit_curves_detailed(ds, "miou", n_boot=15, seed=7)
    b, _ = fit_curves_detailed(ds, "miou", n_boot=15, seed=7)
    pa, pb = write_csv(a, tmp_path / "a.csv"), write_csv(b, tmp_path / "b.csv")
    assert pa.read_bytes() == pb.read_bytes()
    c, _ = fit_curves_detailed(ds, "miou", n_boot=15, seed=8)
    assert not c.plateau_lo.equals(a.plateau_lo)  # the seed does drive the bootstrap


def test_small_sizes_gain_columns_and_skipped_fits():
    ds = curve_results(lambda F: 60 - 30 * (F / 16) ** -0.5, sizes=(16, 32, 64, 128), noise=0.3)
    t, curves = fit_curves_detailed(ds, "miou", n_boot=10)
    ok = t[t.status == "ok"]
    assert ok.gain_1000.isna().all() and ok.gain_fmin.notna().all()
    skipped = t[t.status.str.startswith("skipped")]
    assert set(skipped.family) == {"mmf4", "wbl4"}  # 4 sizes < 5 needed
    assert any("skipped" in n for n in t.attrs["notes"])
    assert curves.fit.sel(family="mmf4").isnull().all()
    assert float(curves.f.min()) == pytest.approx(8.0)


def test_leave_largest_out_error_small_for_the_true_family():
    ds = curve_results(lambda F: predict("exp3", TRUE["exp3"], F), noise=0.05)
    t = fit_curves(ds, "miou", n_boot=0).set_index("family")
    assert abs(t.loc["exp3", "loo_error"]) < 0.3
    assert abs(t.loc["log2", "loo_error"]) > 1.0


def test_f95_and_aicc_helpers():
    a, b, c = 70.0, 12.0, 0.5
    expected = F_REF * (b / (0.05 * a)) ** (1 / c)
    assert f_to_fraction("pow3", [a, b, c]) == pytest.approx(expected, rel=1e-6)
    assert np.isnan(aicc(1.0, 6, 4))  # n - K - 1 = 0
    d, w = akaike_weights([10.0, 12.0, np.nan])
    assert d[0] == 0 and w[2] == 0 and w.sum() == pytest.approx(1.0)
    assert w[0] / w[1] == pytest.approx(np.exp(1.0))


def test_single_seed_uses_residual_bootstrap():
    ds = curve_results(lambda F: predict("pow3", TRUE["pow3"], F), seeds=(0,), noise=0.2)
    t = fit_curves(ds, "miou", n_boot=30)
    pow3 = t[t.family == "pow3"].iloc[0]
    assert pow3.plateau_hi > pow3.plateau_lo  # a real interval despite one seed
    assert any("residual bootstrap" in n for n in t.attrs["notes"])
