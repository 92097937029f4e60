"""Figure 2: effect of intermediate fine-tuning (with minus without) per cell, mean +- SE over seeds."""

from __future__ import annotations

import numpy as np

from ..inputs import Inputs
from ..latex import METRIC_LABEL
from ._common import (
    demo_mark,
    figure,
    log_finetune_axis,
    outside_legend,
    placeholder,
    pretrain_label,
    series_styles,
)


def draw(inp: Inputs):
    df = inp.analysis.paired_intermediate
    df = df[df["metric"] == inp.metric].sort_values(["pretrain", "finetune"])
    if not len(df):
        return placeholder("no cell has both intermediate conditions")
    fig, axes = figure(1, height=2.6, width=5.0)
    ax = axes[0]
    style = series_styles(inp.results.pretrain.values)
    sizes = sorted(df["pretrain"].unique())
    # small horizontal offsets (in log space) keep the error bars apart
    offs = np.linspace(-0.07, 0.07, len(sizes)) if len(sizes) > 1 else [0.0]
    for k, (off, (p, g)) in enumerate(zip(offs, df.groupby("pretrain", sort=True))):
        x = g["finetune"].to_numpy(float) * 10**off
        sty = style[int(p)]
        # every other series hollow, so that series with nearly equal values stay apart
        ax.errorbar(x, g["mean_delta"], yerr=g["se"].fillna(0), fmt=sty["marker"], ls=sty["ls"], color=sty["color"],
                    ms=3.5, capsize=2, elinewidth=0.8, lw=1.0, label=pretrain_label(p),
                    mfc="white" if k % 2 else sty["color"])
    ax.axhline(0.0, color="0.3", lw=0.8, ls="--", zorder=0)
    log_finetune_axis(ax, inp.results.finetune.values)
    ax.set_ylabel(f"$\\Delta$ {METRIC_LABEL[inp.metric]} (points)\nwith $-$ without intermediate")
    outside_legend(ax)
    demo_mark(fig, inp.synthetic)
    return fig
