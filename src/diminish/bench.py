"""Throughput benchmark: ``python -m diminish.bench`` (``make bench``).

On the current device, at the configured batch sizes, after warm-up, it times (median of
``--repeats`` timings, every row timed once per round so all rows share the machine's load):

* training and evaluation images/s of each stage: SimMIM pre-training, classification
  (the intermediate Intel task) and segmentation (the Pets fine-tuning);
* peak memory of each stage's training step (CUDA: ``max_memory_allocated`` above what was
  allocated before the stage's model was built; CPU: the rise of the process's resident-set
  high-water mark, VmHWM, over its RSS before the build, after handing freed heap back with
  ``malloc_trim``);
* a square matrix multiply in the compute dtype, the reference for model FLOP utilisation
  (MFU = training images/s x training FLOPs per image / matmul FLOP/s, per round, median);
* the cached data path alone: uint8 memmap -> random batch -> device -> batched augmentation
  from :mod:`diminish.data.transforms` -> normalised float (and, on CUDA, the device-resident
  variant), as images/s and as a multiple of the stage's training throughput;
* vit-pytorch's ``ViT`` with the same configuration, trained on the classification task at the
  same batch on the same machine: once with our settings (dtype, compile, optimiser) and, where
  that differs, as shipped (fp32, eager, default AdamW); our speed is reported as a ratio;
* optionally (``--many K``) several independent fine-tuning runs at once: K processes sharing the
  CPU threads, and K models stacked into one with ``torch.func`` (:class:`fastpath.StackedModels`).

From the measured rates it projects the wall time of the configured grid on this device.

FLOPs per image (counted exactly from the architecture, matrix multiplies only, 2*m*n*k each;
LayerNorm, GELU, softmax, residual adds and the optimiser are not counted). With L patches,
P = p*p*C values per patch, width D, H heads of size Dh (I = H*Dh), MLP width M, depth Nb, and
N tokens in the sequence (L + 1 with the CLS token, L without)::

    patch embedding      2 * L * P * D
    per block, qkv       2 * N * D * 3I
               scores    2 * H * N * N * Dh
               values    2 * H * N * N * Dh
               out proj  2 * N * I * D
               MLP       2 * N * D * M  +  2 * N * M * D
    head  classification 2 * D * K
          segmentation   2 * L * D * (p*p*K)
          SimMIM pixels  2 * L * D * P

    forward = patch + Nb * block + head;  training = 3 * forward (backward = 2 * forward:
    gradients with respect to inputs and to weights).

For ViNy (L=64, P=768, D=128, H=8, Dh=64, M=512, Nb=12, N=65) one block is 59,770,880 FLOPs, the
segmentation forward 742,416,384 and a training image-step 2,227,249,152 (about 2.2 GFLOP).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import fastpath
from .config import ExperimentConfig
from .model import Classifier, Segmenter, ViNy, ViNyConfig
from .simmim import SimMIM

STAGES = ("pretrain", "intermediate", "finetune")
TASKS = {"pretrain": "simmim", "intermediate": "classification", "finetune": "segmentation"}
INTEL_TRAIN = 14_034  # Intel seg_train images (the intermediate stage's epoch)
INTEL_TEST = 3_000  # Intel seg_test images (evaluated once per intermediate run)


# -- FLOPs --------------------------------------------------------------------------------------
def flops_per_image(cfg: ViNyConfig, task: str, num_classes: int = 6, cls_token: bool = True) -> dict:
    """Matrix-multiply FLOPs of one image: ``{"breakdown": {...}, "forward": int, "train": int}``.

    ``task`` is ``simmim``, ``classification`` or ``segmentation``; ``cls_token`` says whether
    the CLS token is in the sequence (always for the heads; SimMIM's ``cls_in_pretrain``).
    """
    L, P, D = cfg.num_patches, cfg.patch_dim, cfg.dim
    H, Dh, M = cfg.heads, cfg.dim_head, cfg.mlp_dim
    inner = H * Dh
    n = L + 1 if cls_token else L
    block = {
        "qkv": 2 * n * D * 3 * inner,
        "attention_scores": 2 * H * n * n * Dh,
        "attention_values": 2 * H * n * n * Dh,
        "out_proj": 2 * n * inner * D,
        "mlp": 2 * n * D * M + 2 * n * M * D,
    }
    if task == "classification":
        head = 2 * D * num_classes
    elif task == "segmentation":
        head = 2 * L * D * cfg.patch_size**2 * num_classes
    elif task == "simmim":
        head = 2 * L * D * P
    else:
        raise ValueError(f"unknown task {task!r}")
    breakdown = {"patch_embed": 2 * L * P * D}
    breakdown.update({k: cfg.depth * v for k, v in block.items()})
    breakdown["head"] = head
    fwd = sum(breakdown.values())
    return {"breakdown": breakdown, "block": sum(block.values()), "forward": fwd, "train": 3 * fwd}


# -- options ------------------------------------------------------------------------------------
@dataclass
class Options:
    device: str = "auto"
    dtype: str = "auto"  # auto = bf16 on CUDA (if supported), fp32 on CPU
    batch_size: int = 0  # 0 = each stage's configured batch
    eval_batch_size: int = 0  # 0 = finetune.eval_batch_size
    repeats: int = 5
    target_seconds: float = 1.0  # each timing lasts at least this long (whole steps)
    warmup: int = 2
    compile: bool = False
    compile_mode: str | None = None  # e.g. "reduce-overhead" (CUDA graphs) or "max-autotune"
    optimizer: str = "auto"  # auto = fastpath.make_optimizer (fused on CUDA); foreach = torch's foreach AdamW
    stages: tuple[str, ...] = STAGES
    reference: bool = True
    eval: bool = True  # also time evaluation (off: fewer compiles with --compile)
    data: bool = True
    data_images: int = 1024  # images in the temporary uint8 memmap the data path reads
    matmul_size: int = 0  # 0 = 2048 on CPU, 8192 on CUDA
    many: int = 0  # K > 1: measure K concurrent fine-tuning runs (processes and stacked models)
    many_seconds: float = 5.0
    many_processes: bool = True  # with many > 1 on a CPU: also time K worker processes
    threads: int = 0  # 0 = torch's default
    tune_allocator: bool = True
    config: ExperimentConfig = field(default_factory=lambda: ExperimentConfig(name="paper"))

    @classmethod
    def quick(cls, **kw) -> Options:
        """Small and short: batch 8, two rounds, tiny matmul and data file."""
        base = {"batch_size": 8, "eval_batch_size": 8, "repeats": 2, "target_seconds": 0.05,
                "warmup": 1, "data_images": 64, "matmul_size": 1024, "many_seconds": 1.0}
        return cls(**{**base, **kw})


# -- timing machinery ---------------------------------------------------------------------------
@dataclass
class Job:
    """One row of the benchmark: ``fn()`` processes ``units`` items (images, or FLOPs)."""

    name: str
    fn: Callable[[], object]
    units: float
    calls: int = 1
    rates: list[float] = field(default_factory=list)
    cpu_rates: list[float] = field(default_factory=list)

    def calibrate(self, device: torch.device, target_s: float) -> None:
        fastpath.synchronize(device)
        t = time.perf_counter()
        self.fn()
        fastpath.synchronize(device)
        dt = time.perf_counter() - t
        self.calls = max(1, math.ceil(target_s / max(dt, 1e-9)))

    def time_once(self, device: torch.device) -> float:
        fastpath.synchronize(device)
        t, c = time.perf_counter(), time.process_time()
        for _ in range(self.calls):
            self.fn()
        fastpath.synchronize(device)
        rate = self.calls * self.units / (time.perf_counter() - t)
        self.rates.append(rate)
        # CPU seconds of this process per thread: a load-robust companion on a shared CPU
        cpu = (time.process_time() - c) / max(1, torch.get_num_threads())
        self.cpu_rates.append(self.calls * self.units / cpu if cpu > 0 else math.nan)
        return rate

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else math.nan


def _rss_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class MemoryProbe:
    """Peak memory of what happens inside the ``with`` block, in MiB (see the module docstring)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_mib: float | None = None
        self.kind = ""

    def __enter__(self) -> MemoryProbe:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            self._base = torch.cuda.memory_allocated(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.kind = "cuda max_memory_allocated"
        else:
            fastpath.release_cpu_memory()
            self._base = _rss_kib("VmRSS")
            try:  # reset the high-water mark (Linux: "5" resets VmHWM to the current RSS)
                Path("/proc/self/clear_refs").write_text("5")
                self.kind = "cpu VmHWM rise"
            except OSError:
                self.kind = "cpu VmHWM rise (not resettable: upper bound)"
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak_mib = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
        else:
            hwm = _rss_kib("VmHWM")
            if hwm is not None and self._base is not None:
                self.peak_mib = max(0, hwm - self._base) / 1024


# -- models and steps ---------------------------------------------------------------------------
def build_model(stage: str, cfg: ExperimentConfig) -> torch.nn.Module:
    backbone = ViNy(cfg.model)
    if stage == "pretrain":
        return SimMIM(backbone, cfg.simmim)
    if stage == "intermediate":
        return Classifier(backbone, cfg.intermediate.num_classes)
    if stage == "finetune":
        return Segmenter(backbone)
    raise ValueError(f"unknown stage {stage!r}")


def stage_config(stage: str, cfg: ExperimentConfig):
    return getattr(cfg, stage)


def make_batch(stage: str, cfg: ExperimentConfig, batch: int, device: torch.device, seed: int = 0) -> dict:
    """Synthetic, already-normalised inputs (the data path is timed separately)."""
    g = torch.Generator().manual_seed(seed)
    s = cfg.model.image_size
    x = torch.randn(batch, cfg.model.channels, s, s, generator=g).to(device)
    out = {"x": x}
    if stage == "intermediate":
        out["y"] = torch.randint(0, cfg.intermediate.num_classes, (batch,), generator=g).to(device)
    elif stage == "finetune":
        out["y"] = torch.randint(0, 3, (batch, s, s), generator=g).to(device)
    return out


def loss_of(stage: str, model, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
    if stage == "pretrain":
        return model(batch["x"], generator=generator)
    return F.cross_entropy(model(batch["x"]), batch["y"])


def train_step_fn(stage: str, model, opt, batch: dict, device, dtype, grad_clip: float = 0.0,
                  generator: torch.Generator | None = None) -> Callable[[], None]:
    """One optimisation step; no host synchronisation inside (the loss stays on the device)."""

    def step() -> None:
        model.train()
        with fastpath.autocast(device, dtype):
            loss = loss_of(stage, model, batch, generator)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        opt.step()

    return step


def eval_step_fn(stage: str, model, batch: dict, device, dtype, generator=None) -> Callable[[], object]:
    def step():
        model.eval()
        with fastpath.eval_context(device, dtype):
            if stage == "pretrain":
                return model(batch["x"], generator=generator)
            return model(batch["x"]).argmax(1)

    return step


# -- the benchmark ------------------------------------------------------------------------------
def device_info(device: torch.device) -> dict:
    info = {"type": device.type, "torch": torch.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "cpu": _cpu_name(), "cpus": fastpath.cpu_threads()}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update({"gpu": p.name, "gpu_memory_gib": round(p.total_memory / 2**30, 1),
                     "cuda": torch.version.cuda})
    info["name"] = info.get("gpu") or f"{info['cpu']} ({info['threads']} threads)"
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def _load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def run(opts: Options, log: Callable[[str], None] = print) -> dict:
    """Run the benchmark; returns the JSON-ready result (see :func:`format_table`)."""
    device = fastpath.resolve_device(opts.device)
    fastpath.setup_device(device, opts.threads or None, opts.tune_allocator)
    dtype = fastpath.resolve_dtype(opts.dtype, device)
    cfg = opts.config
    eval_batch = opts.eval_batch_size or cfg.finetune.eval_batch_size
    result: dict = {
        "device": device_info(device),
        "settings": {"dtype": str(dtype).replace("torch.", ""), "compile": opts.compile,
                     "compile_mode": opts.compile_mode, "optimizer": opts.optimizer,
                     "repeats": opts.repeats, "target_seconds": opts.target_seconds,
                     "warmup": opts.warmup, "eval_batch_size": eval_batch,
                     "allocator_tuned": opts.tune_allocator and device.type == "cpu",
                     "model": asdict(cfg.model), "simmim": asdict(cfg.simmim)},
        "load_average_start": _load_average(),
    }
    jobs: list[Job] = []
    stages: dict[str, dict] = {}
    flops = {s: flops_per_image(cfg.model, TASKS[s], num_classes=_classes(s, cfg),
                                cls_token=cfg.simmim.cls_in_pretrain if s == "pretrain" else True)
             for s in opts.stages}
    result["flops_per_image"] = {s: {k: v for k, v in f.items()} for s, f in flops.items()}
    keep: list = []  # models, optimisers and batches stay alive until every round is timed

    # matrix-multiply peak in the compute dtype
    n = opts.matmul_size or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    mm = Job("matmul", lambda: torch.mm(a, b), 2.0 * n**3)
    jobs.append(mm)
    result["matmul"] = {"n": n, "dtype": str(dtype).replace("torch.", "")}

    for s in opts.stages:
        sc = stage_config(s, cfg)
        batch_size = opts.batch_size or sc.batch_size
        log(f"[bench] {s}: building, warming up (batch {batch_size})")
        with MemoryProbe(device) as mem:
            t0 = time.perf_counter()
            model = build_model(s, cfg).to(device)
            opt = _optimizer(opts, model.parameters(), sc, device)
            fastpath.synchronize(device)
            startup = time.perf_counter() - t0
            runm = fastpath.maybe_compile(model, opts.compile, opts.compile_mode)
            batch = make_batch(s, cfg, batch_size, device)
            gen = torch.Generator(device=device).manual_seed(0) if s == "pretrain" else None
            train = Job(f"{s}/train", train_step_fn(s, runm, opt, batch, device, dtype, sc.grad_clip, gen),
                        batch_size)
            t0 = time.perf_counter()
            for _ in range(max(1, opts.warmup)):
                train.fn()
            fastpath.synchronize(device)
            first_steps = time.perf_counter() - t0
        train.calibrate(device, opts.target_seconds)
        jobs.append(train)
        keep += [model, opt, batch]
        ev = None
        if opts.eval:
            ebatch = make_batch(s, cfg, eval_batch, device, seed=1)
            egen = torch.Generator(device=device).manual_seed(1) if s == "pretrain" else None
            ev = Job(f"{s}/eval", eval_step_fn(s, runm, ebatch, device, dtype, egen), eval_batch)
            for _ in range(max(1, opts.warmup)):
                ev.fn()
            ev.calibrate(device, opts.target_seconds)
            jobs.append(ev)
            keep.append(ebatch)
        stages[s] = {"task": TASKS[s], "batch_size": batch_size, "eval_batch_size": eval_batch,
                     "peak_memory_mib": _round(mem.peak_mib), "memory_kind": mem.kind,
                     "build_seconds": round(startup, 4), "warmup_seconds": round(first_steps, 3),
                     "train_flops_per_image": flops[s]["train"], "_train": train, "_eval": ev}

    ref_jobs = _reference_jobs(opts, cfg, device, dtype, result, log) if opts.reference else {}
    for j in ref_jobs.values():
        jobs.append(j)

    data_jobs = _data_jobs(opts, cfg, device, result, keep, log) if opts.data else {}
    jobs += list(data_jobs.values())

    stacked = _stacked_job(opts, cfg, device, dtype, keep, log) if opts.many > 1 and "finetune" in stages else None
    if stacked is not None:
        jobs.append(stacked)

    log(f"[bench] timing {len(jobs)} rows x {opts.repeats} rounds")
    for r in range(opts.repeats):
        for j in jobs:
            j.time_once(device)
        log(f"[bench] round {r + 1}/{opts.repeats} done")
    result["load_average_end"] = _load_average()

    # -- collect ---------------------------------------------------------------------------
    result["matmul"].update({"flops_per_s": mm.median, "rates": mm.rates, "cpu_time_rates": mm.cpu_rates})
    for st in stages.values():
        train, ev = st.pop("_train"), st.pop("_eval")
        mfu = [t * st["train_flops_per_image"] / m for t, m in zip(train.rates, mm.rates)]
        st.update({"train_images_per_s": train.median, "train_rates": train.rates,
                   "train_cpu_time_rates": train.cpu_rates,
                   "mfu_cpu_time": statistics.median(
                       [t * st["train_flops_per_image"] / m for t, m in zip(train.cpu_rates, mm.cpu_rates)]),
                   "eval_images_per_s": ev.median if ev else None, "eval_rates": ev.rates if ev else [],
                   "steps_per_timing": train.calls, "mfu": statistics.median(mfu), "mfu_rounds": mfu,
                   "train_flops_per_s": train.median * st["train_flops_per_image"]})
    result["stages"] = stages
    if ref_jobs and "intermediate" in stages:
        ours = stages["intermediate"]["train_rates"]
        for key, j in ref_jobs.items():
            ratios = [o / r for o, r in zip(ours, j.rates)]
            cpu_ratios = [o / r for o, r in zip(stages["intermediate"]["train_cpu_time_rates"], j.cpu_rates)]
            result["reference"][key].update({"train_images_per_s": j.median, "rates": j.rates,
                                             "cpu_time_rates": j.cpu_rates,
                                             "ratio_cpu_time": statistics.median(cpu_ratios),
                                             "ratio": statistics.median(ratios), "ratio_rounds": ratios})
    if data_jobs:
        for key, j in data_jobs.items():
            s = key.split("/")[1]
            entry = result["data"]["rows"][key]
            entry.update({"images_per_s": j.median, "rates": j.rates})
            if s in stages:
                ratios = [d / t for d, t in zip(j.rates, stages[s]["train_rates"])]
                entry["ratio_to_train"] = statistics.median(ratios)
    if stacked is not None:
        single = stages["finetune"]["train_rates"]
        ratios = [k / s for k, s in zip(stacked.rates, single)]
        result.setdefault("many", {})["stacked"] = {
            "k": opts.many, "images_per_s": stacked.median, "rates": stacked.rates,
            "speedup_vs_single": statistics.median(ratios)}
    if opts.many > 1 and opts.many_processes and device.type == "cpu" and "finetune" in stages:
        result.setdefault("many", {})["processes"] = many_processes(opts, cfg, log)
    result["projection"] = project_grid(cfg, stages)
    if stacked is not None:  # fine-tuning runs executed K at a time as stacked models
        faster = {**stages, "finetune": {**stages["finetune"],
                                         "train_images_per_s": result["many"]["stacked"]["images_per_s"]}}
        result["projection_stacked_finetune"] = project_grid(cfg, faster)
    return result


def _optimizer(opts: Options, params, sc, device: torch.device) -> torch.optim.Optimizer:
    if opts.optimizer == "auto":
        return fastpath.make_optimizer(params, sc.lr, sc.weight_decay, device)
    if opts.optimizer == "foreach":
        return torch.optim.AdamW(params, lr=sc.lr, weight_decay=sc.weight_decay, foreach=True)
    raise ValueError(f"optimizer must be auto or foreach, got {opts.optimizer!r}")


def _classes(stage: str, cfg: ExperimentConfig) -> int:
    return cfg.intermediate.num_classes if stage == "intermediate" else 3


def _round(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)


def _reference_jobs(opts, cfg, device, dtype, result, log) -> dict[str, Job]:
    try:
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
    batch = make_batch("intermediate", cfg, batch_size, device)
    variants = {"same_settings": (dtype, opts.compile, True)}
    if dtype != torch.float32 or opts.compile or device.type == "cuda":
        variants["as_shipped"] = (torch.float32, False, False)
    result["reference"] = {"name": "vit_pytorch.ViT", "version": importlib.metadata.version("vit-pytorch"),
                           "stage": "intermediate", "batch_size": batch_size}
    jobs = {}
    for key, (dt, comp, ours_opt) in variants.items():
        log(f"[bench] reference ({key}): building, warming up")
        torch.manual_seed(0)
        ref = ViT(image_size=m.image_size, patch_size=m.patch_size, num_classes=sc.num_classes, dim=m.dim,
                  depth=m.depth, heads=m.heads, mlp_dim=m.mlp_dim, channels=m.channels,
                  dim_head=m.dim_head).to(device)
        if ours_opt:
            opt = _optimizer(opts, ref.parameters(), sc, device)
        else:
            opt = torch.optim.AdamW(ref.parameters(), lr=sc.lr, weight_decay=sc.weight_decay)
        job = Job(f"reference/{key}", train_step_fn("intermediate", fastpath.maybe_compile(
            ref, comp, opts.compile_mode), opt, batch, device, dt), batch_size)
        for _ in range(max(1, opts.warmup)):
            job.fn()
        job.calibrate(device, opts.target_seconds)
        result["reference"][key] = {"dtype": str(dt).replace("torch.", ""), "compile": comp,
                                    "optimizer": "fastpath.make_optimizer" if ours_opt else "torch AdamW default"}
        jobs[key] = job
    return jobs


def _data_jobs(opts, cfg, device, result, keep, log) -> dict[str, Job]:
    T = _transforms()
    if isinstance(T, str):
        msg = f"diminish.data.transforms not importable ({T}); data path skipped"
        log(f"[bench] {msg}")
        result["data"] = {"skipped": msg}
        return {}
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
    aug = {"pretrain": lambda x, m: T.simmim_augment(x, gen),
           "intermediate": lambda x, m: T.cls_augment(x, gen),
           "finetune": lambda x, m: T.seg_augment(x, m, gen)}
    result["data"] = {"images_in_memmap": n, "rows": {}}
    jobs = {}
    for st in opts.stages:
        bs = opts.batch_size or stage_config(st, cfg).batch_size

        def host(st=st, bs=bs):
            idx = np.sort(rng.choice(n, size=min(bs, n), replace=False))
            x = torch.from_numpy(images[idx]).to(device, non_blocking=True)
            m = torch.from_numpy(masks[idx]).to(device, non_blocking=True) if st == "finetune" else None
            return aug[st](x, m)

        jobs[f"data/{st}/memmap"] = Job(f"data/{st}/memmap", host, min(bs, n))
        result["data"]["rows"][f"data/{st}/memmap"] = {"stage": st, "source": "uint8 memmap -> device",
                                                       "batch_size": min(bs, n)}
        if resident:
            def dev(st=st, bs=bs):
                idx = torch.randint(0, n, (bs,), device=device, generator=gen)
                x = resident["images"][idx]
                m = resident["masks"][idx] if st == "finetune" else None
                return aug[st](x, m)

            jobs[f"data/{st}/device"] = Job(f"data/{st}/device", dev, bs)
            result["data"]["rows"][f"data/{st}/device"] = {"stage": st, "source": "device-resident uint8",
                                                           "batch_size": bs}
    for j in jobs.values():
        j.fn()
        j.calibrate(device, opts.target_seconds)
    log(f"[bench] data path: {len(jobs)} rows ready")
    return jobs


def _transforms():
    """diminish.data.transforms, or the reason it cannot be imported.

    The transforms need torch only; when the data package's other readers miss a dependency
    (a bare GPU machine), the file is loaded on its own.
    """
    try:
        from .data import transforms
        return transforms
    except ImportError as e:
        path = Path(__file__).parent / "data" / "transforms.py"
        if not path.is_file():
            return str(e)
        import importlib.util

        spec = importlib.util.spec_from_file_location("diminish_bench_transforms", path)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception as e2:  # noqa: BLE001 - reported, not hidden
            return f"{e}; loading {path} alone: {e2}"
        return mod


def _stacked_job(opts, cfg, device, dtype, keep, log) -> Job | None:
    k = opts.many
    sc = cfg.finetune
    bs = opts.batch_size or sc.batch_size
    log(f"[bench] {k} stacked segmentation models (torch.func): building, warming up")
    models = [build_model("finetune", cfg) for _ in range(k)]
    stacked = fastpath.StackedModels(models).to(device)
    opt = _optimizer(opts, stacked.parameters(), sc, device)
    batch = make_batch("finetune", cfg, bs * k, device)
    x = batch["x"].view(k, bs, *batch["x"].shape[1:])
    y = batch["y"].view(k, bs, *batch["y"].shape[1:])
    runm = fastpath.maybe_compile(stacked, opts.compile, opts.compile_mode)

    def step() -> None:
        with fastpath.autocast(device, dtype):
            logits = runm(x)  # (K, B, classes, H, W)
            # sum over models of each model's mean loss: every model gets its own gradient
            loss = F.cross_entropy(logits.flatten(0, 1), y.flatten(0, 1), reduction="none")
            loss = loss.view(k, -1).mean(1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    job = Job(f"many/stacked_x{k}", step, k * bs)
    for _ in range(max(1, opts.warmup)):
        job.fn()
    job.calibrate(device, opts.target_seconds)
    keep += [stacked, opt, x, y]
    return job


# -- many runs as processes (CPU) -----------------------------------------------------------------
def many_processes(opts: Options, cfg: ExperimentConfig, log) -> dict:
    """Aggregate fine-tuning throughput of 1 process with all threads vs K with threads/K each.

    Each worker builds its model, warms up, reports ready, and starts timing only when every
    worker is ready, so the K timings overlap.
    """
    total = opts.threads or torch.get_num_threads()
    out = {}
    for k in (1, opts.many):
        threads = max(1, total // k)
        log(f"[bench] many runs: {k} process(es) x {threads} thread(s)")
        out[f"{k}x{threads}"] = _run_workers(k, threads, opts, cfg)
    one = out[f"1x{total}"]["images_per_s"]
    key = f"{opts.many}x{max(1, total // opts.many)}"
    out["speedup"] = out[key]["images_per_s"] / one if one else math.nan
    return out


def _run_workers(k: int, threads: int, opts: Options, cfg: ExperimentConfig) -> dict:
    spec = json.dumps({"threads": threads, "batch_size": opts.batch_size or cfg.finetune.batch_size,
                       "seconds": opts.many_seconds, "dtype": opts.dtype, "warmup": opts.warmup,
                       "model": asdict(cfg.model), "tune_allocator": opts.tune_allocator})
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    procs = [subprocess.Popen([sys.executable, "-m", "diminish.bench", "--worker", spec],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
             for _ in range(k)]
    try:
        for p in procs:
            line = p.stdout.readline()
            if line.strip() != "ready":
                raise RuntimeError(f"bench worker failed to start: {line!r}")
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        rates = [json.loads(p.stdout.readline())["images_per_s"] for p in procs]
    finally:
        for p in procs:  # the result is read: no need to wait for the interpreter to shut down
            with contextlib.suppress(Exception):
                p.stdin.close()
            p.kill()
            p.wait(timeout=60)
    return {"processes": k, "threads_each": threads, "rates": rates, "images_per_s": sum(rates)}


def _worker(spec_text: str) -> None:
    spec = json.loads(spec_text)
    torch.set_num_threads(spec["threads"])
    device = torch.device("cpu")
    fastpath.setup_device(device, spec["threads"], spec["tune_allocator"])
    cfg = replace(ExperimentConfig(name="bench"), model=ViNyConfig(**spec["model"]))
    dtype = fastpath.resolve_dtype(spec["dtype"], device)
    model = build_model("finetune", cfg)
    opt = fastpath.make_optimizer(model.parameters(), 1e-4, 0.0, device)
    batch = make_batch("finetune", cfg, spec["batch_size"], device)
    step = train_step_fn("finetune", model, opt, batch, device, dtype)
    for _ in range(max(1, spec["warmup"])):
        step()
    print("ready", flush=True)
    sys.stdin.readline()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < spec["seconds"] or n == 0:
        step()
        n += 1
    rate = n * spec["batch_size"] / (time.perf_counter() - t0)
    print(json.dumps({"images_per_s": rate}), flush=True)


# -- projection ---------------------------------------------------------------------------------
def grid_workload(cfg: ExperimentConfig, intel_train: int = INTEL_TRAIN, intel_test: int = INTEL_TEST) -> dict:
    """Training image-steps and evaluated images per stage type for the configured grid.

    pretrain: every non-zero size x epochs x seeds; intermediate: Intel train x epochs for every
    pre-training size (with the intermediate condition on) x seeds; fine-tuning: every size x
    epochs x pre-training sizes x intermediate conditions x seeds. Evaluation: the Intel test set
    once per intermediate run, the Pets test set once per fine-tuning run.
    """
    seeds, n_pre = len(cfg.seeds), len(cfg.pretrain.sizes)
    n_inter = n_pre * (True in cfg.intermediate.conditions) * seeds
    n_fine = len(cfg.finetune.sizes) * n_pre * len(cfg.intermediate.conditions) * seeds
    return {
        "pretrain": {"runs": sum(1 for s in cfg.pretrain.sizes if s) * seeds,
                     "image_steps": sum(cfg.pretrain.sizes) * cfg.pretrain.epochs * seeds, "eval_images": 0},
        "intermediate": {"runs": n_inter, "image_steps": intel_train * cfg.intermediate.epochs * n_inter,
                         "eval_images": intel_test * n_inter if cfg.intermediate.evaluate_test else 0},
        "finetune": {"runs": n_fine,
                     "image_steps": sum(cfg.finetune.sizes) * cfg.finetune.epochs * n_pre
                     * len(cfg.intermediate.conditions) * seeds,
                     "eval_images": cfg.finetune.test_size * n_fine},
    }


def project_grid(cfg: ExperimentConfig, stages: dict) -> dict:
    """Wall time of the grid on this device from the measured rates (no start-up costs)."""
    work = grid_workload(cfg)
    out: dict = {"workload": work, "seconds": {}}
    for s, w in work.items():
        st = stages.get(s)
        if st is None:
            out["seconds"][s] = None
            continue
        sec = w["image_steps"] / st["train_images_per_s"]
        if w["eval_images"] and st.get("eval_images_per_s"):  # not timed with --no-eval
            sec += w["eval_images"] / st["eval_images_per_s"]
        out["seconds"][s] = sec
    known = [v for v in out["seconds"].values() if v is not None]
    out["total_image_steps"] = sum(w["image_steps"] for w in work.values())
    out["total_hours"] = sum(known) / 3600 if len(known) == len(work) else None
    return out


# -- output -------------------------------------------------------------------------------------
def format_table(res: dict) -> str:
    dev = res["device"]
    lines = [f"device: {dev['name']}   torch {dev['torch']}   dtype {res['settings']['dtype']}"
             f"   compile {res['settings']['compile']}   load {res.get('load_average_start')}"]
    if dev["type"] == "cpu":
        lines.append("(cpu-time columns: images per (CPU-seconds of this process / threads): the rate had "
                     "it the cores to itself; exact with 1 thread, inflated by spin-waits with more)")
    mm = res["matmul"]
    lines.append(f"matmul {mm['n']}^3 {mm['dtype']}: {mm['flops_per_s'] / 1e9:,.1f} GFLOP/s")
    cpu = dev["type"] == "cpu"
    lines.append(f"{'stage':<14}{'batch':>6}{'train img/s':>13}{'eval img/s':>12}{'GFLOP/s':>10}"
                 f"{'MFU':>7}{'peak MiB':>10}" + (f"{'cpu-time img/s':>16}{'MFU':>6}" if cpu else ""))
    for s, st in res["stages"].items():
        mem = "-" if st["peak_memory_mib"] is None else f"{st['peak_memory_mib']:,.0f}"
        extra = (f"{statistics.median(st['train_cpu_time_rates']):>16,.1f}{st['mfu_cpu_time']:>6.0%}"
                 if cpu else "")
        lines.append(f"{s:<14}{st['batch_size']:>6}{st['train_images_per_s']:>13,.1f}"
                     f"{st['eval_images_per_s'] or math.nan:>12,.1f}{st['train_flops_per_s'] / 1e9:>10,.1f}"
                     f"{st['mfu']:>7.0%}{mem:>10}{extra}")
    ref = res.get("reference", {})
    if "skipped" in ref:
        lines.append(f"reference: {ref['skipped']}")
    else:
        for key in ("same_settings", "as_shipped"):
            if key in ref:
                r = ref[key]
                extra = f" (cpu-time: {r['ratio_cpu_time']:.2f}x)" if cpu else ""
                lines.append(f"vit-pytorch ViT {ref['version']} ({key}, {r['dtype']}): "
                             f"{r['train_images_per_s']:,.1f} img/s -> ours is {r['ratio']:.2f}x{extra}")
    data = res.get("data", {})
    if "skipped" in data:
        lines.append(f"data: {data['skipped']}")
    for key, row in data.get("rows", {}).items():
        ratio = f" = {row['ratio_to_train']:.0f}x training" if "ratio_to_train" in row else ""
        lines.append(f"{key:<26} {row['images_per_s']:>12,.0f} img/s{ratio}")
    many = res.get("many", {})
    if "stacked" in many:
        m = many["stacked"]
        lines.append(f"{m['k']} stacked fine-tuning models: {m['images_per_s']:,.1f} img/s "
                     f"({m['speedup_vs_single']:.2f}x one model)")
    if "processes" in many:
        p = many["processes"]
        parts = ", ".join(f"{k}: {v['images_per_s']:,.1f} img/s" for k, v in p.items() if k != "speedup")
        lines.append(f"fine-tuning processes x threads: {parts} (speedup {p['speedup']:.2f}x)")
    pr = res["projection"]
    secs = ", ".join(f"{s} {v / 3600:,.1f} h" for s, v in pr["seconds"].items() if v is not None)
    total = "n/a (not all stages timed)" if pr["total_hours"] is None else f"{pr['total_hours']:,.1f} h"
    lines.append(f"paper grid ({pr['total_image_steps'] / 1e6:,.1f}M image-steps): {secs}; total {total}")
    ps = res.get("projection_stacked_finetune")
    if ps and ps["total_hours"] is not None:
        lines.append(f"  with fine-tuning runs stacked {res['many']['stacked']['k']} at a time: "
                     f"total {ps['total_hours']:,.1f} h")
    return "\n".join(lines)


def _parse(argv: list[str] | None) -> tuple[Options, argparse.Namespace]:
    p = argparse.ArgumentParser(prog="python -m diminish.bench", description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    p.add_argument("--dtype", default="auto", choices=["auto", "bf16", "fp32"],
                   help="auto: bf16 autocast on CUDA, fp32 on CPU")
    p.add_argument("--batch-size", type=int, default=0, help="override every stage's batch size")
    p.add_argument("--eval-batch-size", type=int, default=0)
    p.add_argument("--repeats", type=int, default=5, help="timing rounds (median reported)")
    p.add_argument("--target-seconds", type=float, default=1.0, help="minimum length of one timing")
    p.add_argument("--compile", action="store_true", help="torch.compile the models (and the reference)")
    p.add_argument("--compile-mode", default=None,
                   help="torch.compile mode, e.g. reduce-overhead (CUDA graphs) or max-autotune")
    p.add_argument("--optimizer", default="auto", choices=["auto", "foreach"],
                   help="auto: fused AdamW on CUDA (fastpath.make_optimizer); foreach: torch's foreach AdamW")
    p.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of " + ",".join(STAGES))
    p.add_argument("--no-reference", action="store_true", help="skip vit-pytorch")
    p.add_argument("--no-data", action="store_true", help="skip the data path")
    p.add_argument("--no-eval", action="store_true", help="skip evaluation timings (projection without eval)")
    p.add_argument("--many", type=int, default=0, help="K > 1: measure K concurrent fine-tuning runs")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = torch's default)")
    p.add_argument("--no-tune-allocator", action="store_true",
                   help="leave glibc malloc as it is (default: keep freed memory in the process)")
    p.add_argument("--config", type=Path, default=None,
                   help="experiment TOML for model, batch sizes and grid (default experiments/paper.toml "
                        "if present, else the built-in paper defaults)")
    p.add_argument("--quick", action="store_true", help="batch 8, 2 short rounds: checks the machinery")
    p.add_argument("--out", type=Path, default=None, help="write the result as JSON here")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    cfg_path = a.config or (Path("experiments/paper.toml") if Path("experiments/paper.toml").is_file() else None)
    from . import config as config_mod

    cfg = config_mod.load(cfg_path) if cfg_path else ExperimentConfig(name="paper")
    stages = tuple(s.strip() for s in a.stages.split(",") if s.strip())
    bad = [s for s in stages if s not in STAGES]
    if bad:
        p.error(f"--stages: unknown {bad}; choose from {list(STAGES)}")
    kw = {"device": a.device, "dtype": a.dtype, "compile": a.compile or bool(a.compile_mode),
          "compile_mode": a.compile_mode, "optimizer": a.optimizer, "stages": stages,
          "reference": not a.no_reference, "data": not a.no_data, "eval": not a.no_eval,
          "many": a.many, "threads": a.threads,
          "tune_allocator": not a.no_tune_allocator, "config": cfg}
    explicit = {"batch_size": a.batch_size, "eval_batch_size": a.eval_batch_size}
    if a.quick:
        opts = Options.quick(**kw, **{k: v for k, v in explicit.items() if v})
        if a.repeats != 5:
            opts.repeats = a.repeats
    else:
        opts = Options(**kw, **explicit, repeats=a.repeats, target_seconds=a.target_seconds)
    return opts, a


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["--worker"]:
        _worker(argv[1])
        return 0
    opts, a = _parse(argv)
    res = run(opts, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(format_table(res))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(res, indent=1, default=str))
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
