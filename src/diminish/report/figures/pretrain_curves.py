"""Figure A2: the SimMIM training loss of every pre-training stage per epoch (``pretrain_loss_curve``
in results.nc), one line per seed, coloured by pre-training size."""

from __future__ import annotations

import numpy as np

from ..inputs import Inputs
from ._common import colours, figure, outside_legend, placeholder, pretrain_label


def draw(inp: Inputs):
    ds = inp.results
    if "pretrain_loss_curve" not in ds or not np.isfinite(ds["pretrain_loss_curve"].values).any():
        return placeholder("no per-epoch pre-training losses in this results file")
    curve = ds["pretrain_loss_curve"]
    fig, axes = figure(1, height=2.4, width=5.0)
    ax = axes[0]
    col = colours(ds.pretrain.values)
    epochs = curve["pretrain_epoch"].values
    for p in ds.pretrain.values:
        first = True
        for s in ds.seed.values:
            y = curve.sel(pretrain=p, seed=s).values
            if not np.isfinite(y).any():
                continue
            seeds = f"{len(ds.seed)} seed{'s' if len(ds.seed) != 1 else ''}"
            ax.plot(epochs, y, "-o", ms=2.5, lw=1.0, color=col[int(p)], alpha=0.85,
                    label=f"{pretrain_label(p)} ({seeds})" if first else None)
            first = False
    ax.set_xlabel("pre-training epoch")
    ax.set_ylabel("SimMIM masked L1\n(training loss, epoch mean)")
    outside_legend(ax)
    return fig
