"""The paper's generated LaTeX: values, wording, demo mark, escaping, determinism (no TeX needed)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from diminish.analysis.pipeline import report as analysis_report
from diminish.report import ReportInputError, build_all, load_inputs
from diminish.report.latex import Tex, breakable_tt, escape, macro_name, num, pm, sci, size_label
from diminish.report.numbers import compute, numbers_tex
from diminish.report.render import LEFTOVER_SYNTAX, render
from diminish.results import example_results, write_results
from test_report_fakes import write_fake_analysis

CONFIG = """name = "example"
synthetic = true
seeds = [0, 1, 2]
[finetune]
batch_size = 32
"""


def make_inputs(root: Path, *, synthetic: int = 1, examples: bool = True, nan_cell: bool = False) -> tuple:
    ds = example_results()
    ds.attrs.update(config_text=CONFIG, synthetic=synthetic, created="2026-01-02T03:04:05Z",
                    git_commit="0123456789abcdef0123", device="cpu (test)",
                    pets_root="/data/very/long/path/to/oxford-iiit-pet_with_underscores")
    if nan_cell:
        ds["miou"].loc[dict(pretrain=45_000, intermediate=True, finetune=500)] = np.nan
        ds["accuracy"].loc[dict(pretrain=45_000, intermediate=True, finetune=500)] = np.nan
    res = write_results(ds, root / "results" / "ex" / "results.nc")
    if examples:
        rng = np.random.default_rng(0)
        np.savez(res.parent / "examples.npz", image=rng.integers(0, 255, (2, 128, 128, 3), dtype=np.uint8),
                 truth=rng.integers(0, 3, (2, 128, 128), dtype=np.uint8),
                 pred=rng.integers(0, 3, (2, 128, 128), dtype=np.uint8), cell=np.array("P=0 I=False F=250 seed=0"))
    an = write_fake_analysis(ds, root / "analysis" / "ex")
    return res, an


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    res, an = make_inputs(root)
    inp = load_inputs(res, an)
    paper = build_all(inp, root / "build")
    return inp, paper.parent


def _all_tex(folder: Path) -> str:
    return "\n".join(p.read_text() for p in sorted(folder.rglob("*.tex")))


def test_generated_tex_has_no_template_syntax_and_every_cell_value(built):
    inp, out = built
    text = _all_tex(out)
    for s in LEFTOVER_SYNTAX:
        assert s not in text
    assert "{{" not in (out / "paper.tex").read_text().replace("{{figures/}}", "")
    ds = inp.results
    tables = (out / "tables" / "baseline.tex").read_text() + (out / "tables" / "pretrained.tex").read_text() \
        + (out / "tables" / "intermediate.tex").read_text()
    for var in ("accuracy", "miou"):
        mean, sd = ds[var].mean("seed"), ds[var].std("seed", ddof=1)
        for p in ds.pretrain.values:
            for i in ds.intermediate.values:
                if p == 0 and not i:
                    continue  # the baseline table
                for f in ds.finetune.values:
                    c = dict(pretrain=p, intermediate=i, finetune=f)
                    assert f"{float(mean.sel(c)):.2f} \\ensuremath{{\\pm}} {float(sd.sel(c)):.2f}" in tables, (var, c)
    base = (out / "tables" / "baseline.tex").read_text()
    f0 = int(ds.finetune.values[0])
    assert f"{float(ds.miou.sel(pretrain=0, intermediate=False, finetune=f0).mean()):.2f}" in base


def test_synthetic_results_carry_the_demo_mark(built):
    _, out = built
    paper = (out / "paper.tex").read_text()
    assert "SYNTHETIC DEMO DATA" in paper
    assert "shipout/background" in paper and "\\pagestyle{demo}" in paper
    abstract = paper[paper.index("\\begin{abstract}"):paper.index("\\end{abstract}")]
    assert "SYNTHETIC DEMO DATA" in abstract


def test_real_results_have_no_demo_mark_and_missing_examples_are_noted(tmp_path):
    res, an = make_inputs(tmp_path, synthetic=0, examples=False)
    inp = load_inputs(res, an)
    assert not inp.synthetic and inp.examples is None
    paper = build_all(inp, tmp_path / "build").read_text()
    assert "SYNTHETIC" not in paper
    assert "No \\texttt{examples.npz} was found" in paper
    assert "\\includegraphics{examples.pdf}" not in paper


def test_rerender_is_byte_identical(built, tmp_path):
    inp, out = built
    again = build_all(inp, tmp_path / "again").parent
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.suffix in (".tex", ".pdf"))
    assert len(files) >= 15
    for rel in files:
        assert (again / rel).read_bytes() == (out / rel).read_bytes(), rel


def test_numbers_are_macros_and_the_prose_types_no_result_digits(built):
    inp, out = built
    numbers = (out / "numbers.tex").read_text()
    lines = [ln for ln in numbers.splitlines() if ln.startswith("\\newcommand")]
    names = [ln.split("}")[0][len("\\newcommand{\\"):] for ln in lines]
    assert names == sorted(names) and len(names) == len(set(names)) and len(names) > 60
    assert all(n.isalpha() for n in names)
    # the baseline value at the smallest fine-tune size appears in numbers.tex, and the prose uses the macro
    ds = inp.results
    v = float(ds.miou.sel(pretrain=0, intermediate=False).isel(finetune=0).mean())
    assert f"\\newcommand{{\\dmBaseMinF}}{{{v:.2f}}}" in numbers
    paper = (out / "paper.tex").read_text()
    assert "\\dmBaseMinF{}" in paper and f"{v:.2f}" not in paper


def _with_intermediate_sign(tmp_path: Path, sign: float):
    res, an = make_inputs(tmp_path)
    df = pd.read_csv(an / "paired_intermediate.csv")
    df["mean_delta"] = sign * df["mean_delta"].abs()
    df.loc[df.index[df["metric"] == "miou"][0], "mean_delta"] = -sign * 0.5  # one cell goes the other way
    df.to_csv(an / "paired_intermediate.csv", index=False)
    return compute(load_inputs(res, an))


def test_direction_words_follow_the_analysis(tmp_path):
    """The intermediate sentence counts the cells from the table and words the average from the pooled CI."""
    hurt = _with_intermediate_sign(tmp_path / "a", -1.0)
    n = len(pd.read_csv(tmp_path / "a" / "analysis" / "ex" / "paired_intermediate.csv").query("metric == 'miou'"))
    text = hurt.macros["IntermediateEffect"]
    assert f"in {n - 1} of the {n} cells" in text or "not significant" in text
    helps = _with_intermediate_sign(tmp_path / "b", 1.0)
    assert f"raises mIoU in {n - 1} of the {n} cells" in helps.macros["IntermediateEffect"] or \
        "yet" in helps.macros["IntermediateEffect"] or "on average" in helps.macros["IntermediateEffect"]
    assert hurt.macros["IntermediateEffect"] != helps.macros["IntermediateEffect"]


def test_missing_cells_print_as_dashes_and_are_counted(tmp_path):
    res, an = make_inputs(tmp_path, nan_cell=True)
    inp = load_inputs(res, an)
    out = build_all(inp, tmp_path / "build").parent
    table = (out / "tables" / "intermediate.tex").read_text()
    lines = table.splitlines()
    start = next(k for k, ln in enumerate(lines) if ln.startswith("45k &"))
    row = next(ln for ln in lines[start:] if "& 500 &" in ln)
    assert row.count("--") == 2 and "pm" not in row
    assert "\\newcommand{\\dmNRunsMissing}{3}" in (out / "numbers.tex").read_text()


def test_a_missing_analysis_column_names_the_file(tmp_path):
    res, an = make_inputs(tmp_path, examples=False)
    df = pd.read_csv(an / "fits.csv").drop(columns=["plateau"])
    df.to_csv(an / "fits.csv", index=False)
    with pytest.raises(ReportInputError, match=r"fits\.csv.*plateau"):
        load_inputs(res, an)
    shutil.rmtree(an)
    with pytest.raises(ReportInputError, match="analysis folder not found"):
        load_inputs(res, an)


def test_latex_helpers():
    assert escape("50% of a_b & {c} #1 $x ~ ^") == (
        r"50\% of a\_b \& \{c\} \#1 \$x \textasciitilde{} \textasciicircum{}")
    assert escape(Tex(r"\textbf{x}")) == r"\textbf{x}"
    assert num(-0.001) == "0.00" and num(-1.5, 1) == r"\ensuremath{-}1.5" and num(2, sign=True) == r"\ensuremath{+}2.00"
    assert num(float("nan")) == "--" and pm(1.234, float("nan")) == "1.23" and pm(np.nan, 1) == "--"
    assert pm(70.333, 0.891) == r"70.33 \ensuremath{\pm} 0.89"
    assert sci(0.00710) == r"\ensuremath{7.10\times 10^{-3}}" and sci(2.5) == "2.50"
    assert [size_label(s) for s in (0, 250, 6000, 45_000, 200_000, 2_000_000)] == \
        ["0", "250", "6000", "45k", "200k", "2M"]
    assert macro_name("gain", 2000, "at_f") == "GainTwoZeroZeroZeroAtF"
    tt = breakable_tt("a_b/" + "x" * 30)
    assert tt.startswith(r"\texttt{a\_\allowbreak{}b/\allowbreak{}") and tt.count(r"\allowbreak{}") >= 4


def test_templates_refuse_unformatted_values(tmp_path):
    import jinja2

    from diminish.report import render as render_mod

    env = render_mod.environment()
    with pytest.raises(TypeError, match="unformatted float"):
        env.from_string(r"\VAR{x}").render(x=1.5)
    with pytest.raises(jinja2.UndefinedError):
        env.from_string(r"\VAR{n.NoSuchMacro}").render(n={})
    assert env.from_string(r"\VAR{s} \BLOCK{if t}yes\BLOCK{endif}\#{ comment }").render(s="a&b", t=True) == \
        r"a\&b yes"
    with pytest.raises(ValueError, match="unrendered"):
        render_mod.check_rendered(r"x \VAR{y}", "t")
    assert "tabular" in render("table.tex.j2", caption="c", label=Tex("l"), colspec=Tex("l"), header=[["h"]],
                               groups=[[["v"]]], size=Tex(""), note="", rules=[Tex("")], float=Tex("table"))


def test_numbers_tex_is_sorted_and_stable(built):
    inp, _ = built
    a, b = numbers_tex(compute(inp)), numbers_tex(compute(inp))
    assert a == b and "\\newcommand{\\dmNSeeds}{3}" in a


def test_claim_groups_and_verdict_counts():
    from diminish.report.numbers import claim_groups, condition_of, rule_of
    from diminish.report.statements import verdict_counts

    v = pd.DataFrame([
        dict(claim_id="H1_F_P0_I0", claim="gain falls with F (P=0, I=False)", verdict="supported"),
        dict(claim_id="H1_F_P45000_I0", claim="gain falls with F (P=45000, I=False)", verdict="inconclusive"),
        dict(claim_id="PT_HELPS", claim="pre-training raises miou on average", verdict="not supported"),
    ])
    groups = claim_groups(v)
    assert [g["key"] for g in groups] == ["H1_F", "PT_HELPS"]
    assert groups[0]["claim"] == "the gain per doubling of F falls as F grows" and groups[0]["per_condition"]
    expected = "supported in 1 of the 2 conditions and inconclusive in the remaining one"
    assert verdict_counts(groups[0]["counts"]) == expected
    assert groups[1]["claim"] == "pre-training raises mIoU on average" and not groups[1]["per_condition"]
    assert condition_of("H1_F_P45000_I1") == "45k pre-training images, with the intermediate stage"
    assert condition_of("H1_P_F250_I0") == "F = 250, without the intermediate stage"
    assert "lies below 0" in rule_of("H1_F") and "lies above 0" in rule_of("PT_HELPS")
    assert "Akaike" in rule_of("H2_F")


def test_abstract_describes_the_intermediate_stage_the_grid_ran(tmp_path):
    """A grid without the intermediate arm must not be described as having an optional one."""
    def abstract(ds, name):
        ds.attrs.update(config_text=CONFIG, synthetic=0, created="2026-01-02T03:04:05Z")
        res = write_results(ds, tmp_path / name / "results.nc")
        an = tmp_path / name / "analysis"
        analysis_report(res, an, n_boot=10, plot=False)
        text = build_all(load_inputs(res, an), tmp_path / name / "build").read_text()
        return text[text.index("\\begin{abstract}"):text.index("\\end{abstract}")]

    both = abstract(example_results(), "both")
    assert "an optional intermediate scene-classification stage" in both
    off = abstract(example_results().isel(intermediate=[0]), "off")  # the arm without it
    assert "optional intermediate" not in off and "no intermediate scene-classification stage" in off
