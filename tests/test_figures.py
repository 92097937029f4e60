"""The paper's figures on planted results: every value drawn, fits over the measured range only,
legends outside the data, series that differ in more than colour, the demo mark.

One real analysis of a planted results set (few bootstrap draws) feeds every figure.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from diminish.analysis.pipeline import report
from diminish.report import load_inputs
from diminish.report.figures import FIGURES, module
from diminish.report.figures._common import DEMO_MARK, series_styles
from diminish.results import write_results
from planted import scenario

matplotlib.use("Agg")


@pytest.fixture(scope="module")
def inp(tmp_path_factory):
    root = tmp_path_factory.mktemp("figs")
    ds = scenario("pt_crosses", n_seeds=2)  # negative effective transfer, 2 seeds
    res = write_results(ds, root / "results.nc")
    report(str(res), root / "analysis", metrics=("miou",), n_boot=4, plot=False)
    return load_inputs(res, root / "analysis")


def _points(ax) -> list[tuple[float, float]]:
    """(x, y) of every data marker drawn in an axes (lines without a line style; error-bar caps excluded)."""
    out = []
    for line in ax.get_lines():
        if line.get_linestyle() in ("None", "none", "") and line.get_marker() not in (None, "None", "", "_", "|"):
            out += list(zip(*line.get_data()))
    return [(float(x), float(y)) for x, y in out]


def test_transfer_draws_every_finite_value_including_losses(inp):
    fig = module("transfer").draw(inp)
    tr = inp.analysis.transfer
    tr = tr[(tr.metric == "miou") & np.isfinite(tr.d_t.astype(float))]
    assert (tr.d_t < 0).any() and set(tr.intermediate) == {False, True}  # what must show
    ys = sorted(y for ax in fig.axes for _, y in _points(ax))
    assert ys == pytest.approx(sorted(tr.d_t.astype(float)))
    assert all(ax.get_yscale() == "symlog" for ax in fig.axes[:2])
    # a power law is drawn only for conditions with at least 3 positive points
    fitted = inp.analysis.transfer_fit
    assert fitted[fitted.n_points < 3].alpha.isna().all()


def test_curves_are_drawn_over_the_measured_range_only(inp):
    fig = module("curves").draw(inp)
    F = inp.results.finetune.values
    for ax in fig.axes:
        for line in ax.get_lines():
            if line.get_linestyle() not in ("None", "none", ""):
                x = np.asarray(line.get_xdata(), float)
                assert x.min() >= F.min() * 0.999 and x.max() <= F.max() * 1.001


@pytest.mark.parametrize("name", ["curves", "transfer", "pretrain", "intermediate"])
def test_legends_sit_outside_the_data(inp, name):
    fig = module(name).draw(inp)
    fig.canvas.draw()
    legends = fig.legends + [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    assert legends
    r = fig.canvas.get_renderer()
    for leg in legends:
        box = leg.get_window_extent(r)
        for ax in fig.axes:
            assert not box.overlaps(ax.get_window_extent(r)), (name, ax.get_title())


def test_pretrain_figure_has_one_series_per_fine_tune_size_per_panel(inp):
    fig = module("pretrain").draw(inp)
    assert "pretrain" in FIGURES
    F = inp.results.finetune.values
    P = inp.results.pretrain.values
    for ax in fig.axes[:2]:
        labels = [t.get_text() for t in ax.get_xticklabels()]
        assert labels[0] == "0" and len(labels) == len(P)
        pts = _points(ax)
        assert len(pts) == len(F) * len(P)


def test_series_differ_in_colour_marker_and_line_style():
    st = series_styles(range(8))
    for key in ("color", "marker", "ls"):
        assert len({str(s[key]) for s in st.values()}) == 8


def test_every_figure_carries_the_demo_mark_only_on_synthetic_results(inp):
    for name in ("curves", "transfer", "pretrain", "intermediate"):
        fig = module(name).draw(inp)
        assert fig.get_suptitle() == DEMO_MARK
    inp.results.attrs["synthetic"] = 0
    try:
        assert module("pretrain").draw(inp).get_suptitle() == ""
    finally:
        inp.results.attrs["synthetic"] = 1
