"""The one figure analysis draws itself: data with fitted curves and bootstrap bands (matplotlib Agg)."""

# ruff: noqa: E741  (P, I, F: pre-training size, intermediate flag, fine-tune size, as in the study)
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from .common import cell_stats, is_summary, seed_values


def plot_fits(ds: xr.Dataset, table: pd.DataFrame, curves: xr.Dataset, metric: str, path: str | Path,
              family: str | None = None) -> Path:
    """One panel per intermediate setting; per pre-training size the cell means +- SD (and the seeds),
    the chosen family's curve (the condition's best by default) and its 95% bootstrap band over the
    measured F range; legends outside the axes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Is = [bool(i) for i in ds.intermediate.values]
    fig = Figure(figsize=(5.2 * len(Is), 4.2))  # no pyplot: no backend is chosen or needed
    axes = fig.subplots(1, len(Is), sharey=True, squeeze=False)
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    cv = curves.sel(metric=metric)
    for ax, I in zip(axes[0], Is):
        for k, P in enumerate(int(p) for p in ds.pretrain.values):
            col = colors[k % len(colors)]
            Fs, ms, sds = [], [], []
            for F in ds.finetune.values:
                m, sd, n = cell_stats(ds, metric, P, I, F)
                if n:
                    Fs.append(float(F))
                    ms.append(m)
                    sds.append(sd if np.isfinite(sd) else 0.0)
                if not is_summary(ds):
                    v = seed_values(ds, metric, P, I, F)
                    ax.plot([F] * len(v), v, ".", color=col, alpha=0.35, ms=4)
            if not Fs:
                continue
            rows = table[(table.pretrain == P) & (table.intermediate == I) & (table.status == "ok")]
            pick = rows[rows.family == family] if family else rows[rows.best.astype(bool)]
            label = f"P={P:,}"
            if len(pick):
                r = pick.iloc[0]
                c = cv.sel(pretrain=P, intermediate=I, family=r.family)
                c = c.where((c.f >= min(Fs)) & (c.f <= max(Fs)), drop=True)  # the measured range only
                ax.plot(c.f, c.fit, "-", color=col, lw=1.5)
                ax.fill_between(c.f, c.lo, c.hi, color=col, alpha=0.18, lw=0)
                label += f" ({r.family})"
                if bool(r.identified):
                    ax.axhline(r.plateau, color=col, ls=":", lw=1)
            ax.errorbar(Fs, ms, yerr=sds, fmt="o", color=col, ms=4, capsize=2, label=label)
        ax.set_xscale("log")
        ticks = [float(f) for f in ds.finetune.values]
        ax.set_xticks(ticks, [f"{f:g}" for f in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("fine-tune images F")
        ax.set_title(f"intermediate fine-tuning: {'yes' if I else 'no'}")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # outside the data
    axes[0][0].set_ylabel(f"{metric} (%)")
    fig.suptitle(f"{metric}: data (mean ± SD), fitted curve, 95% bootstrap band; dotted = identified plateau",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=130, bbox_inches="tight")
    return path
