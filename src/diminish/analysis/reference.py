"""The paper's published tables (Table 1, A2, A3) as an xarray Dataset.

The numbers live in ``paper_tables.csv`` next to this module (hand-transcribed; a test checks them
against the paper's text when it is available). The paper reports each cell as ``mean ± spread``
over 3 runs without saying what the spread is. We treat it as a sample standard deviation over
n = 3 runs by default; ``spread="se"`` treats it as a standard error instead (SD = SE * sqrt(n)).
That is the one switch for the assumption.

The Dataset has the same dims as a results file minus ``seed``: ``pretrain``, ``intermediate``
(bool), ``finetune``; variables ``<metric>_mean``, ``<metric>_sd`` and ``n`` (runs per cell, 0
where the paper did not run the cell: P = 0 with intermediate fine-tuning). Missing cells are NaN.
"""

from __future__ import annotations

import functools
import io
from importlib import resources

import numpy as np
import pandas as pd
import xarray as xr

METRICS = ("accuracy", "miou")
PAPER_RUNS = 3
SPREADS = ("sd", "se")


def paper_table() -> pd.DataFrame:
    """The transcribed tables, one row per published cell (mean and spread as printed)."""
    text = resources.files(__package__).joinpath("paper_tables.csv").read_text()
    df = pd.read_csv(io.StringIO(text), comment="#", dtype={"table": str})
    df["intermediate"] = df["intermediate"].astype(str).map({"True": True, "False": False})
    return df


def load_reference(spread: str = "sd", n: int = PAPER_RUNS) -> xr.Dataset:
    """The paper's numbers as a summary Dataset (see the module docstring); a copy of the one built per process."""
    return _reference(spread, n).copy(deep=True)


@functools.lru_cache(maxsize=4)
def _reference(spread: str, n: int) -> xr.Dataset:
    if spread not in SPREADS:
        raise ValueError(f"spread must be one of {SPREADS}, got {spread!r}")
    if n < 2:
        raise ValueError(f"the paper's runs per cell must be >= 2, got {n}")
    df = paper_table()
    coords = {
        "pretrain": np.array(sorted(df.pretrain.unique()), dtype=np.int64),
        "intermediate": np.array([False, True]),
        "finetune": np.array(sorted(df.finetune.unique()), dtype=np.int64),
    }
    shape = tuple(len(v) for v in coords.values())
    dims = tuple(coords)
    data = {}
    for m in METRICS:
        data[f"{m}_mean"] = (dims, np.full(shape, np.nan))
        data[f"{m}_sd"] = (dims, np.full(shape, np.nan))
    data["n"] = (dims, np.zeros(shape, dtype=np.int64))
    ds = xr.Dataset(data, coords=coords)
    factor = np.sqrt(n) if spread == "se" else 1.0
    for row in df.itertuples():
        loc = {"pretrain": row.pretrain, "intermediate": row.intermediate, "finetune": row.finetune}
        for m in METRICS:
            ds[f"{m}_mean"].loc[loc] = getattr(row, f"{m}_mean")
            ds[f"{m}_sd"].loc[loc] = getattr(row, f"{m}_spread") * factor
        ds["n"].loc[loc] = n
    for m in METRICS:
        ds[f"{m}_mean"].attrs["units"] = "%"
        ds[f"{m}_sd"].attrs["units"] = "%"
    ds.attrs.update(
        source="paper",
        summary=1,
        synthetic=0,
        config_hash="paper",
        config_name="paper (Tables 1, A2, A3)",
        spread_assumption=(
            f"published +/- read as a sample SD over n = {n} runs" if spread == "sd"
            else f"published +/- read as a standard error over n = {n} runs (SD = SE * sqrt({n}))"
        ),
    )
    return ds
