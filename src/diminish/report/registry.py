"""The paper build's files: one registry of what it reads and what it writes.

* :data:`ANALYSIS` - the analysis files the paper reads, from the analysis's own registry
  (:data:`diminish.analysis.outputs.OUTPUTS`; ``report.inputs`` derives its contract from it);
* :data:`FIGURES` - every figure: its title and the analysis files its script reads
  (``report.figures.FIGURES`` and ``module`` derive from it; ``figures/<name>.py`` draws it);
* :data:`TABLES` - every table, by the name of its ``.tex`` file (``report.tables.TABLES`` maps
  these names to the functions that render them and refuses a function not registered here).

``paper/paper.mk`` names the same files for make (``ANALYSIS_CSV``, ``FIGURE_NAMES`` and one rule per
figure listing its script and the analysis files it reads, ``TABLE_NAMES``); tests/test_registry.py
fails when the two disagree, and checks that each figure reads no analysis file it does not list.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..analysis.outputs import Output, paper_files

ANALYSIS: tuple[Output, ...] = paper_files()


@dataclass(frozen=True)
class Figure:
    title: str
    reads: tuple[str, ...] = ()    # analysis files (names in ANALYSIS) the figure's script reads
    examples: bool = False         # reads examples.npz beside the results


FIGURES: dict[str, Figure] = {
    "curves": Figure("Figure 1: metric against fine-tune size per pre-training size, with fitted curves",
                     ("summary.csv", "fits.csv", "curves.nc")),
    "pretrain": Figure("metric against pre-training size P, one series per fine-tune size F", ("summary.csv",)),
    "intermediate": Figure("Figure 2: intermediate fine-tuning effect per cell (mean +- SE)",
                           ("paired_intermediate.csv",)),
    "transfer": Figure("effective data transferred by pre-training", ("transfer.csv", "transfer_fit.csv")),
    "compare": Figure("our cell means against the published ones", ("compare.csv",)),
    "examples": Figure("Figure A1: input, truth and prediction for a few test images", examples=True),
    "pretrain_curves": Figure("Figure A2: SimMIM training loss per epoch of every pre-training stage"),
}

TABLES: tuple[str, ...] = (
    "baseline", "pretrained", "intermediate", "hyper", "fits", "verdicts", "paired_intermediate", "paired_pretrain",
    "transfer", "compare", "headline", "provenance", "verdicts_all", "skipped",
)


def _check() -> None:
    known = {o.name for o in ANALYSIS}
    for name, fig in FIGURES.items():
        unknown = [r for r in fig.reads if r not in known]
        if unknown:
            raise ValueError(f"report.registry: figure {name!r} reads {unknown}, not among the analysis files "
                             "the paper reads (diminish.analysis.outputs)")
    if len(set(TABLES)) != len(TABLES):
        raise ValueError("report.registry: a table is registered twice")


_check()
