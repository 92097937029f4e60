"""Shared look of the figures: Agg backend, fonts, a print-safe style per series, the demo mark, saving.

Series (pre-training sizes, fine-tune sizes) are told apart three ways at once, so they survive
grey-scale printing and colour-blind readers: the Okabe-Ito colours, a marker and a line style
each (``series_styles``). Legends go outside the axes (``outside_legend``) and fitted curves are
drawn over the measured range only (``measured``).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D

from ..latex import size_label  # noqa: E402

TEXT_WIDTH_IN = 6.3  # the paper's text width (A4, 1-inch margins)
AXIS_LABEL = {"miou": "mIoU (%)", "accuracy": "pixel accuracy (%)"}  # axis titles; prose uses latex.METRIC_LABEL

STYLE = {
    "font.size": 8.5,
    "axes.titlesize": 9,
    "axes.labelsize": 8.5,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 7.5,
    "ytick.labelsize": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.5,
    "lines.linewidth": 1.3,
    "lines.markersize": 4,
    "pdf.fonttype": 42,
    "svg.hashsalt": "diminish",
    "path.simplify": False,
}


def figure(ncols: int = 1, height: float = 2.6, width: float = TEXT_WIDTH_IN, **kw):
    plt.rcParams.update(STYLE)
    fig, axes = plt.subplots(1, ncols, figsize=(width, height), layout="constrained", **kw)
    return fig, np.atleast_1d(axes)


# Okabe & Ito's colour-blind safe palette, ordered so that neighbours differ in grey value too
PALETTE = ("#000000", "#E69F00", "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#56B4E9", "#F0E442")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)))
DEMO_MARK = "SYNTHETIC DEMO DATA"


def series_styles(values) -> dict[int, dict]:
    """Colour, marker and line style per value (sorted ascending), distinct for up to 8 values."""
    vals = sorted(int(v) for v in values)
    return {v: dict(color=PALETTE[k % len(PALETTE)], marker=MARKERS[k % len(MARKERS)],
                    ls=LINESTYLES[k % len(LINESTYLES)]) for k, v in enumerate(vals)}


def series_handles(style: dict[int, dict], label, hollow_odd: bool = False) -> list:
    """Legend handles that show each series as drawn: its colour, marker and line style together."""

    return [Line2D([], [], color=st["color"], marker=st["marker"], ls=st["ls"], lw=1.1, ms=4,
                   mfc="white" if hollow_odd and k % 2 else st["color"], label=label(v))
            for k, (v, st) in enumerate(sorted(style.items()))]


def colours(pretrain_sizes) -> dict[int, str]:
    """A colour per pre-training size (the colour of :func:`series_styles`)."""
    return {p: st["color"] for p, st in series_styles(pretrain_sizes).items()}


def measured(f, *arrays, lo: float, hi: float):
    """Keep the points of a curve grid ``f`` (and arrays along it) inside the measured range [lo, hi]."""
    f = np.asarray(f, float)
    keep = (f >= lo * (1 - 1e-9)) & (f <= hi * (1 + 1e-9))
    return (f[keep],) + tuple(np.asarray(a)[keep] for a in arrays)


def demo_mark(fig, synthetic: bool) -> None:
    """Stamp synthetic-data figures in their top-right corner."""
    if synthetic:  # a suptitle, so that constrained layout keeps it clear of the axes
        fig.suptitle(DEMO_MARK, x=0.99, ha="right", fontsize=6.5, color="#D55E00")


def pretrain_label(p) -> str:
    return "no pre-training" if int(p) == 0 else f"{size_label(p)} pre-train"


def finetune_label(f) -> str:
    """Tick label for a fine-tune size: 250, 500, 1k, 2k, 1.5k."""
    f = int(f)
    return str(f) if f < 1000 else f"{f / 1000:g}k"


def outside_legend(ax, **kw):
    """Legend to the right of the axes (constrained layout makes room for it)."""
    return ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, **kw)


def log_finetune_axis(ax, finetune_sizes) -> None:
    ax.set_xscale("log")
    ticks = sorted(int(f) for f in finetune_sizes)
    ax.set_xticks(ticks)
    ax.set_xticklabels([finetune_label(t) for t in ticks])
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlim(ticks[0] / 1.25, ticks[-1] * 1.25)
    ax.set_xlabel("fine-tuning images $F$ (log scale)")


def placeholder(message: str, height: float = 1.2):
    """A small figure saying why there is nothing to plot (the paper leaves such figures out)."""
    fig, axes = figure(1, height=height)
    axes[0].axis("off")
    axes[0].text(0.5, 0.5, message, ha="center", va="center", transform=axes[0].transAxes)
    return fig


def save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="pdf", metadata={"CreationDate": None, "Creator": "diminish.report",
                                              "Producer": "matplotlib"})
    plt.close(fig)
    return path
