"""Full PDF builds of results unlike the demo's, read back with pdftotext (slow: about 2 minutes on 2 cores).

Five results files go through the analysis, every report step (figures included) and latexmk as
``make paper`` runs it (:func:`diminish.report.latexlog.compile_pdf`):

* ``pt_hurts``: pre-training hurts in every cell (tests/planted.py), so the paper must say it lowers mIoU;
* ``half_finished``: the same grid with the second half of its cells, in the runner's order, not run yet;
* ``undrawn``: random case 43, whose pre-trained scores lie outside the from-scratch curve in 34 of 42
  transfer values: its caption once listed each, and LaTeX stopped with "Dimension too large";
* ``one_seed``: random case 14 (one seed, three pre-training sizes, intermediate off and on);
* ``no_baseline``: random case 2 (no P = 0, so no pre-training effect to measure).

Each PDF must exist and its text hold no ``nan``/``inf``, no ``??`` (undefined reference) and no template
syntax; each case's own sentences are checked too. Skipped without latexmk or pdftotext.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from planted import planted
from random_results import random_results

REPO = Path(__file__).resolve().parents[1]
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not all(shutil.which(t) for t in ("latexmk", "pdflatex", "bibtex", "pdftotext")),
                       reason="TeX toolchain or pdftotext missing (make paper installs TeX)"),
]
GRID = dict(pretrain_sizes=(0, 100, 800), finetune_sizes=(20, 40, 80, 160, 320))


def _half_finished():
    ds = planted(intermediate="hurts", pretrain="hurts", n_seeds=3, **GRID, name="half_finished")
    for v in ("accuracy", "miou", "iou", "train_seconds", "final_loss"):
        x = ds[v].values  # (P, I, F, seed[, class]): cells finish in this order; stop half way
        flat = x.reshape(-1, *x.shape[4:])
        flat[flat.shape[0] // 2:] = np.nan
        ds[v][:] = x
    return ds


CASES = {
    "pt_hurts": lambda: planted(intermediate="hurts", pretrain="hurts", n_seeds=3, **GRID, name="pt_hurts"),
    "half_finished": _half_finished,
    "undrawn": lambda: random_results(43, name="undrawn"),
    "one_seed": lambda: random_results(14, name="one_seed"),
    "no_baseline": lambda: random_results(2, name="no_baseline"),
}


def _build(args: tuple[str, str]) -> tuple[str, str, str]:
    """(name, PDF text, LaTeX log) of one case built in ``root/name``."""
    from diminish.analysis.pipeline import report
    from diminish.report import build_all, load_inputs
    from diminish.report.latexlog import compile_pdf
    from diminish.results import write_results

    name, root = args
    folder = Path(root) / name
    path = write_results(CASES[name](), folder / "results.nc")
    report(str(path), folder / "analysis", n_boot=10, plot=False)
    out = build_all(load_inputs(path, folder / "analysis"), folder / "build").parent
    pdf = compile_pdf(out, bib=REPO / "paper" / "references.bib")
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return name, text, (out / "paper.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def pdfs(tmp_path_factory):
    root = tmp_path_factory.mktemp("property_pdf")
    with ProcessPoolExecutor(2) as pool:
        return {name: (text, log) for name, text, log in pool.map(_build, [(n, str(root)) for n in CASES])}


def flat(text: str) -> str:
    """PDF text on one line, with words hyphenated across lines joined again."""
    return re.sub(r"\s+", " ", re.sub(r"-\n(?=[a-z])", "", text))


@pytest.mark.parametrize("name", list(CASES))
def test_every_case_builds_a_pdf_without_nan_inf_or_unresolved_references(pdfs, name):
    text, log = pdfs[name]
    words = flat(text)
    assert len(words) > 5000, "the PDF holds almost no text"
    assert not re.search(r"(?<![A-Za-z])(?i:nan|inf)(?![A-Za-z])", words), \
        re.search(r".{60}(?<![A-Za-z])(?i:nan|inf)(?![A-Za-z]).{30}", words)
    for s in ("??", "\\VAR", "\\BLOCK", "\\#{"):
        assert s not in words, s
    assert "There were undefined references" not in re.sub(r"\s+", " ", log)


def test_pretraining_that_hurts_everywhere_is_said_to_lower_the_score(pdfs):
    words = flat(pdfs["pt_hurts"][0])
    assert "Pre-training lowers mIoU on average" in words
    assert "Pre-training raises mIoU on average" not in words


def test_a_half_finished_grid_says_how_much_is_missing(pdfs):
    words = flat(pdfs["half_finished"][0])
    assert "45 runs of the grid are missing from the results file" in words, \
        re.findall(r"[^.]*missing[^.]*\.", words)[:5]


def test_undrawn_transfer_values_are_counted_in_the_caption(pdfs):
    words = flat(pdfs["undrawn"][0])
    assert "Not drawn (no finite D" in words and "34 of the 42 values with no finite effective data" in words
    assert "and 32 more" in words


def test_one_seed_says_per_cell_tests_are_not_testable(pdfs):
    words = flat(pdfs["one_seed"][0])
    assert "per-cell tests are not testable" in words and "1 seeds" not in words
