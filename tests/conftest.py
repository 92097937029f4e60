"""Fixtures shared by several test modules."""

from __future__ import annotations

from pathlib import Path

import pytest

from _runner import fault_tool
from diminish.runner import cli as run


@pytest.fixture(scope="session")
def grid(tmp_path_factory):
    """The tiny grid's work folder, config and uninterrupted reference results.nc (run once per
    session; the determinism and fault-injection tests compare their runs against it)."""
    fi = fault_tool()
    work = tmp_path_factory.getbasetemp() / "reliability"
    work.mkdir(exist_ok=True)
    data = fi.make_data(work)
    config = fi.write_config(work / "tiny.toml", data)
    ref, _, _ = fi.reference(work, config)
    return work, config, ref


def one_cell_config(path: Path, data: Path) -> Path:
    """The tiny grid cut to one cell: pre-training P=16, no intermediate stage, F=8."""
    text = fault_tool().write_config(path, data).read_text()
    text = text.replace('name = "tiny"', 'name = "one-cell"').replace("sizes = [0, 16]", "sizes = [16]")
    text = text.replace("sizes = [8, 16]", "sizes = [8]")
    text = text.replace("[intermediate]\n", "[intermediate]\nconditions = [false]\n")
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def cell(tmp_path_factory):
    """A finished one-cell grid (P=16, I off, F=8, one seed): (work folder, config, output folder);
    tests/test_integrity.py and tests/test_hostile_inputs.py damage copies of it."""
    base = tmp_path_factory.mktemp("integrity")
    data = fault_tool().make_data(base)
    cfg = one_cell_config(base / "one.toml", data)
    out = base / "out"
    assert run.main(["--all", "--no-progress", "--config", str(cfg), "--out", str(out),
                     "--cache-dir", str(base / "cache")]) == 0
    return base, cfg, out
