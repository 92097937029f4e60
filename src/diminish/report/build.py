"""Every generation step in one call (what ``make paper`` does step by step, without LaTeX); the LaTeX run
is :func:`diminish.report.latexlog.compile_pdf`."""

from __future__ import annotations

from pathlib import Path

from .figures import FIGURES, module
from .figures._common import save
from .numbers import json_path, read_numbers, write_numbers
from .render import write_paper
from .tables import write_tables


def build_all(inp, out_dir: str | Path) -> Path:
    """numbers.tex (+ numbers.json), tables/*.tex, figures/*.pdf and paper.tex in ``out_dir``, by the
    same functions as the make steps: the numbers are computed once, and paper.tex reads them back
    from numbers.json as ``python -m diminish.report tex`` does. Returns paper.tex."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    numbers = write_numbers(inp, out_dir / "numbers.tex")
    write_tables(inp, out_dir / "tables")
    for name in FIGURES:
        save(module(name).draw(inp), out_dir / "figures" / f"{name}.pdf")
    return write_paper(inp, out_dir / "paper.tex", read_numbers(json_path(numbers), inp))
