"""One module per figure, so that changing one figure's script redraws only that figure.

Each module defines ``draw(inp: Inputs) -> matplotlib.figure.Figure``; :func:`save` writes it as a
vector PDF without a creation date (byte-identical on re-runs). ``FIGURES`` maps the figure names
used by the build (``python -m diminish.report figure NAME``) to their modules.
"""

from __future__ import annotations

import importlib

FIGURES = {
    "curves": "Figure 1: metric against fine-tune size per pre-training size, with fitted curves",
    "intermediate": "Figure 2: intermediate fine-tuning effect per cell (mean +- SE)",
    "examples": "Figure A1: input, truth and prediction for a few test images",
    "transfer": "effective data transferred by pre-training",
    "compare": "our cell means against the published ones",
    "pretrain": "metric against pre-training size P, one series per fine-tune size F",
    "pretrain_curves": "Figure A2: SimMIM training loss per epoch of every pre-training stage",
}


def module(name: str):
    if name not in FIGURES:
        raise KeyError(f"unknown figure {name!r}; known: {', '.join(FIGURES)}")
    return importlib.import_module(f"{__name__}.{name}")
