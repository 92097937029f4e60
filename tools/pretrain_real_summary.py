"""The numbers of experiments/README.md's pretrain-real section, from a results file (and the stage
logs beside it): pre-training loss curves, the pre-training effect per fine-tuning size and pooled
(the analysis package's paired tests and HC3 pooled model) under each reading of mIoU, the gaps
between the readings, and the runtime.

    python tools/pretrain_real_summary.py results/pretrain-real/results.nc [--control results/...nc]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from diminish.analysis.paired import paired_pretrain, pooled
from diminish.results import read_results

READINGS = ("miou", "miou_image", "miou_original", "miou_image_original")


def as_miou(ds, reading: str):
    """The dataset with ``reading`` in the place of ``miou`` (the analysis tests only know miou)."""
    out = ds.copy()
    out["miou"] = ds[reading]
    return out


def effects(ds, reading: str) -> None:
    d = as_miou(ds, reading)
    pp = paired_pretrain(d, "miou")
    print(f"\n-- pre-training effect, {reading} (points; P > 0 minus P = 0, paired by seed)")
    for _, r in pp.iterrows():
        print(f"P={r.pretrain:>5} F={r.finetune:>4} n={r.n}: {r.mean_delta:+6.2f}  "
              f"95% CI [{r.ci_lo:+.2f}, {r.ci_hi:+.2f}]  p_holm={r.p_holm:.3f}")
    po = pooled(d, "miou", effects=("pretrain",))
    for _, r in po.iterrows():
        print(f"pooled {r.term}: {r.estimate:+.2f} 95% CI [{r.ci_lo:+.2f}, {r.ci_hi:+.2f}] p={r.p:.3g} "
              f"(n_obs {r.n_obs}, {r.model})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("results", type=Path)
    a = ap.parse_args()
    ds = read_results(a.results)
    print(f"{a.results}: config {ds.attrs.get('config_name')} {ds.attrs.get('config_hash')}, "
          f"device {ds.attrs.get('device')}, created {ds.attrs.get('created')}")
    print("\n-- mean mIoU (%) over seeds, by P x F (dataset-level, 128 px)")
    m = ds.miou.sel(intermediate=False)
    for p in ds.pretrain.values:
        cells = [m.sel(pretrain=p, finetune=f) for f in ds.finetune.values]
        row = "  ".join(f"{float(c.mean()):5.1f}+-{float(c.std(ddof=1)):.1f}" for c in cells)
        n = int(m.sel(pretrain=p).notnull().sum())
        print(f"P={p:>5}: {row}   (F = {list(ds.finetune.values)}; n = {n})")
    if "pretrain_loss_curve" in ds:
        print("\n-- SimMIM training loss per epoch")
        for p in ds.pretrain.values:
            for s in ds.seed.values:
                c = ds.pretrain_loss_curve.sel(pretrain=p, seed=s).values
                if np.isfinite(c).any():
                    print(f"P={p} seed={s}: " + " ".join(f"{v:.3f}" for v in c[np.isfinite(c)]))
    for reading in READINGS:
        if reading in ds and np.isfinite(ds[reading].values).any():
            effects(ds, reading)
    print("\n-- readings against the dataset-level 128 px mIoU (points; mean, min, max over runs)")
    for reading in READINGS[1:]:
        if reading in ds and np.isfinite(ds[reading].values).any():
            g = (ds[reading] - ds.miou).values.ravel()
            g = g[np.isfinite(g)]
            print(f"{reading} - miou: {g.mean():+.2f} [{g.min():+.2f}, {g.max():+.2f}] over {g.size} runs; "
                  f"mean {float(ds[reading].mean()):.2f} vs {float(ds.miou.mean()):.2f}")
    stages = a.results.parent / "stages"
    secs = {}
    for kind in ("pretrain", "finetune"):  # an evaluate record repeats its fine-tuning seconds
        t = [json.loads(p.read_text()).get("train_seconds") or 0.0 for p in stages.glob(f"{kind}/*/record.json")]
        secs[kind] = (len(t), sum(t))
    print("\n-- training seconds summed over stages (CPU time of the stage's own epochs):",
          {k: f"{n} stages, {s / 60:.1f} min" for k, (n, s) in secs.items()})
    ev = [json.loads(x) for x in (a.results.parent / "executions.jsonl").read_text().splitlines()]
    times = sorted(e["time"] for e in ev if "time" in e)
    if times:
        print(f"first/last event: {times[0]} .. {times[-1]}")


if __name__ == "__main__":
    main()
