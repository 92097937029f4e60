"""The paper says only what its numbers say: planted effects through the analysis and the report.

Four results sets from tests/planted.py, small grids, chosen so that together they cover every
planted kind: the intermediate stage helps / hurts / is mixed (most cells lose, the average
gains) / is null; pre-training helps / hurts / crosses zero; log-linear and saturating curves;
2 and 3 seeds. Each goes through ``python -m diminish.analysis report`` (in process) and the report
steps (numbers.tex, tables, paper.tex). For every scenario:

* every direction word in a generated sentence agrees with the sign of the number it cites,
  and counts of cells agree with the analysis tables;
* verdicts equal the planted truth where the planted effect is large;
* no statement is made twice with different numbers;
* tables and text carry the same values (plateaus, verdict counts, pooled means, cell counts).

One more test builds the PDF of the mixed scenario (skipped without latexmk/pdftotext) and reads
its text with pdftotext.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from diminish.report import build_all, load_inputs
from diminish.report.latex import macro_name
from diminish.report.numbers import compute
from diminish.report.render import write_paper
from diminish.report.tables import write_tables
from planted import planted, truth

REPO = Path(__file__).resolve().parents[1]
GRID = dict(pretrain_sizes=(0, 100, 800), finetune_sizes=(20, 40, 80, 160, 320))
CASES = {
    "mixed": dict(intermediate="mixed", pretrain="helps", curve="saturating", n_seeds=3),
    "helps_hurts_loglinear_2seeds": dict(intermediate="helps", pretrain="hurts", curve="loglinear", n_seeds=2),
    "null_crosses_2seeds": dict(intermediate="null", pretrain="crosses", curve="saturating", n_seeds=2),
    "hurts_helps_loglinear": dict(intermediate="hurts", pretrain="helps", curve="loglinear", n_seeds=3),
}


def _analyse(args: tuple[str, str]) -> str:
    """Write one planted results file and run the analysis CLI on it (in a worker process)."""
    from diminish.analysis.__main__ import main
    from diminish.results import write_results

    name, root = args
    ds = planted(**CASES[name], **GRID, name=name)
    res = write_results(ds, Path(root) / name / "results.nc")
    rc = main(["report", "--results", str(res), "--out", str(Path(root) / name / "analysis"), "--n-boot", "10",
               "--no-plot"])
    assert rc in (0, None), f"analysis failed for {name}"
    return str(res)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_analyse, [(name, str(root)) for name in CASES]))
    out = {}
    for name in CASES:
        inp = load_inputs(root / name / "results.nc", root / name / "analysis")
        nums = compute(inp)
        build = root / name / "build"
        write_tables(inp, build / "tables")
        write_paper(inp, build / "paper.tex", nums)
        out[name] = (inp, nums, build)
    return out


# ----------------------------------------------------------------------------- text helpers


def plain(tex: str) -> str:
    """Generated LaTeX as plain text, good enough to read signs and numbers back."""
    s = str(tex).replace(r"\ensuremath{-}", "-").replace(r"\ensuremath{+}", "+").replace(r"\%", "%")
    s = s.replace("{,}", ",").replace("$", "").replace("~", " ")
    s = re.sub(r"\\mbox\{([^{}]*)\}", r"\1", s)  # verdict phrases kept unbroken in tables
    s = re.sub(r"\\(?:textit|textbf|emph)\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"\\ref\{[^}]*\}", "N", s)
    return re.sub(r"\s+", " ", s)


def expanded_text(nums, paper_tex: str) -> str:
    """paper.tex with every \\dm macro replaced by its value, as plain text (tables left out)."""
    body = paper_tex.split(r"\begin{document}", 1)[1]
    body = re.sub(r"\\input\{[^}]*\}", " ", body)
    body = re.sub(r"\\dm([A-Za-z]+)\{\}", lambda m: str(nums.macros[m.group(1)]), body)
    return plain(body)


NUM = r"([+-]?\d[\d,]*(?:\.\d+)?)"


def f(x: str) -> float:
    return float(x.replace(",", ""))


def direction_errors(text: str) -> list[str]:
    """Every direction word next to the number it cites, checked against that number's sign."""
    errs = []
    for m in re.finditer(r"(raises|lowers) (?:mIoU|it) on average \(mean difference " + NUM, text):
        if (m.group(1) == "raises") != (f(m.group(2)) > 0):
            errs.append(m.group(0))
    for m in re.finditer(r"changes mIoU by " + NUM + r" points on average[^.]*?not significant \(95% CI \["
                         + NUM + ", " + NUM + r"\] includes zero", text):
        if not f(m.group(2)) <= 0 <= f(m.group(3)):
            errs.append(m.group(0))
    for m in re.finditer(r"is " + NUM + r" points at [FP]=[\d,]+ and " + NUM + r" at [FP]=[\d,]+: ([a-z ]+)\.", text):
        a, b, shape = f(m.group(1)), f(m.group(2)), m.group(3)
        want = ("a gain that narrows" if b < a else "a gain that widens") if a > 0 and b > 0 else \
            ("a loss that shrinks" if b > a else "a loss that deepens") if a < 0 and b < 0 else \
            "a gain that turns into a loss" if a > 0 > b else "a loss that turns into a gain" if a < 0 < b else shape
        if shape != want:
            errs.append(m.group(0))
    pattern = r"puts the change of [a-z -]+ at " + NUM + r" points \(95% CI \[" + NUM + ", " + NUM + r"\]\), ([a-z ]+)"
    for m in re.finditer(pattern,
                         text):
        lo, hi, words = f(m.group(2)), f(m.group(3)), m.group(4)
        want = "significantly upwards" if lo > 0 else "significantly downwards" if hi < 0 else "not significantly"
        known = words.startswith(("significantly upwards", "significantly downwards", "not significantly"))
        if known and not words.startswith(want):  # (in PDF text a float may interrupt the sentence)
            errs.append(m.group(0))
    for m in re.finditer(r"is (supported|not supported|inconclusive) \(estimate " + NUM + r"[^,]*, 95% CI \["
                         + NUM + ", " + NUM + r"\]", text):
        if not f(m.group(3)) <= f(m.group(2)) <= f(m.group(4)):
            errs.append(m.group(0))
    return errs


def repeated_with_other_numbers(text: str) -> list[str]:
    """Sentences that are the same words with different numbers."""
    seen: dict[str, set] = {}
    for sentence in re.split(r"(?<=[.])\s+(?=[A-Z])", text):
        nums = tuple(re.findall(NUM, sentence))
        if not nums:
            continue
        key = re.sub(NUM, "#", sentence).strip()
        seen.setdefault(key, set()).add(nums)
    return [k for k, v in seen.items() if len(v) > 1]


# ----------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("name", list(CASES))
def test_direction_words_agree_with_the_numbers_they_cite(built, name):
    inp, nums, build = built[name]
    text = expanded_text(nums, (build / "paper.tex").read_text())
    assert not direction_errors(text)
    assert "the head start narrows" not in text and "penalty shrinks" not in text
    # the cell counts in the effect sentences are the analysis tables' counts
    for tag, table in (("Intermediate", inp.analysis.paired_intermediate), ("Pretrain", inp.analysis.paired_pretrain)):
        d = table[table["metric"] == "miou"]["mean_delta"]
        sentence = plain(nums.macros[f"{tag}Effect"])
        for word, k in (("raises", int((d > 0).sum())), ("lowers", int((d < 0).sum()))):
            for m in re.finditer(word + r" (?:mIoU|it) in (\d+) of the (\d+) cells", sentence):
                assert (int(m.group(1)), int(m.group(2))) == (k, len(d)), sentence


@pytest.mark.parametrize("name", list(CASES))
def test_verdicts_equal_the_planted_truth(built, name):
    inp, nums, _ = built[name]
    v = inp.analysis.verdicts
    v = v[v["metric"] == "miou"].set_index("claim_id")["verdict"].astype(str).str.strip()
    expected = truth(**CASES[name], **GRID)["expected"]
    wrong = {k: (v.get(k), want) for k, want in expected.items() if k in v.index and v[k] != want}
    assert not wrong
    # the report words each study-level verdict as the analysis decided it
    for key, verdict in nums.flags["groups"].items():
        if isinstance(verdict, str):
            assert f"is {verdict}" in plain(nums.macros[macro_name("Statement", key)])


def test_mixed_evidence_gets_its_own_wording(built):
    inp, nums, _ = built["mixed"]
    t = truth(**CASES["mixed"], **GRID)
    assert t["inter_cells_lower"] * 2 > t["inter_cells"] and t["inter_mean"] > 0
    sentence = plain(nums.macros["IntermediateEffect"])
    assert re.search(r"lowers mIoU in \d+ of the \d+ cells, yet raises it on average", sentence), sentence


@pytest.mark.parametrize("name", list(CASES))
def test_no_statement_twice_with_different_numbers(built, name):
    _, nums, build = built[name]
    text = expanded_text(nums, (build / "paper.tex").read_text())
    assert not repeated_with_other_numbers(text)


@pytest.mark.parametrize("name", list(CASES))
def test_tables_and_text_carry_the_same_values(built, name):
    inp, nums, build = built[name]
    tables = {p.stem: plain(p.read_text()) for p in (build / "tables").glob("*.tex")}
    # the plateau of the no-pre-training condition: text and Table fits
    base = plain(nums.macros["PlateauBase"])
    fits_row = next(ln for ln in tables["fits"].split("\\\\") if re.search(r"(?:^|\s)0 & no &", ln))
    if "Plateau (%)" in tables["fits"]:
        assert base in fits_row
    else:  # no condition has a plateau: the table says so instead of a constant column
        assert base == "not identified" and "No condition has an identified plateau" in tables["fits"]
    # per-condition verdict counts: text macros and the verdict table
    for key, counts in nums.flags["groups"].items():
        if isinstance(counts, dict):
            assert plain(nums.macros[macro_name("Group", key)]) in tables["verdicts"]
    # the pooled mean difference in the effect sentence is the PT_HELPS / INT_HURTS estimate of the verdict table
    for tag, key in (("Pretrain", "PT_HELPS"), ("Intermediate", "INT_HURTS")):
        m = re.search(r"mean difference ([+-]\d+\.\d+) points, pooled model", plain(nums.macros[f"{tag}Effect"]))
        if m and key in nums.flags["groups"]:
            assert f"the average difference, {m.group(1)} points (95% CI" in tables["verdicts"]
    # every plateau printed in the claims appendix (rows decided by the plateau) is the one of Table fits
    for value in re.findall(r"the plateau \(%\) & (\d+\.\d+) &", tables["verdicts_all"]):
        assert f"{value}% [" in tables["fits"]


def test_the_settings_sentence_follows_the_config(built):
    from diminish.config import load
    from diminish.report.macros_study import PAPER_CONFIG, differences_from_paper

    paper, demo = load(PAPER_CONFIG), load(REPO / "experiments" / "demo.toml")
    assert differences_from_paper(paper, paper) == []
    diffs = differences_from_paper(demo, paper)
    assert "model depth 2 (paper: 12)" in diffs and "fine-tuning epochs 4 (paper: 100)" in diffs
    # the planted config keeps the default (Appendix A1) schedule, so the sentence may say so
    inp, nums, _ = built["mixed"]
    assert nums.flags["settings_are_papers"] == (differences_from_paper(inp.config, paper) == [])
    assert ("are the original paper's" in str(nums.macros["SettingsSentence"])) == nums.flags["settings_are_papers"]


def pdf_text(path: Path) -> str:
    """A PDF's text as one line: page furniture (the demo mark in header and footer, the page
    number, the letters of the watermark) dropped, words hyphenated at a line end joined, ligatures
    and math minus signs as plain characters."""
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    lines = [ln for ln in text.splitlines()
             if not re.fullmatch(r"\s*(SYNTHETIC DEMO DATA( \u2014 not results of the study)?|\d+|[A-Z]{1,2})\s*", ln)]
    flat = re.sub(r"-\n(?=[a-z])", "", "\n".join(lines))
    flat = flat.replace("\u2212", "-").replace("\ufb01", "fi").replace("\ufb02", "fl").replace("\f", " ")
    return re.sub(r"\s+", " ", flat)


def compiled_text(out) -> str:
    """Compile ``out/paper.tex`` with latexmk and return the PDF's text (pdf_text)."""
    shutil.copy(REPO / "paper" / "references.bib", out / "references.bib")
    proc = subprocess.run(["latexmk", "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-silent", "paper.tex"],
                          cwd=out, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (out / "paper.log").read_text(errors="replace")[-2000:]
    return pdf_text(out / "paper.pdf")


@pytest.mark.skipif(not all(shutil.which(t) for t in ("latexmk", "pdflatex", "bibtex", "pdftotext")),
                    reason="TeX toolchain or pdftotext missing (make paper installs TeX)")
def test_mixed_pdf_text(built, tmp_path):
    inp, _, _ = built["mixed"]
    out = build_all(inp, tmp_path / "pdf").parent
    flat = compiled_text(out)
    assert re.search(r"lowers mIoU in \d+ of the \d+ cells, yet raises it on average", flat)
    assert not direction_errors(flat)
    assert "synthetic stand-in" in flat and "SYNTHETIC DEMO DATA" in flat
    assert "P=0, I=False" not in flat and "pretrain_100k" not in flat


DEMO = REPO / "results" / "demo" / "results.nc"


@pytest.mark.skipif(not DEMO.is_file() or not all(shutil.which(t) for t in ("latexmk", "pdflatex", "pdftotext")),
                    reason="no demo results (run `make demo`) or no TeX toolchain / pdftotext")
def test_demo_pdf_text(tmp_path):
    """The demo's own PDF, read back with pdftotext: none of the defects issue 13 found."""
    from diminish.analysis.__main__ import main

    assert main(["report", "--results", str(DEMO), "--out", str(tmp_path / "analysis"), "--n-boot", "10",
                 "--no-plot"]) in (0, None)
    inp = load_inputs(DEMO, tmp_path / "analysis")
    out = build_all(inp, tmp_path / "pdf").parent
    flat = compiled_text(out)
    assert not direction_errors(flat)
    for code in ("pretrain_100k", "P=0, I=False", "P=0, I=True", "'demo'", "synthetic 1", "1 threads",
                 "is not supported in 1, inconclusive", "head start narrows"):
        assert code not in flat, code
    m = re.search(r"lies between (\S+) and (\S+)", flat)
    assert not m or m.group(1) != m.group(2)
    if inp.synthetic:
        assert "synthetic stand-in" in flat and "reduced ViNy" in flat
        assert ("are the original paper's" in flat) == bool(compute(inp).flags["settings_are_papers"])
