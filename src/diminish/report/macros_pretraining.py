"""Macros of the pre-training diagnostics appendix: the SimMIM loss curve of the largest
pre-training size, and how far the other readings of mIoU (per-image mean; original trimap
resolution) move the numbers. Only numbers and signed differences, no direction words.

Reads ``pretrain_loss_curve``, ``miou_image``, ``miou_original`` and ``miou_image_original`` from
results.nc when present (older results files lack them; the flags then say so).
"""

from __future__ import annotations

import math
import re

import numpy as np

from .figures.examples import (
    shown,  # the images the figure shows (imports matplotlib, as the figure does)
)
from .inputs import Inputs
from .latex import Tex, num, size_label
from .macros import Numbers, snum
from .statements import convergence_reading, convergence_sentence, convergence_state, plural
from .statements_examples import class_shares, examples_sentence
from .statements_schedule import drops_in_tail, schedule_sentence


def curve_summary(curve) -> dict | None:
    """For a (pretrain, seed, pretrain_epoch) loss curve: the largest P with any finite value, its
    epochs, the seed-mean loss of its first and last epochs and their ratio, and how much of the
    drop from first to last came in the last quarter of the epochs (``tail_epochs`` of them, at
    least one; ``tail_share`` NaN with fewer than two epochs or no drop); None when empty."""
    vals = curve.values
    finite = np.isfinite(vals)
    sizes = [p for i, p in enumerate(curve["pretrain"].values) if finite[i].any()]
    if not sizes:
        return None
    p = max(sizes)
    c = curve.sel(pretrain=p).values  # (seed, epoch)
    epochs = int(np.isfinite(c).any(axis=0).sum())
    mean = np.nanmean(c[:, :epochs], axis=0)
    tail = max(1, math.ceil(epochs / 4))
    drop = float(mean[0] - mean[-1])
    share = float((mean[-1 - tail] - mean[-1]) / drop) if epochs >= 2 and drop > 0 else math.nan
    return {"pretrain": int(p), "epochs": epochs, "first": float(mean[0]), "last": float(mean[-1]),
            "ratio": float(mean[-1] / mean[0]), "seeds": int(np.isfinite(c).any(axis=1).sum()),
            "tail_epochs": tail, "tail_share": share}


def variant_gap(ds, variant: str, base: str = "miou") -> dict | None:
    """Mean, min and max over finished cell-seeds of ``variant - base`` (points); None when unrecorded."""
    if variant not in ds or base not in ds:
        return None
    d = (ds[variant] - ds[base]).values.ravel()
    d = d[np.isfinite(d)]
    if not d.size:
        return None
    return {"mean": float(d.mean()), "lo": float(d.min()), "hi": float(d.max()), "n": int(d.size)}


def add_pretraining(n: Numbers, inp: Inputs) -> None:
    ds = inp.results
    s = curve_summary(ds["pretrain_loss_curve"]) if "pretrain_loss_curve" in ds else None
    n.flags["has_pretrain_curve"] = s is not None
    cfg = inp.config  # which targets SimMIM was trained on decides what the reconstruction figure shows
    n.flags["pretrain_norm_target"] = bool(cfg.simmim.norm_target) if cfg is not None else None
    if s is not None:
        n.set("PretrainCurveSize", size_label(s["pretrain"]))
        n.set("PretrainCurveEpochs", Tex(str(s["epochs"])))
        n.set("PretrainCurveSeeds", plural(int(s["seeds"]), "seed"))  # '1 seed' / '3 seeds'
        n.set("PretrainLossFirst", num(s["first"], 3))
        n.set("PretrainLossLast", num(s["last"], 3))
        n.set("PretrainLossRatio", num(s["ratio"], 2))
        state = convergence_state(s["epochs"], s["first"], s["last"], s["tail_share"])
        n.flags["pretrain_convergence"] = state
        n.set("PretrainConvergence", convergence_sentence(state, size_label(s["pretrain"]), s["epochs"], s["first"],
                                                          s["last"], s["tail_epochs"], s["tail_share"]))
        pc = cfg.pretrain if cfg is not None else None
        drop = bool(pc and drops_in_tail(pc.milestones, s["epochs"], s["tail_epochs"]) and 0 < pc.gamma < 1)
        n.set("PretrainConvergenceReading", convergence_reading(state, lr_drop_in_tail=drop))
        n.set("PretrainSchedule", schedule_sentence(ds.pretrain.values, pc.epochs, pc.batch_size, pc.milestones,
                                                    pc.gamma, s["tail_epochs"]) if pc is not None else Tex(""))
    for variant, name in (("miou_image", "Image"), ("miou_original", "Original"),
                          ("miou_image_original", "ImageOriginal")):
        g = variant_gap(ds, variant)
        n.flags[f"has_miou_{variant}"] = g is not None
        if g is not None:
            n.set(f"Gap{name}Mean", snum(g["mean"]))
            n.set(f"Gap{name}Lo", snum(g["lo"]))
            n.set(f"Gap{name}Hi", snum(g["hi"]))
            n.set(f"Gap{name}N", Tex(str(g["n"])))


def add_examples(n: Numbers, inp: Inputs) -> None:
    """ExamplesSentence: which cell the examples come from, how its run ranks, and the border class's shares."""
    ex = inp.examples
    if ex is None:
        n.set("ExamplesSentence", Tex(""))
        return
    m = re.match(r"\s*(?:P|pretrain)=(\d+)\s+(?:I|intermediate)=(\w+)\s+(?:F|finetune)=(\d+)\s+seed=(\d+)",
                 str(ex["cell"]))

    k = shown(inp)
    t, p = class_shares(ex["truth"][:k], ex["pred"][:k])
    score, rank, total, F = np.nan, 0, 0, 0
    ds = inp.results
    if m and inp.metric in ds:
        P, inter, F, seed = int(m.group(1)), m.group(2) == "True", int(m.group(3)), int(m.group(4))
        runs = ds[inp.metric].sel(finetune=F)
        score = float(runs.sel(pretrain=P, intermediate=inter, seed=seed))
        vals = runs.values.ravel()
        vals = vals[np.isfinite(vals)]
        rank, total = 1 + int((vals > score).sum()), len(vals)  # 1 = best among the runs at this F
    label = "mIoU" if inp.metric == "miou" else inp.metric
    cell = f"P = {m.group(1)}, F = {m.group(3)}, seed {m.group(4)}" if m else str(ex["cell"])
    n.set("ExamplesSentence", examples_sentence(cell, label, score, rank, total, F, t, p))
