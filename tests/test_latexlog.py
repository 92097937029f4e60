"""LaTeX failures are reported as ours (report/latexlog.py): the generated file and line, what wrote it."""

from __future__ import annotations

import subprocess
import sys

from diminish.report.latexlog import explain, first_failure, producer

LOG = """This is pdfTeX, Version 3.141592653 (TeX Live 2022/Debian) (preloaded format=pdflatex)
(./paper.tex
LaTeX2e <2021-11-15> patch level 1
(./tables/fits.tex)
./paper.tex:3: Dimension too large.
<to be read again>
                   \\relax
l.3 ...and 32 more.}

I can't work with sizes bigger than about 19 feet.
"""


def _build(tmp_path, log=LOG):
    (tmp_path / "paper.tex").write_text("\\begin{figure}\n\\begin{document}\n\\caption{Not drawn: "
                                        + "P = 0, F = 20; " * 30 + "and 32 more.}\n\\label{fig:x}\n\\end{figure}\n")
    (tmp_path / "paper.log").write_text(log)
    (tmp_path / "results-path.txt").write_text("/data/results/x/results.nc\n")
    return tmp_path


def test_the_first_error_is_read_with_its_file_and_line():
    f = first_failure(LOG)
    assert (f.file, f.line, f.message) == ("paper.tex", 3, "Dimension too large.")
    g = first_failure("(./paper.tex (./tables/x.tex\n./tables/x.tex:12: Undefined control sequence.\n")
    assert (g.file, g.line) == ("tables/x.tex", 12)
    h = first_failure("(./paper.tex\n! Missing $ inserted.\n<inserted text>\nl.88 a_b\n")
    assert (h.file, h.line, h.message) == ("paper.tex", 88, "Missing $ inserted.")
    assert first_failure("no errors here") is None


def test_the_message_names_the_generated_file_line_text_producer_and_results(tmp_path):
    msg = explain(_build(tmp_path))
    first, *rest = msg.splitlines()
    assert first == f"LaTeX failed at {tmp_path / 'paper.tex'}:3: Dimension too large."
    assert "that line: \\caption{Not drawn: P = 0, F = 20;" in msg and msg.count("P = 0") < 15  # shortened
    assert "  inside figure fig:x" in rest
    assert "templates/paper.tex.j2" in msg and "python -m diminish.report tex" in msg
    assert "/data/results/x/results.nc" in msg and f"full log: {tmp_path / 'paper.log'}" in msg


def test_each_generated_file_has_a_producer():
    assert "python -m diminish.report numbers" in producer("numbers.tex")
    assert "'fits'" in producer("tables/fits.tex") and "tables.py" in producer("tables/fits.tex")
    assert "not a file of this package" in producer("caption.sty")


def test_missing_log_or_error_line_is_said(tmp_path):
    assert "wrote no log" in explain(tmp_path)
    (tmp_path / "paper.log").write_text("nothing")
    assert "without an error line" in explain(tmp_path)


def test_the_command_prints_it_for_paper_mk(tmp_path):
    out = subprocess.run([sys.executable, "-m", "diminish.report.latexlog", str(_build(tmp_path))],
                         capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr.startswith("paper: LaTeX failed at ") and "Traceback" not in out.stderr
