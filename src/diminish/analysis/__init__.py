"""Analysis of a results set (or of the paper's own tables): curves, paired tests, claims, transfer.

Python API (every function returns pandas DataFrames whose ``attrs["notes"]`` carry the warnings):

    ds = load("results/demo/results.nc")        # or load("paper")
    fits = fit_curves(ds, "miou")               # fits.csv rows
    fits, curves = fit_curves_detailed(ds, "miou")
    inter, pre, pooled_ = paired_tests(ds, "miou")
    verdicts = claims(ds, "miou"); headline(verdicts)
    tr, tr_fit = transfer(ds, "miou")
    compare_paper(ds, "miou", tolerance=2.0)
    report("paper", "/tmp/ref")                 # everything into one folder

Command line: ``python -m diminish.analysis --help``; the outputs are described in analysis/README.md.
"""

from .claims import claims
from .common import load, missing, summary
from .compare import compare_paper
from .curves import FAMILIES, fit_curves, fit_curves_detailed
from .headline import headline
from .paired import paired_intermediate, paired_pretrain, paired_tests
from .pipeline import report
from .plateaus import plateaus
from .pooled import effect_by_f, pooled
from .reference import load_reference, paper_table
from .transfer import transfer

__all__ = [
    "FAMILIES", "claims", "compare_paper", "effect_by_f", "plateaus", "fit_curves", "fit_curves_detailed", "headline",
    "load",
    "load_reference", "missing", "paired_intermediate", "paired_pretrain", "paired_tests", "paper_table",
    "pooled", "report", "summary", "transfer",
]
