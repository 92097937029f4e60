"""Fixtures shared by several test modules."""

from __future__ import annotations

import pytest

from _runner import fault_tool


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
