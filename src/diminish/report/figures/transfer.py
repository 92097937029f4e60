"""Effective data transferred: D_T = F_eff - F against F, every condition, negative values included.

One panel per intermediate setting. The y axis is symmetric-logarithmic (linear within +-LINTHRESH
images, logarithmic beyond), so gains, zero and losses (D_T <= 0: the earlier stages were worth
no extra fine-tuning images, or fewer) all show; a dashed line marks D_T = 0. Points whose F_eff
lies beyond the from-scratch curve's measured range (extrapolated) are hollow. A power law
D_T = k F^alpha is drawn only where transfer_fit.csv has one (at least 3 positive points), over
the F range of those points. Points without a finite F_eff cannot be drawn: :func:`left_out`
gives them, for the caption (which counts them and names a few).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullLocator

from ..inputs import Inputs
from ..latex import size_label
from ._common import (
    demo_mark,
    figure,
    log_finetune_axis,
    outside_legend,
    placeholder,
    pretrain_label,
    series_styles,
)

LINTHRESH = 10.0  # images


def _rows(inp: Inputs) -> pd.DataFrame:
    tr = inp.analysis.transfer
    return tr[tr["metric"] == inp.metric] if len(tr) else tr


def left_out(inp: Inputs) -> tuple[list[tuple[str, str]], int]:
    """The transfer values the figure cannot draw, as (why, where) pairs, and how many values there are
    (for the caption, which counts them: :func:`..summaries.counted`)."""
    tr = _rows(inp)
    if not len(tr):
        return [], 0
    bad = tr[~np.isfinite(tr["d_t"].astype(float))]
    why = "with no finite effective data (the score lies outside the range of the from-scratch curve)"
    return [(why, f"P = {size_label(r.pretrain) if r.pretrain else 0}, {'with' if r.intermediate else 'without'} "
                  f"intermediate fine-tuning, F = {int(r.finetune)}") for r in bad.itertuples()], len(tr)


def draw(inp: Inputs):
    tr = _rows(inp)
    tr = tr[np.isfinite(tr["d_t"].astype(float))] if len(tr) else tr
    if not len(tr):
        return placeholder("no effective-transfer values: no from-scratch curve to invert")
    fit = inp.analysis.transfer_fit
    fit = fit[fit["metric"] == inp.metric] if len(fit) else fit
    conds = sorted({bool(i) for i in tr["intermediate"]})
    fig, axes = figure(len(conds), height=2.8, sharey=True, width=6.3)
    style = series_styles(inp.results.pretrain.values)
    F = np.asarray(sorted(inp.results.finetune.values), float)
    n_p = len(style)
    for ax, i in zip(axes, conds):
        g_i = tr[tr["intermediate"].astype(bool) == i]
        for p, g in g_i.groupby("pretrain", sort=True):
            k = sorted(style).index(int(p))
            sty = style[int(p)]
            g = g.sort_values("finetune")
            x = g["finetune"].to_numpy(float) * 10 ** (0.018 * (k - (n_p - 1) / 2))
            y = g["d_t"].to_numpy(float)
            ext = g["extrapolated"].astype(bool).to_numpy()
            ax.plot(x, y, color=sty["color"], lw=0.6, alpha=0.5, zorder=1)  # thin guide between points
            ax.plot(x[~ext], y[~ext], sty["marker"], color=sty["color"], ms=4, zorder=3, ls="none",
                    label=pretrain_label(p))
            ax.plot(x[ext], y[ext], sty["marker"], color=sty["color"], mfc="white", ms=4, zorder=3, ls="none",
                    label=None if (~ext).any() else pretrain_label(p))
            row = fit[(fit["pretrain"] == p) & (fit["intermediate"].astype(bool) == i)] if len(fit) else fit
            if len(row) and np.isfinite(float(row["alpha"].iloc[0])):
                k_, a = float(row["k"].iloc[0]), float(row["alpha"].iloc[0])
                pos = g[g["d_t"].astype(float) > 0]["finetune"].to_numpy(float)
                f = np.geomspace(pos.min(), pos.max(), 40)
                ax.plot(f, k_ * f**a, color=sty["color"], ls=sty["ls"], lw=1.2, zorder=2)
        ax.axhline(0.0, color="0.3", lw=0.8, ls="--", zorder=0)
        ax.set_yscale("symlog", linthresh=LINTHRESH)
        log_finetune_axis(ax, F)
        ax.set_title("with the intermediate stage" if i else "without the intermediate stage", fontsize=8)
    top = float(np.nanmax(np.abs(tr["d_t"].astype(float))))
    decades = [10.0**e for e in range(1, max(1, int(np.ceil(np.log10(max(top, LINTHRESH))))) + 1)]
    ticks = sorted([-d for d in decades] + [0.0] + decades)
    axes[0].set_yticks(ticks)
    axes[0].yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}".replace("-", "\u2212")))
    axes[0].yaxis.set_minor_locator(NullLocator())
    axes[0].set_ylabel("effective data transferred $D_T$\n(fine-tuning images; symlog)")

    handles = [Line2D([], [], color=st["color"], marker=st["marker"], ms=4, ls="none", label=pretrain_label(p))
               for p, st in sorted(style.items())]
    handles += [Line2D([], [], marker="o", color="0.4", mfc="white", ls="none", label="$F_{eff}$ extrapolated"),
                Line2D([], [], color="0.4", lw=1.2, label="$D_T = k F^{\\alpha}$ fit, in the\nseries' line style "
                                                            "(>= 3 points)")]
    outside_legend(axes[-1], handles=handles)
    demo_mark(fig, inp.synthetic)
    return fig
