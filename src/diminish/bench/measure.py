"""The measurement itself: :func:`run` builds every row, times them in rounds and collects the result.

Rows are the stages' training (and, unless ``--no-eval``, evaluation) steps, a square matrix
multiply in the compute dtype, and the optional rows of ``extras.py`` and ``many.py``. Each row is
built, warmed up and calibrated first; then every round times each row once, in turn, so all rows
see the same load on a shared machine, and the reported rate is the median over rounds. Ratios
between rows (MFU, ours vs the reference, data path vs training, stacked vs single) are taken
round by round and then their median is reported.

MFU (model FLOP utilisation) = training images/s x training FLOPs per image (``flops.py``) /
the matmul's FLOP/s. Peak memory covers building the stage's model and optimiser and its warm-up
steps (``timing.MemoryProbe``). Last, the rates are turned into the projected grid time (``grid.py``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict

import torch

from ..core import fastpath
from ..core.loop import SingleProcess
from . import extras, many, shared
from .flops import flops_per_image
from .grid import project_grid
from .options import TASKS, Options
from .steps import (
    eval_step_fn,
    stage_config,
    stage_optimizer,
    steps_per_call,
    task_of,
    train_step_fn,
)
from .timing import Job, MemoryProbe, device_info, load_average


def run(opts: Options, log: Callable[[str], None] = print) -> dict:
    """Run the benchmark; returns the JSON-ready result (see :func:`format_table`)."""
    device = fastpath.resolve_device(opts.device)
    fastpath.setup_device(device, opts.threads or None, opts.tune_allocator)
    precision = fastpath.resolve_precision(opts.precision, device)
    if precision == "fp16":
        raise ValueError("the benchmark trains without a gradient scaler: fp16 is not offered (bf16 is)")
    dtype = fastpath.autocast_dtype(device, precision) or torch.float32  # the compute dtype
    acc = SingleProcess(device, precision)
    cfg = opts.config
    eval_batch = opts.eval_batch_size or cfg.finetune.eval_batch_size
    result: dict = {
        "device": device_info(device),
        "settings": {"dtype": str(dtype).replace("torch.", ""), "mixed_precision": precision,
                     "compile": opts.compile,
                     "compile_mode": opts.compile_mode, "optimizer": opts.optimizer,
                     "repeats": opts.repeats, "target_seconds": opts.target_seconds,
                     "warmup": opts.warmup, "eval_batch_size": eval_batch,
                     "allocator_tuned": opts.tune_allocator and device.type == "cpu",
                     "model": asdict(cfg.model), "simmim": asdict(cfg.simmim)},
        "load_average_start": load_average(),
    }
    jobs: list[Job] = []
    stages: dict[str, dict] = {}
    flops = {s: flops_per_image(cfg.model, TASKS[s], num_classes=task_of(s).num_classes(cfg),
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
        sc, task = stage_config(s, cfg), task_of(s)
        batch_size = opts.batch_size or sc.batch_size
        log(f"[bench] {s}: building, warming up (batch {batch_size})")
        with MemoryProbe(device) as mem:
            t0 = time.perf_counter()
            model = task.build(cfg, seed=0).to(device)
            opt = stage_optimizer(opts, model.parameters(), sc, device)
            fastpath.synchronize(device)
            startup = time.perf_counter() - t0
            runm = fastpath.maybe_compile(model, opts.compile, opts.compile_mode)
            batch = task.synthetic_batch(cfg, batch_size, device)
            train = Job(f"{s}/train", train_step_fn(task.loss, runm, opt, batch, acc, sc.grad_clip, f"the {s} row"),
                        batch_size * steps_per_call(device))
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
            ebatch = task.synthetic_batch(cfg, eval_batch, device, seed=1)
            ev = Job(f"{s}/eval", eval_step_fn(task, runm, ebatch, acc), eval_batch)
            ev.warm_up(device, opts.warmup, opts.target_seconds)
            jobs.append(ev)
            keep.append(ebatch)
        stages[s] = {"task": TASKS[s], "batch_size": batch_size, "eval_batch_size": eval_batch,
                     "peak_memory_mib": _round(mem.peak_mib), "memory_kind": mem.kind,
                     "build_seconds": round(startup, 4), "warmup_seconds": round(first_steps, 3),
                     "train_flops_per_image": flops[s]["train"], "_train": train, "_eval": ev}

    ref_jobs = extras.reference_jobs(opts, cfg, acc, result, log) if opts.reference else {}
    for j in ref_jobs.values():
        jobs.append(j)

    data_jobs = extras.data_jobs(opts, cfg, device, result, keep, log) if opts.data else {}
    jobs += list(data_jobs.values())

    stacked = many.stacked_job(opts, cfg, acc, keep, log) if opts.many > 1 and "finetune" in stages else None
    if stacked is not None:
        jobs.append(stacked)

    log(f"[bench] timing {len(jobs)} rows x {opts.repeats} rounds")
    for r in range(opts.repeats):
        for j in jobs:
            j.time_once(device)
        log(f"[bench] round {r + 1}/{opts.repeats} done")
    result["load_average_end"] = load_average()
    if opts.neighbours > 0 and device.type == "cpu" and "finetune" in stages:
        log(f"[bench] finetune beside {opts.neighbours} busy process(es), {opts.repeats} rounds")
        result["shared_cpu"] = shared.measure(stages["finetune"]["_train"], device, opts.neighbours, opts.repeats)

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
        procs = many.many_processes(opts, cfg, log)
        for v in procs.values():  # the machine's utilisation when the grid runs one process per core
            if isinstance(v, dict):
                v["mfu"] = v["images_per_s"] * stages["finetune"]["train_flops_per_image"] / mm.median
        result.setdefault("many", {})["processes"] = procs
    result["projection"] = project_grid(cfg, stages)
    if stacked is not None:  # fine-tuning runs executed K at a time as stacked models
        faster = {**stages, "finetune": {**stages["finetune"],
                                         "train_images_per_s": result["many"]["stacked"]["images_per_s"]}}
        result["projection_stacked_finetune"] = project_grid(cfg, faster)
    return result


def _round(x: float | None, nd: int = 1) -> float | None:
    return None if x is None else round(x, nd)
