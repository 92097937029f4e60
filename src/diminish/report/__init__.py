"""The paper: numbers, tables, figures and LaTeX generated from results.nc and its analysis.

Only this package knows LaTeX. ``make paper`` (paper/paper.mk) runs its steps through
``python -m diminish.report``; from Python::

    from diminish.report import load_inputs, build_all
    inp = load_inputs("results/demo/results.nc", "analysis/demo")
    build_all(inp, "paper/build/demo")      # numbers.tex + numbers.json, tables/, figures/, paper.tex
"""

from .build import build_all
from .inputs import Inputs, ReportInputError, load_inputs

__all__ = ["Inputs", "ReportInputError", "build_all", "load_inputs"]
