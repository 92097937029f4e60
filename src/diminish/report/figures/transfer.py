"""Effective data transferred by pre-training: D_T = F_eff - F against F (log-log), per pre-training size.

Points beyond the from-scratch curve's measured range (extrapolated) are drawn hollow; lines are
the fitted power laws D_T = k F^alpha.
"""

from __future__ import annotations

import numpy as np

from ..inputs import Inputs
from ._common import colours, figure, log_finetune_axis, outside_legend, placeholder, pretrain_label


def draw(inp: Inputs):
    tr = inp.analysis.transfer
    tr = tr[(tr["metric"] == inp.metric)]
    if False in set(tr["intermediate"]):
        tr = tr[tr["intermediate"] == False]  # noqa: E712
    tr = tr[np.isfinite(tr["d_t"].astype(float)) & (tr["d_t"].astype(float) > 0)]
    if not len(tr):
        return placeholder("no positive effective transfer to plot")
    fit = inp.analysis.transfer_fit
    fit = fit[(fit["metric"] == inp.metric)]
    if False in set(fit["intermediate"]):
        fit = fit[fit["intermediate"] == False]  # noqa: E712
    fig, axes = figure(1, height=2.6, width=5.0)
    ax = axes[0]
    col = colours(inp.results.pretrain.values)
    F = np.asarray(sorted(inp.results.finetune.values), float)
    for p, g in tr.groupby("pretrain", sort=True):
        c = col[int(p)]
        ext = g["extrapolated"].astype(bool).to_numpy()
        ax.plot(g["finetune"][~ext], g["d_t"][~ext], "o", color=c, label=pretrain_label(p))
        if ext.any():
            ax.plot(g["finetune"][ext], g["d_t"][ext], "o", mfc="none", color=c)
        row = fit[fit["pretrain"] == p]
        if len(row) and np.isfinite(row["alpha"].iloc[0]):
            k, a = float(row["k"].iloc[0]), float(row["alpha"].iloc[0])
            f = np.geomspace(F.min(), F.max(), 50)
            ax.plot(f, k * f**a, color=c, lw=1.0)
    ax.set_yscale("log")
    log_finetune_axis(ax, F)
    ax.set_ylabel("effective data transferred $D_T$\n(extra fine-tuning images)")
    ax.plot([], [], "o", mfc="none", color="0.4", label="extrapolated")
    outside_legend(ax)
    return fig
