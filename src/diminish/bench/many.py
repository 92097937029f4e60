"""Several independent fine-tuning runs at once (``--many K``): is running them together faster?

Two ways are measured against one model training alone:

* stacked: K segmentation models merged into one with ``torch.func``
  (:class:`diminish.core.fastpath.StackedModels`), trained on K batches in one step by the runner's
  loop; the loss is the sum over models of each model's mean loss (K times the segmentation
  task's loss over all K batches, as every batch has as many pixels), so every model receives
  exactly its own gradient.
  This row is timed in the same rounds as the stages (any device).
* processes (CPU only): K worker processes, each with threads/K CPU threads, against a single
  process using all of them. A worker is ``python -m diminish.bench --worker SPEC`` (the spec is
  JSON); it builds its model, warms up, prints ``ready``, waits for ``go`` on stdin, trains for
  ``many_seconds`` and prints its images/s as JSON. Every worker starts timing only after all
  are ready, so the K timings overlap.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, replace

import torch

from ..config import ExperimentConfig
from ..core import fastpath
from ..core.loop import SingleProcess
from ..core.model import ViNyConfig
from ..core.tasks import SEGMENT
from .options import Options
from .steps import stage_optimizer, steps_per_call, train_step_fn
from .timing import Job


def stacked_job(opts, cfg, acc, keep, log) -> Job | None:
    """A calibrated row training ``opts.many`` stacked fine-tuning models; its state goes to ``keep``."""
    k, device = opts.many, acc.device
    sc = cfg.finetune
    bs = opts.batch_size or sc.batch_size
    log(f"[bench] {k} stacked segmentation models (torch.func): building, warming up")
    models = [SEGMENT.build(cfg, seed=i) for i in range(k)]
    stacked = fastpath.StackedModels(models).to(device)
    opt = stage_optimizer(opts, stacked.parameters(), sc, device)
    batch = SEGMENT.synthetic_batch(cfg, bs * k, device)
    batch["x"] = batch["x"].view(k, bs, *batch["x"].shape[1:])  # (K, B, C, H, W); y stays (K * B, H, W)
    runm = fastpath.maybe_compile(stacked, opts.compile, opts.compile_mode)

    def loss(m, b):  # the sum over models of each model's mean loss: every model gets its own gradient
        value, n = SEGMENT.loss(lambda x: m(x).flatten(0, 1), b)  # logits (K * B, classes, H, W)
        return k * value, n

    job = Job(f"many/stacked_x{k}", train_step_fn(loss, runm, opt, batch, acc, name="the stacked models"),
              k * bs * steps_per_call(device))
    job.warm_up(device, opts.warmup, opts.target_seconds)
    keep += [stacked, opt, batch]
    return job


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
                       "seconds": opts.many_seconds, "precision": opts.precision, "warmup": opts.warmup,
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
    """The body of one worker process (see the module docstring for the protocol)."""
    spec = json.loads(spec_text)
    torch.set_num_threads(spec["threads"])
    device = torch.device("cpu")
    fastpath.setup_device(device, spec["threads"], spec["tune_allocator"])
    cfg = replace(ExperimentConfig(name="bench"), model=ViNyConfig(**spec["model"]))
    acc = SingleProcess(device, fastpath.resolve_precision(spec["precision"], device))
    model = SEGMENT.build(cfg, seed=0)
    opt = fastpath.make_optimizer(model.parameters(), 1e-4, 0.0, device)
    batch = SEGMENT.synthetic_batch(cfg, spec["batch_size"], device)
    step = train_step_fn(SEGMENT.loss, model, opt, batch, acc, name="a worker")  # one step on a CPU
    for _ in range(max(1, spec["warmup"])):
        step()
    print("ready", flush=True)
    sys.stdin.readline()
    t0, n = time.perf_counter(), 0
    while time.perf_counter() - t0 < spec["seconds"] or n == 0:
        step()
        n += 1
    rate = n * spec["batch_size"] * steps_per_call(device) / (time.perf_counter() - t0)
    print(json.dumps({"images_per_s": rate}), flush=True)
