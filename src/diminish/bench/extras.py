"""The optional rows beside the three stages: vit-pytorch as a reference, and the data path.

Reference (``--no-reference`` skips it): vit-pytorch's ``ViT`` built with ViNy's configuration and
trained on the classification task (:data:`diminish.core.tasks.CLASSIFY`'s loss, the runner's loop) at
the intermediate stage's batch. It is timed once with our settings (precision, compile, optimiser)
and, where those differ from its defaults, once more as shipped (fp32, eager, torch's default
AdamW); the report gives our speed as a ratio to each.

Data path (``--no-data`` skips it): the cached-data route alone, with no model. A temporary uint8
memmap of random images and masks stands in for a :class:`diminish.data.cache.Cache`; each call
draws a random batch, moves it to the device and makes the stage's training batch from it as the
runner does (the task's ``augment``: batched crops and flips from :mod:`diminish.data.transforms`,
and SimMIM's mask). On CUDA a second row starts from device-resident uint8 arrays.
Each row is reported as images/s and as a multiple of the stage's training throughput.
"""

from __future__ import annotations

import importlib.metadata
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..core import fastpath
from ..core.loop import SingleProcess
from ..core.tasks import CLASSIFY
from .steps import stage_config, stage_optimizer, steps_per_call, task_of, train_step_fn
from .timing import Job


def reference_jobs(opts, cfg, acc, result, log) -> dict[str, Job]:
    """Calibrated reference rows keyed ``same_settings`` / ``as_shipped``; fills ``result["reference"]``."""
    try:  # optional (the bench extra): imported only when the reference rows are asked for
        from vit_pytorch import ViT
    except ImportError:
        msg = "vit-pytorch not installed (pip install 'diminish[bench]'); reference rows skipped"
        log(f"[bench] {msg}")
        result["reference"] = {"skipped": msg}
        return {}
    if "intermediate" not in opts.stages:
        result["reference"] = {"skipped": "the reference is compared on the intermediate stage"}
        return {}
    m, sc = cfg.model, cfg.intermediate
    batch_size = opts.batch_size or sc.batch_size
    device = acc.device
    batch = CLASSIFY.synthetic_batch(cfg, batch_size, device)
    variants = {"same_settings": (acc, opts.compile, True)}
    if acc.mixed_precision != "no" or opts.compile or device.type == "cuda":
        variants["as_shipped"] = (SingleProcess(device, "no"), False, False)
    result["reference"] = {"name": "vit_pytorch.ViT", "version": importlib.metadata.version("vit-pytorch"),
                           "stage": "intermediate", "batch_size": batch_size}
    jobs = {}
    for key, (ref_acc, comp, ours_opt) in variants.items():
        log(f"[bench] reference ({key}): building, warming up")
        torch.manual_seed(0)
        ref = ViT(image_size=m.image_size, patch_size=m.patch_size, num_classes=sc.num_classes, dim=m.dim,
                  depth=m.depth, heads=m.heads, mlp_dim=m.mlp_dim, channels=m.channels,
                  dim_head=m.dim_head).to(device)
        if ours_opt:
            opt = stage_optimizer(opts, ref.parameters(), sc, device)
        else:
            opt = torch.optim.AdamW(ref.parameters(), lr=sc.lr, weight_decay=sc.weight_decay)
        job = Job(f"reference/{key}", train_step_fn(CLASSIFY.loss, fastpath.maybe_compile(ref, comp, opts.compile_mode),
                                                    opt, batch, ref_acc, name=f"the reference ({key})"),
                  batch_size * steps_per_call(device))
        job.warm_up(device, opts.warmup, opts.target_seconds)
        dt = fastpath.autocast_dtype(device, ref_acc.mixed_precision) or torch.float32
        result["reference"][key] = {"dtype": str(dt).replace("torch.", ""), "compile": comp,
                                    "optimizer": "fastpath.make_optimizer" if ours_opt else "torch AdamW default"}
        jobs[key] = job
    return jobs


def data_jobs(opts, cfg, device, result, keep, log) -> dict[str, Job]:
    """Calibrated ``data/<stage>/memmap`` (and on CUDA ``data/<stage>/device``) rows; fills ``result["data"]``.

    The temporary folder and the device copies are appended to ``keep`` so they outlive the timing.
    """
    n, s = opts.data_images, cfg.model.image_size
    tmp = tempfile.TemporaryDirectory(prefix="diminish-bench-")
    keep.append(tmp)
    rng = np.random.default_rng(0)
    images = np.lib.format.open_memmap(Path(tmp.name) / "images.npy", mode="w+", dtype=np.uint8,
                                       shape=(n, 3, s, s))
    masks = np.lib.format.open_memmap(Path(tmp.name) / "masks.npy", mode="w+", dtype=np.uint8, shape=(n, s, s))
    images[:] = rng.integers(0, 256, images.shape, dtype=np.uint8)
    masks[:] = rng.integers(0, 3, masks.shape, dtype=np.uint8)
    images.flush()
    masks.flush()
    images = np.load(Path(tmp.name) / "images.npy", mmap_mode="r")
    masks = np.load(Path(tmp.name) / "masks.npy", mmap_mode="r")
    gen = torch.Generator(device=device).manual_seed(0)
    resident = {}
    if device.type == "cuda":
        resident = {"images": fastpath.to_device_uint8(images, device),
                    "masks": fastpath.to_device_uint8(masks, device)}

    def augment(st, x, m):
        return task_of(st).augment(cfg, {"images": x, "masks": m, "labels": None, "n": x.shape[0]}, gen)

    result["data"] = {"images_in_memmap": n, "rows": {}}
    jobs = {}
    for st in opts.stages:
        bs = opts.batch_size or stage_config(st, cfg).batch_size

        def host(st=st, bs=bs):
            idx = np.sort(rng.choice(n, size=min(bs, n), replace=False))
            x = torch.from_numpy(images[idx]).to(device, non_blocking=True)
            m = torch.from_numpy(masks[idx]).to(device, non_blocking=True) if st == "finetune" else None
            return augment(st, x, m)

        jobs[f"data/{st}/memmap"] = Job(f"data/{st}/memmap", host, min(bs, n))
        result["data"]["rows"][f"data/{st}/memmap"] = {"stage": st, "source": "uint8 memmap -> device",
                                                       "batch_size": min(bs, n)}
        if resident:
            def dev(st=st, bs=bs):
                idx = torch.randint(0, n, (bs,), device=device, generator=gen)
                x = resident["images"][idx]
                m = resident["masks"][idx] if st == "finetune" else None
                return augment(st, x, m)

            jobs[f"data/{st}/device"] = Job(f"data/{st}/device", dev, bs)
            result["data"]["rows"][f"data/{st}/device"] = {"stage": st, "source": "device-resident uint8",
                                                           "batch_size": bs}
    for j in jobs.values():
        j.warm_up(device, 1, opts.target_seconds)
    log(f"[bench] data path: {len(jobs)} rows ready")
    return jobs

