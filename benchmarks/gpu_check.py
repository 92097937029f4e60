"""The GPU check of issue 23, correctness first: what only a GPU can show, in at most 300 s of step
limits (imports included, each step a process of its own). ``benchmarks/gpu_check.sh`` runs it;
``--device cpu`` is its dry run (CI), the same steps on the CPU on smaller data.

Steps, in order (limit in seconds on a GPU):

1. ``smoke`` (20): fused AdamW against foreach; scaled-dot-product attention in bf16 through each
   backend (flash, efficient, cudnn, math) against an fp32 reference; a bf16 ViNy step; the
   loss window on the device.
2. ``runner`` (50): the runner on synthetic data large enough that epochs span several 25-step
   loss windows, bf16, with ``torch.cuda.set_sync_debug_mode`` counting every synchronising call
   (by source line of the package) against the number of training steps.
3. ``compile`` (85): the same grid (>= 9 stages) with ``--compile`` after Accelerate's bf16
   ``prepare``; dynamo's recompiles counted (``torch._logging`` ``recompiles``) and bounded.
4. ``jobs2`` (35): ``--jobs 2`` on the one GPU (both workers train; records against step 2's).
5. ``resume`` (40): SIGTERM in a fine-tuning epoch, then resume: records against step 2's.
6. ``cuda_tests`` (35): the suite's CUDA-only tests (``tests/test_gpu_path.py``, ``test_data_transforms.py``).
7. ``bench`` (35): ``python -m diminish.bench`` in bf16 at the configured batches.

Every step writes ``<step>.log``; ``gpu_check.json`` under ``--out`` is rewritten after every step
(status ``ok``, ``failed``, ``timeout``, ``differs`` or ``skipped`` with what it measured), so a
step that hangs or fails still leaves the others' numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMITS = {"smoke": 20, "runner": 50, "compile": 85, "jobs2": 35, "resume": 40, "cuda_tests": 35, "bench": 35}
CPU_LIMITS = {"smoke": 60, "runner": 120, "compile": 300, "jobs2": 120, "resume": 150, "cuda_tests": 90, "bench": 120}
CUDA_TESTS = ["tests/test_gpu_path.py", "tests/test_data_transforms.py"]  # their CUDA tests and the CPU ones beside
WALL = ("train_seconds", "device")

GRID = """
name = "gpucheck"
seeds = [0]
synthetic = true
description = "benchmarks/gpu_check.py grid: epochs span several loss windows"

[model]
depth = {depth}
dim = {dim}
heads = 2
dim_head = {dim_head}
mlp_dim = {mlp}

[data]
pets_root = "{data}/oxford-iiit-pet"
intel_root = "{data}/intel-image-classification"
imagenet_root = "{data}/imagenet"

[pretrain]
sizes = [0, {pretrain}]
epochs = 2
lr = 1e-3
weight_decay = 0.05
gamma = 0.1
milestones = [1]
batch_size = 8

[intermediate]
epochs = 2
lr = 1e-3
weight_decay = 0.0
gamma = 0.1
milestones = [1]
batch_size = 8

[finetune]
sizes = {finetune}
test_size = {test}
epochs = 2
lr = 2e-3
weight_decay = 1e-4
gamma = 0.5
milestones = [1]
batch_size = 8
eval_batch_size = 64
"""
# GPU: pre-training 75 steps/epoch, intermediate 38, fine-tuning 25 and 75: 16 stages, >= 3 windows
SIZES = {"cuda": dict(pets=700, intel=50, imagenet=600, pretrain=600, finetune=[200, 600], test=64, depth=2, dim=64,
                      dim_head=32, mlp=128),
         "cpu": dict(pets=40, intel=4, imagenet=24, pretrain=16, finetune=[8], test=12, depth=1, dim=32, dim_head=16,
                     mlp=64)}


# -- the steps, each run in a process of its own (``--step NAME``) -----------------------------
def step_smoke(dev, work: Path) -> dict:
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from diminish.config import ViNyConfig
    from diminish.core import fastpath
    from diminish.core.loop import LossWindow, SingleProcess
    from diminish.core.model import Segmenter, ViNy

    out: dict = {"torch": torch.__version__, "cuda": torch.version.cuda,
                 "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"}
    fastpath.setup_device(dev)
    out["tf32"] = str(getattr(torch.backends.cuda.matmul, "fp32_precision", "legacy"))
    weights = {}
    for kernel in ("fused", "foreach"):
        torch.manual_seed(0)
        p = torch.nn.Parameter(torch.randn(4096, device=dev))
        opt = fastpath.make_optimizer([p], 1e-2, 0.01, dev, kernel)
        for _ in range(5):
            opt.zero_grad()
            (p.sin() ** 2).sum().backward()
            opt.step()
        weights[kernel] = p.detach()
    out["fused_adamw_max_diff"] = float((weights["fused"] - weights["foreach"]).abs().max())
    g = torch.Generator(device="cpu").manual_seed(1)
    q, k, v = (torch.randn(8, 2, 65, 32, generator=g).to(dev) for _ in range(3))
    ref = F.scaled_dot_product_attention(q.double(), k.double(), v.double()).float()
    sdpa = {}
    for name in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION", "MATH"):
        try:
            with sdpa_kernel([getattr(SDPBackend, name)]):
                got = F.scaled_dot_product_attention(q.bfloat16(), k.bfloat16(), v.bfloat16())
            sdpa[name.lower()] = round(float((got.float() - ref).abs().max()), 5)
        except Exception as e:  # noqa: BLE001 - a backend this device or build lacks is a finding
            sdpa[name.lower()] = f"unavailable: {type(e).__name__}: {str(e).splitlines()[0][:120]}"
    out["sdpa_bf16_max_abs_err"] = sdpa
    torch.manual_seed(0)
    model = Segmenter(ViNy(ViNyConfig(image_size=128, depth=2, dim=64, heads=2, dim_head=32, mlp_dim=128))).to(dev)
    opt = fastpath.make_optimizer(model.parameters(), 1e-3, 0.0, dev)
    x = torch.randn(16, 3, 128, 128, device=dev)
    y = torch.randint(0, 3, (16, 128, 128), device=dev)
    with fastpath.autocast(dev, "bf16"):
        loss = F.cross_entropy(model(x).float(), y)
    loss.backward()
    opt.step()
    window = LossWindow(4)
    for s in range(3):
        window.add(0, s, loss.detach() + s, 16)
    last = window.check(SingleProcess(dev), "smoke")
    out["viny_bf16_loss"] = float(loss)
    out["loss_window_ok"] = abs(last - (float(loss) + 2)) < 1e-4 and window.totals[0][1] == 48
    ok = out["fused_adamw_max_diff"] < 1e-4 and out["loss_window_ok"] and isinstance(sdpa["math"], float)
    return {"status": "ok" if ok else "failed", **out}


def _grid(device: str, work: Path) -> tuple[Path, list[str]]:
    from diminish.data import write_synthetic

    s = SIZES[device]
    data = work / "synth"
    if not (data / "done").exists():
        write_synthetic(data, seed=0, pets=s["pets"], intel_per_class=s["intel"], imagenet=s["imagenet"],
                        intel_test_per_class=2, workers=min(8, os.cpu_count() or 1))
        (data / "done").write_text("ok")
    cfg = work / "gpucheck.toml"
    cfg.write_text(GRID.format(data=data, **{k: v for k, v in s.items() if k not in ("pets", "intel", "imagenet")}))
    flags = ["--config", str(cfg), "--cache-dir", str(work / "cache"), "--no-progress", "--no-assemble"]
    if device == "cuda":
        flags += ["--mixed-precision", "bf16"]
    return cfg, flags


def records(out: Path) -> dict:
    got = {}
    for f in sorted((out / "gpucheck" / "stages").glob("*/*/record.json")):
        rec = json.loads(f.read_text())
        got[f"{f.parent.parent.name}/{f.parent.name}"] = {k: v for k, v in rec.items() if k not in WALL}
    return got


def _rates(out: Path) -> dict:
    """Median images/s of each stage kind's epochs (the stage logs)."""
    rates: dict = {}
    for f in sorted((out / "gpucheck" / "stages").glob("*/*/log.jsonl")):
        ev = [json.loads(x) for x in f.read_text().splitlines()]
        rates.setdefault(f.parent.parent.name, []).extend(
            e["images_per_s"] for e in ev if e["event"] == "epoch" and e.get("images_per_s"))
    return {k: round(sorted(v)[len(v) // 2]) for k, v in rates.items() if v}


def _plan_steps(cfg: Path, device: str) -> int:
    """Training steps of the grid (epochs x batches of every trained stage)."""
    import math

    from diminish.config import load
    from diminish.runner.plan import build_plan

    c = load(str(cfg), warn=False)
    total = 0
    for st in build_plan(c).stages():
        n = {"pretrain": st.pretrain, "finetune": st.finetune, "intermediate": 6 * SIZES[device]["intel"]}.get(st.kind)
        sc = getattr(c, st.kind, None) if st.kind in ("pretrain", "intermediate", "finetune") else None
        if sc is not None and n:
            total += sc.epochs * math.ceil(n / sc.batch_size)
    return total


def _run_counting_syncs(dev, args: list[str]) -> dict:
    """cli.main(args) in this process; on CUDA every synchronising call is counted by the package
    line that made it (``torch.cuda.set_sync_debug_mode('warn')``)."""
    import traceback
    import warnings

    import torch

    from diminish.runner import cli

    by_line: dict[str, int] = {}
    by_place = {"window": 0, "step": 0, "other": 0}
    real_show = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if "synchroniz" not in str(message):
            return real_show(message, category, filename, lineno, file, line)
        frames = [f for f in traceback.extract_stack()[:-1] if "/diminish/" in f.filename]
        names = {(Path(f.filename).name, f.name) for f in frames}
        if names & {("loop.py", "check"), ("loop.py", "sync"), ("loop.py", "agree")}:
            place = "window"  # the window's one read, and the stop flag's collective beside it
        elif ("loop.py", "train_one_epoch") in names:
            place = "step"  # between windows: forward, backward, optimiser step, batch delivery
        else:
            place = "other"  # set-up, epoch ends with a checkpoint, evaluation, saving
        by_place[place] += 1
        key = f"{place} {Path(frames[-1].filename).name}:{frames[-1].lineno} {frames[-1].name}" if frames else place
        by_line[key] = by_line.get(key, 0) + 1

    warnings.showwarning = show
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        if dev.type == "cuda":
            torch.cuda.set_sync_debug_mode("warn")
        t0 = time.perf_counter()
        try:
            code = cli.main(args)
        finally:
            if dev.type == "cuda":
                torch.cuda.set_sync_debug_mode("default")
    top = dict(sorted(by_line.items(), key=lambda kv: -kv[1])[:25])
    return {"rc": code, "wall_s": round(time.perf_counter() - t0, 1), "syncs": sum(by_line.values()),
            "syncs_by_place": by_place, "syncs_by_line": top, "sync_debug": dev.type == "cuda"}


def step_runner(dev, work: Path) -> dict:
    cfg, flags = _grid(dev.type, work)
    got = _run_counting_syncs(dev, ["--all", "--out", str(work / "runner"), *flags])
    steps = _plan_steps(cfg, dev.type)
    got.update(median_images_per_s=_rates(work / "runner"), steps=steps, stages=len(records(work / "runner")))
    got["window_syncs_per_step"] = round(got["syncs_by_place"]["window"] / max(steps, 1), 3)
    ok = got["rc"] == 0 and got["syncs_by_place"]["step"] == 0  # none between windows
    return {"status": "ok" if ok else "failed", **got}


def step_compile(dev, work: Path) -> dict:
    if dev.type != "cuda":
        return {"status": "skipped", "why": "torch.compile on a CPU costs ~40 s per model kind cold"}
    import logging

    import torch
    import torch._dynamo.utils as dynamo_utils

    cfg, flags = _grid(dev.type, work)
    recompiles: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record):
            msg = record.getMessage()
            if "ecompil" in msg:
                recompiles.append(msg.splitlines()[0][:200])

    torch._logging.set_logs(recompiles=True)
    for name in ("torch._dynamo", "torch._dynamo.guards", "torch._dynamo.convert_frame"):
        logging.getLogger(name).addHandler(Catch())
    got = _run_counting_syncs(dev, ["--all", "--out", str(work / "compiled"), "--compile", *flags])
    stages = len(records(work / "compiled"))
    got.update(stages=stages, recompiles=len(recompiles), recompile_reasons=recompiles[:12],
               dynamo_stats={k: dict(v) for k, v in dynamo_utils.counters.items() if k in ("stats", "frames")})
    bound = 6  # 3 model classes compiled once each; a last, smaller batch may add one dynamic graph each
    ok = got["rc"] == 0 and stages >= 9 and len(recompiles) <= bound
    return {"status": "ok" if ok else "failed", "recompile_bound": bound, **got}


def _differences(a: dict, b: dict) -> dict:
    diffs = {}
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            fa, fb = a.get(k) or {}, b.get(k) or {}
            diffs[k] = {f: [fa.get(f), fb.get(f)] for f in ("final_loss", "miou", "accuracy") if fa.get(f) != fb.get(f)}
    return diffs


def step_jobs2(dev, work: Path) -> dict:
    cfg, flags = _grid(dev.type, work)
    out = work / "jobs2"
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "diminish.run", "--all", "--out", str(out), "--jobs", "2",
                        "--poll", "0.2", *flags], cwd=REPO, capture_output=True, text=True)
    print(p.stdout[-3000:], p.stderr[-3000:])
    log = out / "gpucheck" / "executions.jsonl"
    ev = [json.loads(x) for x in log.read_text().splitlines()] if p.returncode == 0 and log.is_file() else []
    pids = {e["pid"] for e in ev if e["event"] == "done"}
    diffs = _differences(records(out), records(work / "runner")) if (work / "runner").is_dir() else None
    status = "failed" if p.returncode != 0 or len(pids) != 2 else ("differs" if diffs else "ok")
    return {"status": status, "rc": p.returncode, "wall_s": round(time.perf_counter() - t0, 1),
            "training_workers": len(pids), "identical_to_runner": diffs == {}, "differences": diffs}


def step_resume(dev, work: Path) -> dict:
    cfg, flags = _grid(dev.type, work)
    out = work / "resume"
    run = [sys.executable, str(REPO / "tools" / "faulty_run.py"), "term@finetune:1:0", "--all", "--out", str(out),
           *flags]
    t0 = time.perf_counter()
    first = subprocess.run(run, cwd=REPO, capture_output=True, text=True)
    second = subprocess.run([sys.executable, "-m", "diminish.run", "--all", "--out", str(out), *flags], cwd=REPO,
                            capture_output=True, text=True)
    print(first.stderr[-2000:], second.stderr[-2000:])
    diffs = _differences(records(out), records(work / "runner")) if (work / "runner").is_dir() else None
    ok = first.returncode == 143 and second.returncode == 0
    return {"status": "failed" if not ok else ("differs" if diffs else "ok"), "rc_term": first.returncode,
            "rc_resume": second.returncode, "wall_s": round(time.perf_counter() - t0, 1),
            "identical_to_runner": diffs == {}, "differences": diffs}


def step_cuda_tests(dev, work: Path) -> dict:
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *CUDA_TESTS],
                       cwd=REPO, capture_output=True, text=True)
    print(p.stdout[-4000:], p.stderr[-2000:])
    summary = [x for x in p.stdout.splitlines() if " passed" in x or " failed" in x or " skipped" in x or "error" in x]
    return {"status": "ok" if p.returncode == 0 else "failed", "rc": p.returncode,
            "summary": summary[-1] if summary else p.stdout[-300:]}


def step_bench(dev, work: Path) -> dict:
    out = work / "bench.json"
    args = ["--device", dev.type, "--out-file", str(out), "--no-reference"]
    args += (["--mixed-precision", "bf16", "--repeats", "2", "--target-seconds", "0.3"] if dev.type == "cuda"
             else ["--quick", "--no-data", "--no-eval", "--stages", "finetune"])
    p = subprocess.run([sys.executable, "-m", "diminish.bench", *args], cwd=REPO, capture_output=True, text=True)
    print(p.stdout[-4000:], p.stderr[-2000:])
    got = json.loads(out.read_text()) if out.is_file() else None
    return {"status": "ok" if p.returncode == 0 else "failed", "rc": p.returncode, "table": p.stdout[-2500:],
            "bench": got}


STEPS = {"smoke": step_smoke, "runner": step_runner, "compile": step_compile, "jobs2": step_jobs2,
         "resume": step_resume, "cuda_tests": step_cuda_tests, "bench": step_bench}


def run_step(name: str, device: str, work: Path, result: Path) -> int:
    import torch

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: torch sees no CUDA device")
    got = STEPS[name](dev, work)
    result.write_text(json.dumps(got, indent=1, default=str))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu_check_out"))
    p.add_argument("--work", type=Path, default=None, help="scratch folder (default: a fresh one under /tmp)")
    p.add_argument("--only", default=None, help="comma-separated steps")
    p.add_argument("--step", default=None, help=argparse.SUPPRESS)  # one step, in this process
    a = p.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    if a.step:
        return run_step(a.step, a.device, a.work, a.out / f"{a.step}.json")
    import tempfile

    work = a.work or Path(tempfile.mkdtemp(prefix="gpu_check-"))
    limits = LIMITS if a.device == "cuda" else CPU_LIMITS
    names = a.only.split(",") if a.only else list(STEPS)
    report = {"device": a.device, "limits_s": {n: limits[n] for n in names},
              "limit_total_s": sum(limits[n] for n in names), "steps": {}}
    t_all = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        log = a.out / f"{name}.log"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--device", a.device, "--out", str(a.out),
               "--work", str(work), "--step", name]
        env = {**os.environ, **({"OMP_NUM_THREADS": "1"} if a.device == "cpu" else {})}  # CPU: bit-identical steps
        with open(log, "w") as fh:
            try:
                rc = subprocess.run(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, timeout=limits[name],
                                    env=env).returncode
                status = None
            except subprocess.TimeoutExpired:
                rc, status = None, "timeout"
        got: dict = {}
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            got = json.loads((a.out / f"{name}.json").read_text())
            (a.out / f"{name}.json").unlink()
        if status is None:
            status = got.get("status", "failed") if rc == 0 else "failed"
        if status in ("failed", "timeout"):
            got["log_tail"] = log.read_text(errors="replace")[-1500:]
        report["steps"][name] = {**got, "status": status, "rc": got.get("rc", rc),
                                 "seconds": round(time.perf_counter() - t0, 1)}
        report["seconds"] = round(time.perf_counter() - t_all, 1)
        (a.out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
        print(f"{name:<11} {status:<8} {time.perf_counter() - t0:6.1f} s (limit {limits[name]} s)", flush=True)
    bad = [n for n, s in report["steps"].items() if s["status"] in ("failed", "timeout")]
    print(f"gpu_check: {len(names) - len(bad)}/{len(names)} steps passed or skipped in {report['seconds']} s; "
          f"{a.out / 'gpu_check.json'}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
