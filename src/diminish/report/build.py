"""Every generation step in one call (what ``make paper`` does step by step, without LaTeX), and the LaTeX run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .figures import FIGURES, module
from .figures._common import save
from .latexlog import LatexError, explain
from .numbers import json_path, read_numbers, write_numbers
from .render import write_paper
from .tables import write_tables

# the latexmk call of paper/paper.mk
LATEXMK = ["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "-silent",
           "paper.tex"]


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


def compile_pdf(out_dir: str | Path, bib: str | Path | None = None, timeout: float = 300) -> Path:
    """latexmk on ``out_dir/paper.tex`` as paper.mk runs it (``bib``: references.bib to copy beside it, if
    missing). Returns paper.pdf; a failure raises :class:`.latexlog.LatexError` naming the generated file and
    line, what wrote it and the log (:func:`.latexlog.explain`)."""

    out_dir = Path(out_dir)
    if bib is not None and not (out_dir / "references.bib").exists():
        shutil.copy(bib, out_dir / "references.bib")
    # the figures are included by name from figures/ (paper.tex sets \graphicspath)
    proc = subprocess.run(LATEXMK, cwd=out_dir, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise LatexError(explain(out_dir))
    return out_dir / "paper.pdf"
