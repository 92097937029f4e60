"""The generated paper compiles, and its PDF text holds the results' values and the demo mark.

Skipped where the TeX toolchain (latexmk, pdflatex) or pdftotext is missing; `make paper` installs
TeX from Debian (see paper/paper.mk).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from diminish.report import build_all, load_inputs
from test_report import make_inputs

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("latexmk", "pdflatex", "bibtex", "pdftotext")),
    reason="TeX toolchain or pdftotext missing (make paper installs TeX; apt-get install poppler-utils)",
)


def real_analysis(results: Path, out: Path) -> Path | None:
    """The analysis package's report on these results (few bootstrap draws), if it is installed."""
    try:
        from diminish.analysis.pipeline import report
    except ImportError:
        return None
    report(str(results), out, n_boot=20, plot=False)
    return out


@pytest.fixture(scope="module")
def pdf(tmp_path_factory):
    root = tmp_path_factory.mktemp("paperpdf")
    res, an = make_inputs(root)
    an = real_analysis(res, root / "analysis" / "real") or an
    inp = load_inputs(res, an)
    out = build_all(inp, root / "build").parent
    shutil.copy(REPO / "paper" / "references.bib", out / "references.bib")
    proc = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-silent", "paper.tex"],
                          cwd=out, capture_output=True, text=True, timeout=300)
    log = (out / "paper.log").read_text(errors="replace") if (out / "paper.log").exists() else ""
    assert proc.returncode == 0, log[-3000:]
    return inp, out / "paper.pdf", log


def _text(path: Path, page: int | None = None) -> str:
    cmd = ["pdftotext", "-layout"] + (["-f", str(page), "-l", str(page)] if page else []) + [str(path), "-"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def test_pdf_text_contains_every_cell_mean(pdf):
    inp, path, _ = pdf
    text = _text(path)
    ds = inp.results
    missing = []
    for var in ("accuracy", "miou"):
        mean = ds[var].mean("seed")
        for p in ds.pretrain.values:
            for i in ds.intermediate.values:
                for f in ds.finetune.values:
                    v = f"{float(mean.sel(pretrain=p, intermediate=i, finetune=f)):.2f}"
                    if v not in text:
                        missing.append((var, int(p), bool(i), int(f), v))
    assert not missing


def test_every_page_carries_the_demo_mark_and_no_template_syntax(pdf):
    _, path, _ = pdf
    pages = int(re.search(r"Pages:\s+(\d+)", subprocess.run(["pdfinfo", str(path)], capture_output=True,
                                                            text=True).stdout).group(1))
    assert pages >= 6
    for k in range(1, pages + 1):
        assert "SYNTHETIC DEMO DATA" in _text(path, k), f"page {k} lacks the mark"
    text = _text(path)
    for s in ("\\VAR", "\\BLOCK", "\\#{", "??"):
        assert s not in text


def test_latex_log_has_no_undefined_references_or_big_overfull_boxes(pdf):
    _, _, log = pdf
    flat = re.sub(r"\s+", " ", log)
    assert "There were undefined references" not in flat
    assert not re.search(r"(Reference|Citation) `[^']*' on page \d+ undefined", flat)
    big = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log) if float(x) > 5.0]
    assert not big, big
