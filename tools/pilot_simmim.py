"""Pilot for experiments/pretrain-real.toml: SimMIM pre-training on the real ImageNet subset with
given settings, printing the per-epoch training loss and the masked-L1 loss on held-out Pets
images (fixed masks) before and after; and the fine-tuning step rate. Measurement only.

    python tools/pilot_simmim.py --images 1000 --epochs 20 --lr 1e-3 --warmup 2 --mask 32 --depth 4
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch

from diminish.core.model import Segmenter, ViNy, ViNyConfig
from diminish.core.simmim import SimMIM, SimMIMConfig
from diminish.core.transforms import normalize, seg_augment, simmim_augment
from diminish.data.cache import prepare
from diminish.data.splits import pretrain_subset


def heldout_loss(model: SimMIM, x: torch.Tensor, seed: int = 123) -> float:
    g = torch.Generator().manual_seed(seed)
    model.eval()
    with torch.inference_mode():
        mask = model.random_mask(x.shape[0], generator=g)
        loss = float(model(x, mask=mask))
    model.train()
    return loss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--mask", type=int, default=16)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--cls", type=int, default=1)
    ap.add_argument("--norm-target", type=int, default=0)
    ap.add_argument("--source", default="imagenet", choices=["imagenet", "pets"])
    ap.add_argument("--milestones", default="auto", help="comma list of epochs, 'none', or auto (50%%, 85%%)")
    ap.add_argument("--save", default=None, help="save the SimMIM model in the runner's model-file format")
    ap.add_argument("--bench-ft", action="store_true")
    ap.add_argument("--cache", default="cache")
    a = ap.parse_args()
    root = "../shared/realdata/"
    pets = prepare("pets", root + "oxford-iiit-pet", a.cache, progress=False)
    if a.source == "imagenet":
        inet = prepare("imagenet", root + "imagenet-subset", a.cache, progress=False)
        pool = torch.from_numpy(np.asarray(inet.images[np.sort(pretrain_subset(len(inet), a.images, 0))]))
        held = normalize(torch.from_numpy(np.asarray(pets.images[:100])))
    else:  # control: pre-train on Pets images (the last 300), hold out the first 100
        pool = torch.from_numpy(np.asarray(pets.images[100:100 + a.images]))
        held = normalize(torch.from_numpy(np.asarray(pets.images[:100])))
    torch.manual_seed(0)
    cfg = ViNyConfig(image_size=128, patch_size=16, dim=128, depth=a.depth, heads=8, dim_head=64, mlp_dim=512)
    model = SimMIM(ViNy(cfg), SimMIMConfig(0.5, a.mask, bool(a.cls), bool(a.norm_target)))
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.wd)
    w = a.warmup
    ms = ([int(0.5 * a.epochs), int(0.85 * a.epochs)] if a.milestones == "auto"
          else [] if a.milestones == "none" else [int(m) for m in a.milestones.split(",")])
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda e: min(1.0, (e + 1) / w if w else 1.0) * 0.1 ** sum(m <= e for m in ms))
    out = {"args": vars(a), "held0": heldout_loss(model, held), "epochs": []}
    print(json.dumps({"held0": out["held0"]}), flush=True)
    g = torch.Generator().manual_seed(1)
    n = len(pool)
    for ep in range(a.epochs):
        t0, tot, cnt = time.time(), 0.0, 0
        perm = torch.randperm(n, generator=g)
        for s in range(math.ceil(n / a.batch)):
            xb = simmim_augment(pool[perm[s * a.batch:(s + 1) * a.batch]], g)
            loss = model(xb, generator=g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(xb)
            cnt += len(xb)
        sched.step()
        dt = time.time() - t0
        rec = {"epoch": ep, "train": tot / cnt, "held": heldout_loss(model, held), "img_s": cnt / dt,
               "lr": opt.param_groups[0]["lr"]}
        out["epochs"].append(rec)
        print(json.dumps(rec), flush=True)
    if a.save:
        import dataclasses
        torch.save({"format": 1, "task": "simmim", "model_config": dataclasses.asdict(cfg),
                    "state_dict": model.state_dict(), "label": f"pilot {vars(a)}", "key": "pilot",
                    "spec": {"simmim": dataclasses.asdict(model.cfg)}}, a.save)
    if a.bench_ft:
        seg = Segmenter(model.backbone)
        opt = torch.optim.AdamW(seg.parameters(), lr=2e-3)
        x = torch.from_numpy(np.asarray(pets.images[:16]))
        y = torch.from_numpy(np.asarray(pets.masks[:16]))
        t0 = time.time()
        for _ in range(5):
            xb, yb = seg_augment(x, y, g)
            loss = torch.nn.functional.cross_entropy(seg(xb), yb.long())
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(json.dumps({"finetune_img_s": 80 / (time.time() - t0)}), flush=True)


if __name__ == "__main__":
    main()
