"""The paper build's layout check (report/layout.py) fails on the log lines of a float into the footer."""

from __future__ import annotations

from diminish.report.layout import main, problems

# the lines pdflatex wrote for the demo's Figure 7 (a caption printed over the page footer) and a table
# running 9.5 pt into the margin, between pages as the log shows them
LOG = r"""[15] [16
Overfull \vbox (155.70335pt too high) has occurred while \output is active []
Overfull \hbox (9.50928pt too wide) in paragraph at lines 70--105
Overfull \hbox (0.8pt too wide) in paragraph at lines 3--4
Overfull \vbox (0.2pt too high) has occurred while \output is active []
LaTeX Warning: Float too large for page by 12.3pt on input line 88.
Underfull \hbox (badness 10000) in paragraph at lines 27--27
"""


def test_float_into_footer_and_wide_lines_fail():
    found = problems(LOG)
    assert len(found) == 3, found
    assert found[0].startswith("page 17: ") and "155.7pt past its text area" in found[0]
    assert "9.5pt into the margin" in found[1] and "Float too large" in found[2]


def test_small_boxes_and_underfull_pass(tmp_path):
    assert problems(LOG, vbox_pt=200, hbox_pt=10) == ["page 17: Float too large for page by 12.3pt"]
    clean = tmp_path / "paper.log"
    clean.write_text("[1] [2]\nUnderfull \\hbox (badness 10000) in paragraph at lines 1--2\n")
    assert main([str(clean)]) == 0
    bad = tmp_path / "bad.log"
    bad.write_text(LOG)
    assert main([str(bad)]) == 1
