"""Figure 1: the metric against fine-tune size (log axis), one line per pre-training size.

Points are cell means with error bars of one SD over seeds (from results.nc); lines are the best
curve family of each condition (fits.csv) drawn from curves.nc with its 95% band. One panel per
intermediate condition, sharing the y axis.
"""

from __future__ import annotations

import numpy as np

from ..inputs import Inputs, best_fit, cell_stats
from ._common import METRIC_LABEL, colours, figure, log_finetune_axis, pretrain_label


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
    st = cell_stats(ds, m)
    conds = [bool(i) for i in ds.intermediate.values]
    fig, axes = figure(len(conds), height=2.8, sharey=True)
    col = colours(ds.pretrain.values)
    F = ds.finetune.values
    for ax, i in zip(axes, conds):
        for p in ds.pretrain.values:
            c = col[int(p)]
            s = st.sel(pretrain=p, intermediate=i)
            ax.errorbar(F, s["mean"].values, yerr=np.nan_to_num(s["sd"].values), fmt="o", color=c, ms=3.5,
                        capsize=2, elinewidth=0.8, label=pretrain_label(p), zorder=3)
            cur = _curve(inp, int(p), i)
            if cur is not None:
                f, fit, lo, hi, _ = cur
                keep = (f >= F.min() / 1.3) & (f <= F.max() * 1.3)  # measured range and a little more
                f, fit, lo, hi = f[keep], fit[keep], lo[keep], hi[keep]
                ax.plot(f, fit, color=c, lw=1.1, zorder=2)
                ax.fill_between(f, lo, hi, color=c, alpha=0.18, lw=0, zorder=1)
        log_finetune_axis(ax, F)
        ax.set_title("with intermediate Intel fine-tuning" if i else "without intermediate fine-tuning")
    axes[0].set_ylabel(f"test {METRIC_LABEL[m]}")
    axes[-1].legend(loc="lower right", frameon=False)
    return fig
