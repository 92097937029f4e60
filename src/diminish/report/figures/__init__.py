"""One module per figure, so that changing one figure's script redraws only that figure.

Each module defines ``draw(inp: Inputs) -> matplotlib.figure.Figure``; :func:`save` writes it as a
vector PDF without a creation date (byte-identical on re-runs). ``FIGURES`` maps the figure names
used by the build (``python -m diminish.report figure NAME``) to their titles; the names are
registered in :data:`diminish.report.registry.FIGURES`.
"""

from __future__ import annotations

import importlib

from ..registry import FIGURES as REGISTRY

# name -> title, from the build's registry (report/registry.py: also what each figure reads)
FIGURES: dict[str, str] = {name: fig.title for name, fig in REGISTRY.items()}


def module(name: str):
    if name not in FIGURES:
        raise KeyError(f"unknown figure {name!r}; known: {', '.join(FIGURES)}")
    return importlib.import_module(f"{__name__}.{name}")
