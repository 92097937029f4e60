"""One registry of the build's files, one computation of the numbers, one source of cell statistics.

* paper/paper.mk names the files of the registries (analysis/outputs.py, report/registry.py): a name
  added on one side only fails here; each figure reads only the analysis files it lists;
* the analysis writes exactly the registered files, with the registered columns;
* ``numbers.compute`` runs once per build (make's steps through the command line, and build_all);
  paper.tex rendered from numbers.json equals paper.tex rendered from the computed numbers, and a
  numbers.json of other inputs is refused;
* the paper's cell means and SDs are the analysis's ``cell_stats`` (read from summary.csv).
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from diminish.analysis import outputs
from diminish.analysis import pipeline as analysis_report  # the module that writes every analysis file
from diminish.analysis.common import cell_stats
from diminish.report import ReportInputError, build_all, inputs, load_inputs, registry
from diminish.report import numbers as numbers_mod
from diminish.report.__main__ import main as report_main
from diminish.report.figures import FIGURES, module
from diminish.report.render import paper_context, render
from diminish.report.tables import TABLES
from diminish.results import write_results
from planted import scenario
from test_report import make_inputs

REPO = Path(__file__).resolve().parents[1]
PAPER_MK = REPO / "paper" / "paper.mk"
SRC = REPO / "src" / "diminish"


# ----------------------------------------------------------------------------- paper.mk against the registries


def _mk() -> str:
    return PAPER_MK.read_text().replace("\\\n", " ")  # continuation lines joined


def mk_list(var: str) -> list[str]:
    m = re.search(rf"^{var}\s*:=(.*)$", _mk(), re.M)
    assert m, f"paper.mk defines no {var}"
    return m.group(1).split()


def test_paper_mk_lists_the_registered_analysis_files():
    csv = [o.stem for o in registry.ANALYSIS if o.is_csv]
    assert mk_list("ANALYSIS_CSV") == csv
    # the other files the paper reads: report.json is the analysis step's target, the rest are in ANALYSIS_OUT
    other = {o.name for o in registry.ANALYSIS if not o.is_csv} - {"report.json"}
    out = re.fullmatch(r"\$\(addprefix \$\(A\)/,\$\(addsuffix \.csv,\$\(ANALYSIS_CSV\)\)(.*)\)",
                       " ".join(mk_list("ANALYSIS_OUT")))
    assert out, "ANALYSIS_OUT is not $(addprefix $(A)/,$(addsuffix .csv,$(ANALYSIS_CSV)) <other files>)"
    assert set(out.group(1).split()) == other
    assert re.search(r"^\$\(A\)/report\.json:", _mk(), re.M)


def test_paper_mk_lists_the_registered_figures_and_their_inputs():
    assert mk_list("FIGURE_NAMES") == list(registry.FIGURES) == list(FIGURES)
    rules = dict(re.findall(r"^\$\(PB\)/figures/(\w+)\.pdf:(.*)$", _mk(), re.M))
    rules.pop("reconstructions")  # drawn by diminish.reconstructions (needs torch), not by a report/figures script
    assert set(rules) == set(registry.FIGURES)
    for name, fig in registry.FIGURES.items():
        prereq = rules[name].split()
        assert f"$(RP)/figures/{name}.py" in prereq, name
        assert sorted(p[len("$(A)/"):] for p in prereq if p.startswith("$(A)/")) == sorted(fig.reads), name
        assert ("$(PAPER_EXAMPLES)" in prereq) == fig.examples, name
        assert (SRC / "report" / "figures" / f"{name}.py").is_file()


def test_paper_mk_lists_the_registered_tables():
    assert mk_list("TABLE_NAMES") == list(registry.TABLES) == list(TABLES)


def test_every_list_of_analysis_files_derives_from_the_registry():
    assert analysis_report.FILES == outputs.FILES
    required = [o for o in outputs.OUTPUTS if o.paper == "required"]
    assert inputs.ANALYSIS_FILES == {o.stem: o.columns for o in required if o.is_csv}
    assert inputs.OPTIONAL_FILES == {o.stem: o.columns for o in outputs.OUTPUTS if o.paper == "optional"}
    assert inputs.CURVE_VARIABLES == outputs.BY_NAME["curves.nc"].columns
    # no other module spells out an analysis file's columns
    for path in (SRC / "report").rglob("*.py"):
        assert '"mean_delta", "se"' not in path.read_text(), path


def test_a_table_function_outside_the_registry_is_refused():
    from diminish.report import tables

    with pytest.raises(ValueError, match="not in report/registry.py"):
        tables._registered({**tables._DRAWN, "extra": lambda inp: None})
    with pytest.raises(ValueError, match="without a function"):
        tables._registered({k: v for k, v in tables._DRAWN.items() if k != "hyper"})


# -- what the analysis writes and the figures read ---------------------------------------------------------


@pytest.fixture(scope="module")
def planted_inputs(tmp_path_factory):
    """A real analysis (both metrics, few bootstrap draws) of a planted results set with a missing run."""
    root = tmp_path_factory.mktemp("registry")
    ds = scenario("pt_crosses", n_seeds=2, pretrain_sizes=(0, 100, 800), finetune_sizes=(20, 40, 80, 160))
    ds["miou"][1, 0, 2, 0] = np.nan
    res = write_results(ds, root / "results.nc")
    analysis_report.report(str(res), root / "analysis", n_boot=4, plot=False)
    return load_inputs(res, root / "analysis")


def test_the_analysis_writes_exactly_the_registered_files(planted_inputs):
    folder = planted_inputs.analysis.folder
    assert sorted(p.name for p in folder.iterdir()) == sorted(outputs.FILES)
    for o in outputs.OUTPUTS:
        if o.is_csv:
            header = (folder / o.name).read_text().splitlines()[0].split(",")
            assert set(o.columns) <= set(header), (o.name, set(o.columns) - set(header))
    assert set(outputs.BY_NAME["curves.nc"].columns) <= set(planted_inputs.analysis.curves.data_vars)


class _Recording(inputs.Analysis):
    """An Analysis that records which of its files are read."""

    def __getattribute__(self, name):
        if name in ("curves", "report"):
            object.__getattribute__(self, "read").add("curves.nc" if name == "curves" else "report.json")
        return object.__getattribute__(self, name)

    def __getattr__(self, name):
        self.read.add(f"{name}.csv")
        return super().__getattr__(name)


class _RecordingTables(dict):
    def __init__(self, tables, read):
        super().__init__(tables)
        self.read = read

    def get(self, key, default=None):
        self.read.add(f"{key}.csv")
        return super().get(key, default)

    def __getitem__(self, key):
        self.read.add(f"{key}.csv")
        return super().__getitem__(key)


def test_each_figure_reads_only_the_analysis_files_it_lists(planted_inputs):
    import matplotlib

    matplotlib.use("Agg")
    from dataclasses import replace

    import matplotlib.pyplot as plt

    an = planted_inputs.analysis
    for name, fig in registry.FIGURES.items():
        read: set[str] = set()
        rec = _Recording(folder=an.folder, tables=_RecordingTables(an.tables, read), curves=an.curves,
                         report=an.report)
        object.__setattr__(rec, "read", read)
        read.clear()
        plt.close(module(name).draw(replace(planted_inputs, analysis=rec)))
        assert read <= set(fig.reads), (name, read - set(fig.reads))
        assert read == set(fig.reads), (name, "listed but not read", set(fig.reads) - read)


# ----------------------------------------------------------------------------- one computation of the numbers


def test_only_numbers_py_calls_compute():
    """No module of the report imports numbers.compute; numbers.write_numbers is its one caller."""
    callers = []
    for path in (SRC / "report").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and any(a.name == "compute" for a in node.names):
                callers.append(f"{path.name} imports compute")
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "compute":
                callers.append(path.name)
    assert callers == ["numbers.py"]


@pytest.fixture
def counted(monkeypatch):
    calls = []
    real = numbers_mod.compute

    def compute(inp):
        calls.append(inp)
        return real(inp)

    monkeypatch.setattr(numbers_mod, "compute", compute)
    return calls


def test_the_make_steps_compute_the_numbers_once(tmp_path, counted):
    res, an = make_inputs(tmp_path)
    pb = tmp_path / "build"
    common = ["--results", str(res), "--analysis", str(an)]
    assert report_main(["numbers", *common, "--out-file", str(pb / "numbers.tex")]) == 0
    assert (pb / "numbers.json").is_file()
    assert report_main(["tables", *common, "--out", str(pb / "tables")]) == 0
    for name in FIGURES:
        assert report_main(["figure", name, *common, "--out-file", str(pb / "figures" / f"{name}.pdf")]) == 0
    assert report_main(["tex", *common, "--numbers", str(pb / "numbers.json"), "--out-file",
                        str(pb / "paper.tex")]) == 0
    assert len(counted) == 1
    # the same files as build_all, which also computes once
    counted.clear()
    out = build_all(load_inputs(res, an), tmp_path / "all").parent
    assert len(counted) == 1
    for rel in ["numbers.tex", "numbers.json", "paper.tex"] + [f"tables/{t}.tex" for t in TABLES]:
        assert (out / rel).read_text() == (pb / rel).read_text(), rel


def test_paper_tex_from_numbers_json_equals_paper_tex_from_the_computed_numbers(planted_inputs, tmp_path):
    inp = planted_inputs
    path = numbers_mod.write_numbers(inp, tmp_path / "numbers.tex")
    n = numbers_mod.compute(inp)
    back = numbers_mod.read_numbers(numbers_mod.json_path(path), inp)
    assert {k: str(v) for k, v in back.macros.items()} == {k: str(v) for k, v in n.macros.items()}
    assert back.flags == numbers_mod._plain(n.flags, "flags")
    assert render("paper.tex.j2", **paper_context(inp, back)) == render("paper.tex.j2", **paper_context(inp, n))


def test_numbers_json_of_other_inputs_or_other_formats_is_refused(tmp_path, counted):
    res, an = make_inputs(tmp_path)
    inp = load_inputs(res, an)
    tex = numbers_mod.write_numbers(inp, tmp_path / "b" / "numbers.tex")
    js = numbers_mod.json_path(tex)
    numbers_mod.read_numbers(js, inp)
    other = tmp_path / "other"
    shutil.copytree(an, other)
    s = pd.read_csv(other / "summary.csv")
    s.loc[0, "mean"] += 1.0
    s.to_csv(other / "summary.csv", index=False)
    with pytest.raises(ReportInputError, match="computed from other results or another analysis"):
        numbers_mod.read_numbers(js, load_inputs(res, other))
    # the command line says so in one line, and computes nothing
    counted.clear()
    assert report_main(["tex", "--results", str(res), "--analysis", str(other), "--out-file",
                        str(tmp_path / "b" / "paper.tex")]) == 2
    assert counted == []
    with pytest.raises(ReportInputError, match="missing"):
        numbers_mod.read_numbers(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(ReportInputError, match="not a numbers file"):
        numbers_mod.read_numbers(tmp_path / "bad.json")
    with pytest.raises(TypeError, match="not a string"):
        numbers_mod._plain({"groups": {1: "x"}}, "flags")
    with pytest.raises(ValueError, match="another suffix"):
        numbers_mod.write_numbers(inp, tmp_path / "numbers.json")


# ----------------------------------------------------------------------------- one source of cell statistics


def test_cell_table_is_the_analysis_cell_stats(planted_inputs):
    inp = planted_inputs
    ds = inp.results
    for metric in ("miou", "accuracy"):
        st = inputs.cell_table(inp, metric)
        assert st["mean"].dims == ("pretrain", "intermediate", "finetune")
        for p in ds.pretrain.values:
            for i in ds.intermediate.values:
                for f in ds.finetune.values:
                    mean, sd, n = cell_stats(ds, metric, p, i, f)
                    c = st.sel(pretrain=p, intermediate=i, finetune=f)
                    assert int(c["n"]) == n
                    np.testing.assert_allclose([float(c["mean"]), float(c["sd"])], [mean, sd], rtol=1e-9)
    # the missing run: one seed left, so no SD
    c = inputs.cell_table(inp, "miou").isel(pretrain=1, intermediate=0, finetune=2)
    assert int(c["n"]) == 1 and np.isnan(float(c["sd"]))


def test_cell_table_refuses_a_summary_of_other_results(planted_inputs):
    from dataclasses import replace

    inp = planted_inputs
    s = inp.analysis.summary
    cut = replace(inp.analysis, tables={**inp.analysis.tables, "summary": s[s["finetune"] != 40]})
    with pytest.raises(ReportInputError, match="missing for metric 'miou'.*finetune=40"):
        inputs.cell_table(replace(inp, analysis=cut), "miou")
    only = replace(inp.analysis, tables={**inp.analysis.tables, "summary": s[s["metric"] == "miou"]})
    with pytest.raises(ReportInputError, match="no rows for metric 'accuracy'"):
        inputs.cell_table(replace(inp, analysis=only), "accuracy")
