"""The one results format: an xarray Dataset (``results.nc``).

Dims and coords
    pretrain      int    pre-training images (0 = random initialisation)
    intermediate  bool   intermediate Intel fine-tuning off/on (stored as int8 0/1 in the file)
    finetune      int    fine-tuning pets images
    seed          int
    class         str    tri-map class: pet, background, border

Variables (metrics in percent, NaN where a cell was not run)
    accuracy(pretrain, intermediate, finetune, seed)       pixel accuracy on the held-out test set
    miou(pretrain, intermediate, finetune, seed)           mean IoU (dataset-level confusion matrix)
    iou(pretrain, intermediate, finetune, seed, class)     per-class IoU
    train_seconds(pretrain, intermediate, finetune, seed)  wall time of the fine-tuning stage
    final_loss(pretrain, intermediate, finetune, seed)     last fine-tuning epoch's mean loss
    pretrain_loss(pretrain, seed)                          final SimMIM loss (NaN for P = 0)
    intermediate_accuracy(pretrain, seed)                  Intel accuracy after the intermediate stage

attrs: config text and hash, package/torch/accelerate versions, git commit, device, data roots,
cache hashes, creation time, ``synthetic`` (1 when made from synthetic stand-in data).

Only this module writes results files; analysis and report only read them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from .model import TRIMAP_CLASSES

CELL_DIMS = ("pretrain", "intermediate", "finetune", "seed")
CELL_VARS = ("accuracy", "miou", "train_seconds", "final_loss")
STAGE_VARS = ("pretrain_loss", "intermediate_accuracy")


def empty_results(
    pretrain: Iterable[int],
    intermediate: Iterable[bool],
    finetune: Iterable[int],
    seeds: Iterable[int],
    attrs: Mapping | None = None,
) -> xr.Dataset:
    coords = {
        "pretrain": np.asarray(sorted(pretrain), dtype=np.int64),
        "intermediate": np.asarray(sorted(intermediate), dtype=bool),
        "finetune": np.asarray(sorted(finetune), dtype=np.int64),
        "seed": np.asarray(sorted(seeds), dtype=np.int64),
        "class": np.asarray(TRIMAP_CLASSES),
    }
    shape = tuple(len(coords[d]) for d in CELL_DIMS)
    data = {v: (CELL_DIMS, np.full(shape, np.nan)) for v in CELL_VARS}
    data["iou"] = (CELL_DIMS + ("class",), np.full(shape + (len(TRIMAP_CLASSES),), np.nan))
    for v in STAGE_VARS:
        data[v] = (("pretrain", "seed"), np.full((shape[0], shape[3]), np.nan))
    ds = xr.Dataset(data, coords=coords, attrs=dict(attrs or {}))
    for v in ("accuracy", "miou", "iou", "intermediate_accuracy"):
        ds[v].attrs["units"] = "%"
    ds["train_seconds"].attrs["units"] = "s"
    return ds


def write_results(ds: xr.Dataset, path: str | Path) -> Path:
    """Write atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out = ds.copy()
    out = out.assign_coords(intermediate=out["intermediate"].astype(np.int8))
    out["intermediate"].attrs["meaning"] = "0 = no intermediate fine-tuning, 1 = Intel fine-tuning"
    out.attrs = {k: _attr(v) for k, v in out.attrs.items()}
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".nc", dir=path.parent)
    os.close(fd)
    try:
        out.to_netcdf(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def read_results(path: str | Path) -> xr.Dataset:
    """Open a results file with ``intermediate`` as bool again; loads it into memory."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results file not found: {path}")
    try:
        with xr.open_dataset(path) as ds:
            ds = ds.load()
    except Exception as e:  # noqa: BLE001 - name the file, whatever the engine raised
        raise ValueError(f"{path}: not a readable results file ({e})") from None
    missing = [v for v in ("accuracy", "miou") if v not in ds]
    if missing or any(d not in ds.dims for d in CELL_DIMS):
        raise ValueError(f"{path}: not a diminish results file (missing {missing or list(CELL_DIMS)})")
    return ds.assign_coords(intermediate=ds["intermediate"].astype(bool))


def _attr(v):
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, (str, int, float, np.number)):
        return v
    return str(v)


def example_results(seed: int = 0, seeds: Iterable[int] = (0, 1, 2), noise: float = 0.4) -> xr.Dataset:
    """A plausible, fully filled results set for tests and docs (not real results).

    mIoU follows a saturating curve in the fine-tune size whose plateau and head start rise with
    pre-training, and intermediate fine-tuning costs a little, as in the paper.
    """
    rng = np.random.default_rng(seed)
    ds = empty_results((0, 45_000, 100_000, 200_000), (False, True), (250, 500, 1000, 2000, 4000, 6000),
                       seeds, attrs={"synthetic": 1, "config_name": "example", "config_hash": "example"})
    P = ds.pretrain.values[:, None, None, None]
    I = ds.intermediate.values[None, :, None, None]
    Fs = ds.finetune.values[None, None, :, None].astype(float)
    boost = np.log1p(P / 45_000.0)
    plateau = 66.0 + 2.0 * boost
    miou = plateau - (24.0 - 8.0 * boost) * (Fs / 250.0) ** -0.55 - I * (3.0 / (1 + Fs / 2000.0))
    miou = miou + rng.normal(0.0, noise, size=ds.miou.shape)
    ds["miou"][:] = miou
    ds["accuracy"][:] = 40.0 + 0.7 * miou + rng.normal(0.0, noise / 2, size=miou.shape)
    ds["iou"][:] = miou[..., None] + np.array([4.0, 15.0, -19.0]) + rng.normal(0, noise, miou.shape + (3,))
    ds["train_seconds"][:] = Fs * 0.01 + 0 * miou
    ds["final_loss"][:] = 0.3 + 10.0 / Fs + 0 * miou
    ds["pretrain_loss"][:] = np.where(ds.pretrain.values[:, None] > 0, 0.5, np.nan) + 0 * ds.seed.values
    ds["intermediate_accuracy"][:] = 70.0 + rng.normal(0, 1, size=(4, len(ds.seed)))
    return ds
