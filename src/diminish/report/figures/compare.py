"""Our cell means against the published ones: scatter with the identity line, and the differences.

Left: ours (y) against the paper (x), error bars one SD each way, both metrics. Right: ours minus
published against fine-tune size, per condition, with the published cells' SD as a grey band scale.
"""

from __future__ import annotations

import numpy as np

from ..inputs import Inputs
from ..latex import METRIC_LABEL, size_label
from ._common import colours, demo_mark, figure, log_finetune_axis, placeholder

MARK = {"miou": "o", "accuracy": "s"}


def draw(inp: Inputs):
    df = inp.analysis.compare.dropna(subset=["ours_mean", "paper_mean"])
    if not len(df):
        return placeholder("no cell of these results has a published counterpart")
    fig, (a1, a2) = figure(2, height=2.9)
    col = colours(inp.results.pretrain.values)
    for m, g in df.groupby("metric", sort=True):
        for p, gp in g.groupby("pretrain", sort=True):
            c = col.get(int(p), "0.3")
            a1.errorbar(gp["paper_mean"], gp["ours_mean"], xerr=gp["paper_sd"].fillna(0),
                        yerr=gp["ours_sd"].fillna(0), fmt=MARK.get(m, "o"), color=c, ms=3, elinewidth=0.6,
                        mfc=c if m == "miou" else "none")
    lo = float(np.nanmin(df[["paper_mean", "ours_mean"]].to_numpy())) - 2
    hi = float(np.nanmax(df[["paper_mean", "ours_mean"]].to_numpy())) + 2
    a1.plot([lo, hi], [lo, hi], color="0.3", lw=0.8, ls="--")
    a1.set_xlim(lo, hi)
    a1.set_ylim(lo, hi)
    a1.set_aspect("equal", adjustable="box")
    a1.set_xlabel("published mean (%)")
    a1.set_ylabel("our mean (%)")
    for m in sorted(df["metric"].unique()):
        a1.plot([], [], MARK.get(m, "o"), color="0.3", mfc="0.3" if m == "miou" else "none",
                label=METRIC_LABEL.get(m, m))
    a1.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # outside the data

    g = df[df["metric"] == inp.metric] if inp.metric in set(df["metric"]) else df
    for (p, i), gp in g.groupby(["pretrain", "intermediate"], sort=True):
        gp = gp.sort_values("finetune")
        a2.plot(gp["finetune"], gp["diff"], "-" if not i else "--", marker="o" if not i else "^",
                color=col.get(int(p), "0.3"), ms=3, lw=1.0,
                label=f"{size_label(p) + ' pre-train' if p else 'no pre-training'}{' + interm.' if i else ''}")
    a2.axhline(0.0, color="0.3", lw=0.8)
    log_finetune_axis(a2, sorted(g["finetune"].unique()))
    a2.set_ylabel(f"ours $-$ published {METRIC_LABEL.get(inp.metric, inp.metric)} (points)")
    a2.legend(frameon=False, fontsize=6.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    demo_mark(fig, inp.synthetic)
    return fig
