"""Kill a tiny study grid with SIGKILL at seeded random moments until it finishes; check nothing was lost.

    python tools/fault_injection.py                 # 20 kills (the acceptance run)
    python tools/fault_injection.py --kills 5 -v    # fewer, with one line per kill

What it does
------------
1. Writes tiny synthetic datasets and a tiny grid config (ViNy depth 1, width 32; pre-training
   0/16 images, intermediate off/on, fine-tuning 8/16 images, two seeds) into a work folder.
2. Runs the grid once without interruption (the reference) and times it: the start-up (imports,
   cache build) until the first stage starts, and the work after it.
3. A *round*: a fresh output folder and a fresh cache folder; start ``python -m diminish.run --all``,
   SIGKILL it at a seeded random moment, start it again, and so on; after the round's last kill
   one more run must finish by itself. The moments spread the kills over a run's whole timeline:
   15 % land in the start-up (imports, cache build: a random fraction of the reference start-up);
   75 % wait until the new process has started its first stage and then for the work time
   between two sorted uniform points on the reference run's work span, so successive kills walk
   through pre-training, intermediate, fine-tuning and evaluation; 10 % wait until every stage is
   done and the process holds the output folder's lock, and kill it within 0.3 s, while it tidies
   up and writes results.nc. Kills that find
   the process already gone do not count; rounds repeat until ``--kills`` kills were delivered.
4. After each round: ``results.nc`` must equal the reference exactly (every metric and loss,
   NaN where NaN; ``train_seconds`` is wall time and differs by nature), ``examples.npz`` too; no
   stage may have finished twice (``done`` events in ``executions.jsonl`` and in the stage logs);
   no stray file may remain (see :func:`stray_files`).

Prints exactly one summary line (and per-kill lines with ``-v``)::

    kills survived: 20/20, results identical: yes, duplicate stages: 0, stray files: 0

and exits with status 0 only when every kill was survived, results are identical, no stage ran
twice and no stray file is left. The functions here are also used by ``tests/test_faults.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NAME = "tiny"
# Compared exactly between an interrupted and an uninterrupted run (train_seconds is wall time).
METRICS = ("accuracy", "miou", "iou", "final_loss", "pretrain_loss", "intermediate_accuracy")

GRID = """
name = "tiny"
seeds = {seeds}
synthetic = true
description = "tiny synthetic test grid (tools/fault_injection.py, tests/)"

[model]
depth = 1
dim = 32
heads = 2
dim_head = 16
mlp_dim = 64

[data]
pets_root = "{data}/oxford-iiit-pet"
intel_root = "{data}/intel-image-classification"
imagenet_root = "{data}/imagenet"

[pretrain]
sizes = [0, 16]
epochs = {epochs}
lr = 1e-3
weight_decay = 0.05
gamma = 0.1
milestones = [1]
batch_size = 8

[intermediate]
epochs = {epochs}
lr = 1e-3
weight_decay = 0.0
gamma = 0.1
milestones = [1]
batch_size = 12

[finetune]
sizes = [8, 16]
test_size = 12
epochs = {epochs}
lr = {ft_lr}
weight_decay = 1e-4
gamma = 0.5
milestones = [1]
batch_size = 8
eval_batch_size = 8
"""


# -- setup ------------------------------------------------------------------------------------
def make_data(work: Path) -> Path:
    """Tiny synthetic datasets in the published layouts (written once per work folder)."""
    from diminish.data import write_synthetic

    data = work / "synth"
    if not (data / "done").exists():
        write_synthetic(data, seed=0, pets=40, intel_per_class=4, imagenet=24, intel_test_per_class=2, workers=1)
        (data / "done").write_text("ok")
    return data


def write_config(path: Path, data: Path, seeds: tuple[int, ...] = (0,), epochs: int = 2, ft_lr: float = 2e-3) -> Path:
    """The tiny grid's TOML (also the runner tests' grid) written to ``path``."""
    import numpy as np

    lr = np.format_float_scientific(ft_lr, trim="-", exp_digits=1)  # 2e-3 stays "2e-3" in the text
    path.write_text(GRID.format(data=data, seeds=list(seeds), epochs=epochs, ft_lr=lr))
    return path


def child_env(extra: dict | None = None) -> dict:
    """One CPU thread (bit-identical runs), unbuffered output."""
    env = dict(os.environ)
    env.update({"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
    src = str(REPO / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env


def start(config: Path, out: Path, cache: Path, log: Path, *extra: str, env: dict | None = None,
          fault: str | None = None, **popen) -> subprocess.Popen:
    """``python -m diminish.run --all`` in the background; stdout and stderr go to ``log``; with
    ``fault`` (``ACTION@KIND:EPOCH:STEP``) through ``tools/faulty_run.py``, which injects it.

    Every epoch ends with a checkpoint (``--checkpoint-every 0``, the CPU default, also on a GPU),
    so kills land in checkpoint writes and restarts resume mid-stage."""
    entry = ["-m", "diminish.run"] if fault is None else [str(REPO / "tools" / "faulty_run.py"), fault]
    cmd = [sys.executable, *entry, "--all", "--no-progress", "--config", str(config),
           "--out", str(out), "--cache-dir", str(cache), "--checkpoint-every", "0", *extra]
    log.parent.mkdir(parents=True, exist_ok=True)
    fh = open(log, "ab")  # noqa: SIM115 - closed by the child's exit; kept open for the child
    try:
        return subprocess.Popen(cmd, cwd=REPO, env=child_env(env), stdout=fh, stderr=subprocess.STDOUT, **popen)
    finally:
        fh.close()


# -- checks -----------------------------------------------------------------------------------
def events(root: Path) -> list[dict]:
    p = root / "executions.jsonl"
    if not p.is_file():
        return []
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]


def duplicate_stages(root: Path) -> list[str]:
    """Stages that finished more than once (by executions.jsonl or by their own log.jsonl)."""
    dup = set()
    counts = Counter((e["kind"], e["key"]) for e in events(root) if e["event"] == "done")
    dup |= {f"{k}/{key}" for (k, key), n in counts.items() if n > 1}
    for log in (root / "stages").glob("*/*/log.jsonl"):
        n = sum(json.loads(x)["event"] == "done" for x in log.read_text().splitlines() if x.strip())
        if n > 1:
            dup.add(f"{log.parent.parent.name}/{log.parent.name}")
    return sorted(dup)


def stray_files(out_root: Path, cache_dir: Path | None = None, save_models: bool = False) -> list[str]:
    """Files a finished grid should not have: anything a later run or a reader could take for a
    result, or that would block or confuse one.

    * temporary files and folders (``.tmp-*``), moved-aside claims (``.stale-*``), old cache
      folders (``.old-*``), anywhere under the output or cache folder;
    * ``checkpoint.pt`` (only unfinished stages have one);
    * claims (``claims/*.claim``): nobody is running;
    * stage folders without ``done`` (a finished grid has every stage done);
    * fine-tuned weights (``stages/finetune/*/model.pt``) whose cell is evaluated, unless the run
      kept models (``--save-models``).
    """
    bad = []
    roots = [out_root] + ([cache_dir] if cache_dir is not None and cache_dir.exists() else [])
    for base in roots:
        for p in base.rglob("*"):
            if p.name.startswith((".tmp-", ".stale-", ".old-")) or p.name == "checkpoint.pt":
                bad.append(str(p))
    for exp in (d for d in out_root.iterdir() if d.is_dir()) if out_root.is_dir() else ():
        bad += [str(p) for p in (exp / "claims").glob("*.claim")]
        for d in (exp / "stages").glob("*/*"):
            if d.is_dir() and not (d / "done").is_file():
                bad.append(str(d) + " (no done)")
        if not save_models:
            bad += [str(p) for p in (exp / "stages" / "finetune").glob("*/model.pt")]
    return sorted(set(bad))


def differences(a: Path, b: Path) -> list[str]:
    """Variables (and example arrays) in which two output folders' results differ."""
    import numpy as np

    from diminish.results import read_results

    out = []
    ra, rb = read_results(a / "results.nc"), read_results(b / "results.nc")
    for c in ("pretrain", "intermediate", "finetune", "seed"):
        if not np.array_equal(ra[c].values, rb[c].values):
            out.append(f"coordinate {c}")
    for v in METRICS:
        if not np.array_equal(ra[v].values, rb[v].values, equal_nan=True):
            out.append(v)
    if ra.attrs.get("config_hash") != rb.attrs.get("config_hash"):
        out.append("config_hash")
    ea, eb = a / "examples.npz", b / "examples.npz"
    if ea.is_file() != eb.is_file():
        out.append("examples.npz presence")
    elif ea.is_file():
        xa, xb = np.load(ea), np.load(eb)
        out += [f"examples.npz:{k}" for k in ("image", "truth", "pred", "cell") if not np.array_equal(xa[k], xb[k])]
    return out


def phase(root: Path, pid: int) -> str:
    """Where a process was when killed: before its first lifecycle event, else the kind of the
    stage whose folder changed last (or between stages, when that was a stage finishing)."""
    if not any(e.get("pid") == pid for e in events(root)):
        return "start-up or cache"
    stamped = []
    for f in (root / "stages").glob("*/*/*"):
        try:  # another process may rename a temporary file away between the listing and the stat
            st = f.stat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode):
            stamped.append((st.st_mtime_ns, f))
    newest = max(stamped, key=lambda t: t[0], default=(0, None))[1]
    if newest is None or newest.name == "done":
        return "between stages"
    if newest.name == "log.jsonl":
        lines = [x for x in newest.read_text().splitlines() if x.strip()]
        if lines and json.loads(lines[-1])["event"] == "done":
            return "between stages"
    return newest.parent.parent.name


def finished_stages(root: Path) -> int:
    return len(list(root.glob("stages/*/*/done")))


def holds_root_lock(pid: int, root: Path) -> bool:
    """Whether the process has the experiment folder's lock file open (Linux /proc): it is then
    writing config.toml, or tidying up and assembling results.nc."""
    lock = str(root / ".lock")
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == lock:
                return True
        except OSError:
            continue
    return False


# -- the campaign -----------------------------------------------------------------------------
@dataclass
class Report:
    kills_wanted: int
    kills: int = 0
    survived: int = 0
    rounds: int = 0
    launches: int = 0
    identical: bool = True
    duplicates: list[str] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    phases: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.kills == self.survived == self.kills_wanted and self.identical and not self.duplicates
                and not self.strays and not self.problems)

    def line(self) -> str:
        return (f"kills survived: {self.survived}/{self.kills_wanted}, "
                f"results identical: {'yes' if self.identical and self.rounds else 'no'}, "
                f"duplicate stages: {len(self.duplicates)}, stray files: {len(self.strays)}")


def reference(work: Path, config: Path) -> tuple[Path, float, float]:
    """The uninterrupted run -> (its experiment folder, start-up seconds, work seconds).

    Reused when ``work`` already holds one for the same config text (tests share it)."""
    out, cache = work / "reference", work / "reference-cache"
    stamp = out / "timing.json"
    if stamp.is_file() and (out / NAME / "results.nc").is_file():
        t = json.loads(stamp.read_text())
        if t["config"] == config.read_text():
            return out / NAME, t["startup"], t["span"]
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    t0 = time.perf_counter()
    p = start(config, out, cache, work / "logs" / "reference.log")
    first = None
    while p.poll() is None:
        if first is None and events(out / NAME):
            first = time.perf_counter() - t0
        time.sleep(0.02)
    total = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"reference run failed (exit {p.returncode}); see {work / 'logs' / 'reference.log'}")
    first = first if first is not None else total / 2
    span = max(total - first, 0.5)
    stamp.write_text(json.dumps({"config": config.read_text(), "startup": first, "span": span}))
    return out / NAME, first, span


MODES = ("start-up", "work", "assembly")
MODE_WEIGHTS = (0.15, 0.75, 0.10)


def _alive_after(p: subprocess.Popen, mode: str, delay: float, root: Path, n_stages: int) -> bool:
    """Wait for the kill moment; True when the process is still running then.

    ``start-up``: ``delay`` seconds after launch. ``work``: ``delay`` seconds after the process's
    first lifecycle event. ``assembly``: ``delay`` seconds after every stage of the grid is done
    and the process holds the folder's lock (it is tidying and writing results.nc, examples.npz).
    """
    if mode == "work":
        while p.poll() is None and not any(e.get("pid") == p.pid for e in events(root)):
            time.sleep(0.02)
    elif mode == "assembly":
        while p.poll() is None and not (finished_stages(root) >= n_stages and holds_root_lock(p.pid, root)):
            time.sleep(0.005)
    try:
        p.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        return True
    return False


def campaign(work: Path, config: Path, kills: int, seed: int = 0, verbose: bool = False,
             max_launches: int | None = None) -> Report:
    """Kill runs of ``config`` until ``kills`` kills were delivered and every round finished."""
    t_all = time.perf_counter()
    rng = random.Random(seed)
    ref, startup, span = reference(work, config)
    if verbose:
        print(f"reference run: start-up {startup:.1f} s, work {span:.1f} s", flush=True)
    rep = Report(kills_wanted=kills)
    n_stages = finished_stages(ref)
    max_launches = max_launches or 10 * kills + 20
    while rep.kills < kills:
        rep.rounds += 1
        out, cache = work / f"round{rep.rounds}", work / f"round{rep.rounds}-cache"
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
        left = kills - rep.kills
        points = sorted(rng.random() for _ in range(left))
        gaps = [b - a for a, b in zip([0.0] + points, points)]
        round_kills, finished = 0, False
        while not finished:
            if rep.launches >= max_launches:
                rep.problems.append(f"gave up after {rep.launches} launches")
                break
            rep.launches += 1
            log = work / "logs" / f"round{rep.rounds}-{rep.launches:03d}.log"
            t0 = time.perf_counter()
            p = start(config, out, cache, log)
            if round_kills < len(gaps):
                mode = rng.choices(MODES, MODE_WEIGHTS)[0]
                delay = {"start-up": startup * rng.uniform(0.2, 1.0), "work": span * gaps[round_kills],
                         "assembly": rng.uniform(0.0, 0.3)}[mode]
                if _alive_after(p, mode, delay, out / NAME, n_stages):
                    done = finished_stages(out / NAME) >= n_stages
                    assembling = done and holds_root_lock(p.pid, out / NAME)
                    where = "assembling results" if assembling else phase(out / NAME, p.pid)
                    p.send_signal(signal.SIGKILL)
                    p.wait()
                    round_kills += 1
                    rep.kills += 1
                    rep.phases[where] += 1
                    if verbose:
                        print(f"kill {rep.kills:>3}: {time.perf_counter() - t0:5.2f} s after launch, in {where}",
                              flush=True)
                    continue
            else:
                p.wait()
            if p.returncode != 0:
                rep.problems.append(f"round {rep.rounds}: a run exited with status {p.returncode} by itself; see {log}")
                break
            finished = True
        if not finished:
            break
        root = out / NAME
        diff = differences(root, ref)
        dup = duplicate_stages(root)
        stray = stray_files(out, cache)
        rep.identical &= not diff
        rep.duplicates += dup
        rep.strays += stray
        if not diff and not dup:
            rep.survived += round_kills
        if verbose:
            print(f"round {rep.rounds}: {round_kills} kills, differences {diff or 'none'}, duplicates {dup or 'none'}, "
                  f"stray {stray or 'none'}", flush=True)
    rep.seconds = time.perf_counter() - t_all
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20, help="SIGKILLs to deliver (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default: %(default)s)")
    ap.add_argument("--seeds", type=int, default=2, help="training seeds in the grid (default: %(default)s)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of every stage (default: %(default)s)")
    ap.add_argument("--work", type=Path, help="work folder (default: a temporary folder, removed afterwards)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    ap.add_argument("-v", "--verbose", action="store_true", help="one line per kill and per round")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO / "src"))
    work = args.work or Path(tempfile.mkdtemp(prefix="diminish-faults-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        data = make_data(work)
        config = write_config(work / "tiny.toml", data, tuple(range(args.seeds)), args.epochs)
        rep = campaign(work, config, args.kills, args.seed, args.verbose)
        if args.verbose:
            print(f"{rep.rounds} round(s), {rep.launches} launches, {rep.seconds:.0f} s; kills landed in: "
                  + ", ".join(f"{k} {n}" for k, n in sorted(rep.phases.items())), flush=True)
            for msg in rep.problems + [f"duplicate: {d}" for d in rep.duplicates] + [f"stray: {s}" for s in rep.strays]:
                print(msg, flush=True)
        print(rep.line(), flush=True)
        return 0 if rep.ok else 1
    finally:
        if args.work is None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif args.verbose:
            print(f"work folder: {work}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
