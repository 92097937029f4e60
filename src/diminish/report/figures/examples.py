"""Figure A1: a few test images with their true and predicted tri-maps (from examples.npz)."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch

from ...data.classes import TRIMAP_CLASSES
from ..inputs import Inputs
from ._common import TEXT_WIDTH_IN, demo_mark, figure, placeholder

# pet, background, border
TRIMAP_COLOURS = ["#e6a01d", "#3b4cc0", "#f7f7f7"]
MAX_ROWS = 3


def shown(inp: Inputs) -> int:
    """How many test images the figure shows (the first MAX_ROWS of examples.npz), for the caption."""
    ex = inp.examples
    return 0 if ex is None else min(MAX_ROWS, len(ex["image"]))


def draw(inp: Inputs):
    ex = inp.examples
    if ex is None or not len(ex["image"]):
        return placeholder("no examples.npz beside the results file")
    n = shown(inp)
    cmap = ListedColormap(TRIMAP_COLOURS)
    fig, _ = figure(1, height=1.0)
    fig.clear()
    fig.set_size_inches(TEXT_WIDTH_IN * 0.62, 1.35 * n + 0.35)
    axes = fig.subplots(n, 3, squeeze=False)
    for r in range(n):
        img = ex["image"][r]
        if img.shape[0] == 3 and img.shape[-1] != 3:  # (3,H,W) -> (H,W,3)
            img = np.moveaxis(img, 0, -1)
        panels = (img, ex["truth"][r], ex["pred"][r])
        for c, (ax, data) in enumerate(zip(axes[r], panels)):
            if c == 0:
                ax.imshow(data, interpolation="nearest")
            else:
                ax.imshow(data, cmap=cmap, vmin=-0.5, vmax=2.5, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if r == 0:
                ax.set_title(("input", "ground truth", "prediction")[c])
    handles = [Patch(facecolor=TRIMAP_COLOURS[k], edgecolor="0.4", label=name) for k, name in enumerate(TRIMAP_CLASSES)]
    fig.legend(handles=handles, loc="outside lower center", ncol=3, frameon=False)
    demo_mark(fig, inp.synthetic)
    return fig
