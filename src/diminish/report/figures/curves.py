"""Figure 1: the metric against fine-tune size (log axis), one series per pre-training size.

Points are cell means with error bars of one SD over seeds (from results.nc); lines are the best
curve family of each condition (fits.csv) from curves.nc with its 95% band, drawn over the measured
F range only. One panel per intermediate setting, sharing the y axis; the legend sits below the
panels, outside the data. Series differ in colour, marker and line style (print-safe).
"""

from __future__ import annotations

import numpy as np

from ..inputs import Inputs, best_fit, cell_table
from ._common import (
    AXIS_LABEL,
    demo_mark,
    figure,
    log_finetune_axis,
    measured,
    pretrain_label,
    series_handles,
    series_styles,
)


def _curve(inp: Inputs, p: int, i: bool):
    curves = inp.analysis.curves
    b = best_fit(inp.analysis.fits, inp.metric, p, i)
    if b is None:
        return None
    try:
        sel = curves.sel(metric=inp.metric, pretrain=p, intermediate=i, family=str(b["family"]))
    except KeyError:
        return None
    return sel["f"].values, sel["fit"].values, sel["lo"].values, sel["hi"].values, str(b["family"])


def draw(inp: Inputs):
    ds, m = inp.results, inp.metric
    st = cell_table(inp, m)
    conds = [bool(i) for i in ds.intermediate.values]
    fig, axes = figure(len(conds), height=3.0, sharey=True)
    style = series_styles(ds.pretrain.values)
    F = ds.finetune.values
    n_p = len(ds.pretrain)
    for ax, i in zip(axes, conds):
        for k, p in enumerate(ds.pretrain.values):
            sty = style[int(p)]
            s = st.sel(pretrain=p, intermediate=i)
            ok = np.isfinite(s["mean"].values)
            if not ok.any():
                continue
            # a small horizontal offset per series (in log space) keeps the error bars apart
            x = F * 10 ** (0.018 * (k - (n_p - 1) / 2))
            ax.errorbar(x[ok], s["mean"].values[ok], yerr=np.nan_to_num(s["sd"].values[ok]), fmt=sty["marker"],
                        color=sty["color"], ms=3.5, capsize=2, elinewidth=0.8, label=pretrain_label(p), zorder=3,
                        mfc="white" if k % 2 else sty["color"])
            cur = _curve(inp, int(p), i)
            if cur is not None:
                f, fit, lo, hi, _ = cur
                f, fit, lo, hi = measured(f, fit, lo, hi, lo=float(F[ok].min()), hi=float(F[ok].max()))
                ax.plot(f, fit, color=sty["color"], ls=sty["ls"], lw=1.1, zorder=2)
                ax.fill_between(f, lo, hi, color=sty["color"], alpha=0.12, lw=0, zorder=1)
        log_finetune_axis(ax, F)
        ax.set_title("with intermediate Intel fine-tuning" if i else "without intermediate fine-tuning")
    axes[0].set_ylabel(f"test {AXIS_LABEL[m]}")
    handles = series_handles(style, pretrain_label, hollow_odd=True)  # marker and line style, as drawn
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), frameon=False)
    demo_mark(fig, inp.synthetic)
    return fig
