"""The metric against pre-training size P, one series per fine-tune size F (cell means +- 1 SD).

The figure the pre-training argument rests on: does more pre-training raise the score at a fixed
amount of fine-tuning data, and by less at larger F? P > 0 sits on a log2 axis (one tick per
measured size); P = 0 has no place on a log axis, so it is drawn one and a half doublings left of
the smallest P, set apart by a dashed vertical line and a thin, faded connector. One panel per
intermediate setting, sharing the y axis; the legend sits outside the data, on the right.
Reads results.nc only (cell means and SDs over seeds).
"""

from __future__ import annotations

import numpy as np

from ..inputs import Inputs, cell_table
from ..latex import size_label
from ._common import (
    AXIS_LABEL,
    demo_mark,
    figure,
    finetune_label,
    outside_legend,
    placeholder,
    series_styles,
)

ZERO_GAP = 1.5  # doublings between P = 0 and the smallest P > 0 on the axis


def positions(pretrain_sizes) -> dict[int, float]:
    """x position (log2 units) of each pre-training size; P = 0 is placed ZERO_GAP left of the smallest P > 0."""
    pos = sorted(int(p) for p in pretrain_sizes if p > 0)
    out = {p: float(np.log2(p)) for p in pos}
    if any(int(p) == 0 for p in pretrain_sizes):
        out[0] = (np.log2(pos[0]) if pos else 0.0) - ZERO_GAP
    return out


def draw(inp: Inputs):
    ds, m = inp.results, inp.metric
    if (ds.pretrain.values > 0).sum() < 1 or len(ds.pretrain) < 2:
        return placeholder("fewer than two pre-training sizes: nothing to plot against P")
    st = cell_table(inp, m)
    conds = [bool(i) for i in ds.intermediate.values]
    fig, axes = figure(len(conds), height=2.9, sharey=True)
    xpos = positions(ds.pretrain.values)
    Ps = sorted(xpos)
    style = series_styles(ds.finetune.values)
    for ax, i in zip(axes, conds):
        for k, f in enumerate(sorted(int(x) for x in ds.finetune.values)):
            sty = style[f]
            s = st.sel(intermediate=i, finetune=f)
            mean = np.array([float(s["mean"].sel(pretrain=p)) for p in Ps])
            sd = np.array([float(s["sd"].sel(pretrain=p)) for p in Ps])
            x = np.array([xpos[p] for p in Ps]) + 0.04 * (k - (len(style) - 1) / 2)
            ok = np.isfinite(mean)
            if not ok.any():
                continue
            ax.errorbar(x[ok], mean[ok], yerr=np.nan_to_num(sd[ok]), fmt=sty["marker"], color=sty["color"], ms=3.5,
                        capsize=2, elinewidth=0.8, zorder=3, mfc="white" if k % 2 else sty["color"],
                        label=f"$F$ = {finetune_label(f)}")
            pos = np.array([p > 0 for p in Ps]) & ok
            ax.plot(x[pos], mean[pos], color=sty["color"], ls=sty["ls"], lw=1.0, zorder=2)
            if 0 in Ps and ok[0] and pos.any():  # from scratch to the first pre-trained size: a different gap
                j = int(np.argmax(pos))
                ax.plot([x[0], x[j]], [mean[0], mean[j]], color=sty["color"], ls=sty["ls"], lw=0.6, alpha=0.55,
                        zorder=1)
        ax.set_xticks([xpos[p] for p in Ps])
        ax.set_xticklabels(["0" if p == 0 else size_label(p) for p in Ps])
        ax.set_xlim(min(xpos.values()) - 0.5, max(xpos.values()) + 0.5)
        if 0 in Ps and len(Ps) > 1:
            brk = (xpos[0] + xpos[Ps[1]]) / 2
            ax.axvline(brk, color="0.5", lw=0.6, ls="--", zorder=0)
        ax.set_title("with intermediate Intel fine-tuning" if i else "without intermediate fine-tuning")
    axes[0].set_ylabel(f"test {AXIS_LABEL[m]}")
    fig.supxlabel("pre-training images $P$ (log scale; $P$ = 0 set apart by the dashed line)", fontsize=8.5)
    outside_legend(axes[-1], title="fine-tuning")
    demo_mark(fig, inp.synthetic)
    return fig
