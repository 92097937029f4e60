"""The study's stages, their keys, the on-disk store of their outputs, and claims.

Graph (``P`` pre-training images, ``I`` intermediate on/off, ``F`` fine-tuning images)::

    init(seed) ──► pretrain(P, seed) ──► intermediate(P, seed) ──► finetune(P, I, F, seed) ──► evaluate
     (P = 0: random initialisation from the seed; no stage runs)      (I = False: skip the middle)

Keys: every stage's key is a hash of the configuration slice that determines it plus its upstream
key (:func:`build_plan`), so a finished stage is reused by any config that agrees on that slice,
and changing a fine-tuning setting leaves pre-training untouched. Data roots enter the keys as
written in the config; the cache content hashes are recorded in every stage's record.

Store (one folder per stage, under ``<out>/<name>/stages/<kind>/<key>/``)::

    spec.json        what the key hashes (human-readable)
    checkpoint.pt    latest resumable state (model, optimiser, scheduler, epoch, step, RNG); removed when done
    model.pt         final weights (pretrain/intermediate: kept, needed downstream; finetune: removed
                     after evaluation unless --save-models)
    record.json      the stage's results (losses, accuracies, seconds, cache hash)
    log.jsonl        one JSON line per event (start, resume, epoch, done, interrupted, failed)
    failed.json      the last failure, if any (removed by a later success)
    done             written last: only its presence makes the stage count as finished

Every file is written to a temporary name in the same folder and renamed into place.

Claims (``<out>/<name>/claims/<unit>.claim``) are created with ``O_CREAT | O_EXCL`` and hold the
owner's pid, host and start time; a claim whose process is gone (same host) or whose file has not
been touched for ``claim_timeout`` seconds (the owner touches it while it works) is stale and may
be taken over.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import ExperimentConfig, StageConfig, stable_hash

KINDS = ("pretrain", "intermediate", "finetune", "evaluate")
INTEL_TRAIN_IMAGES = 14_034  # the published archive's seg_train; used by --dry-run when the folder is absent


# -- the plan ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    kind: str
    key: str
    pretrain: int
    seed: int
    intermediate: bool = False
    finetune: int = 0
    upstream: Stage | None = field(default=None, compare=False, repr=False)  # None: random init
    spec: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    @property
    def label(self) -> str:
        parts = [self.kind, f"P={self.pretrain}"]
        if self.kind in ("finetune", "evaluate"):
            parts += [f"I={int(self.intermediate)}", f"F={self.finetune}"]
        return " ".join(parts + [f"seed={self.seed}"])

    @property
    def cell(self) -> tuple[int, bool, int, int]:
        return (self.pretrain, self.intermediate, self.finetune, self.seed)


@dataclass
class Plan:
    cfg: ExperimentConfig
    pretrain: dict[tuple[int, int], Stage]
    intermediate: dict[tuple[int, int], Stage]
    finetune: dict[tuple[int, bool, int, int], Stage]
    evaluate: dict[tuple[int, bool, int, int], Stage]
    examples_cell: tuple[int, bool, int, int]

    def stages(self, kind: str | None = None) -> list[Stage]:
        kinds = KINDS if kind is None else (kind,)
        return [s for k in kinds for s in getattr(self, k).values()]


def _train_slice(sc: StageConfig) -> dict[str, Any]:
    return {f.name: getattr(sc, f.name) for f in dataclasses.fields(StageConfig)}


def build_plan(cfg: ExperimentConfig) -> Plan:
    """All stages of the grid with their keys (no data needed)."""
    d = cfg.to_dict()
    pre, inter, fine, ev = {}, {}, {}, {}

    def data_slice(name: str) -> dict:
        return {"root": d["data"][f"{name}_root"], "limit": cfg.data.limit, "skip_bad": cfg.data.skip_bad}

    def make(kind, spec, **kw) -> Stage:
        spec = {"kind": kind, **spec}
        return Stage(kind, stable_hash(spec), spec=spec, **kw)

    for seed in cfg.seeds:
        init_key = stable_hash({"kind": "init", "model": d["model"], "seed": seed})
        for p in cfg.pretrain.sizes:
            up: Stage | None = None
            if p > 0:
                up = pre[p, seed] = make("pretrain", {
                    "upstream": init_key, "seed": seed, "size": p, "data_seed": cfg.pretrain.data_seed,
                    "simmim": d["simmim"], "train": _train_slice(cfg.pretrain), "data": data_slice("imagenet"),
                }, pretrain=p, seed=seed, upstream=None)
            up_key = up.key if up else init_key
            if True in cfg.intermediate.conditions:
                inter[p, seed] = make("intermediate", {
                    "upstream": up_key, "seed": seed, "train": _train_slice(cfg.intermediate),
                    "num_classes": cfg.intermediate.num_classes,
                    "evaluate_test": cfg.intermediate.evaluate_test, "data": data_slice("intel"),
                }, pretrain=p, seed=seed, upstream=up)
            for i in sorted(cfg.intermediate.conditions):
                src = inter[p, seed] if i else up
                for f in cfg.finetune.sizes:
                    ft = fine[p, i, f, seed] = make("finetune", {
                        "upstream": src.key if src else init_key, "seed": seed, "size": f,
                        "test_size": cfg.finetune.test_size, "split_seed": cfg.finetune.split_seed,
                        "train": _train_slice(cfg.finetune), "data": data_slice("pets"),
                    }, pretrain=p, seed=seed, intermediate=i, finetune=f, upstream=src)
                    ev[p, i, f, seed] = make("evaluate", {"upstream": ft.key}, pretrain=p, seed=seed,
                                             intermediate=i, finetune=f, upstream=ft)
    i0 = False if False in cfg.intermediate.conditions else True
    examples = (max(cfg.pretrain.sizes), i0, max(cfg.finetune.sizes), cfg.seeds[0])
    return Plan(cfg, pre, inter, fine, ev, examples)


def image_steps(stage: Stage, cfg: ExperimentConfig, n_intel: int) -> int:
    """Training images processed by a stage (forward passes for ``evaluate``)."""
    if stage.kind == "pretrain":
        return stage.pretrain * cfg.pretrain.epochs
    if stage.kind == "intermediate":
        return n_intel * cfg.intermediate.epochs
    if stage.kind == "finetune":
        return stage.finetune * cfg.finetune.epochs
    return cfg.finetune.test_size


# -- atomic files -----------------------------------------------------------------------------
def _tmp_name(path: Path) -> Path:
    return path.with_name(f".tmp-{path.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def atomic_write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as e:
        if e.filename is None:  # a failed write (disk full, file too large) names no file: name it
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
    return path


def atomic_write_json(path: Path, obj: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=1, sort_keys=True, default=str) + "\n").encode())


def atomic_torch_save(path: Path, obj: Any) -> Path:
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_save_npz(path: Path, **arrays) -> Path:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


# -- the store --------------------------------------------------------------------------------
HOST = socket.gethostname()


class Store:
    """Files of one experiment: ``<out_dir>/<name>/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def dir(self, stage: Stage) -> Path:
        return self.root / "stages" / stage.kind / stage.key

    def is_done(self, stage: Stage) -> bool:
        return (self.dir(stage) / "done").is_file()

    def record(self, stage: Stage) -> dict:
        return read_json(self.dir(stage) / "record.json")

    def failure(self, stage: Stage) -> dict | None:
        p = self.dir(stage) / "failed.json"
        return read_json(p) if p.is_file() else None

    def begin(self, stage: Stage) -> Path:
        """Prepare a stage's folder for (re)running: spec written, stale temporary files removed."""
        d = self.dir(stage)
        d.mkdir(parents=True, exist_ok=True)
        for tmp in d.glob(".tmp-*"):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        if not (d / "spec.json").is_file():
            atomic_write_json(d / "spec.json", {"label": stage.label, **stage.spec})
        return d

    def finish(self, stage: Stage, record: dict) -> None:
        d = self.dir(stage)
        atomic_write_json(d / "record.json", {"label": stage.label, "key": stage.key, **record})
        atomic_write_json(d / "done", {"time": _now(), "host": HOST, "pid": os.getpid()})
        for name in ("checkpoint.pt", "failed.json"):
            with contextlib.suppress(FileNotFoundError):
                (d / name).unlink()
        self.log(stage, "done")

    def fail(self, stage: Stage, error: BaseException) -> None:
        d = self.dir(stage)
        d.mkdir(parents=True, exist_ok=True)
        msg = f"{type(error).__name__}: {error}"
        atomic_write_json(d / "failed.json", {"error": msg, "time": _now(), "host": HOST, "pid": os.getpid()})
        self.log(stage, "failed", error=msg)

    def log(self, stage: Stage, event: str, **fields) -> None:
        """Append to the stage's log.jsonl and, for lifecycle events, to executions.jsonl."""
        line = {"time": _now(), "event": event, **fields}
        _append(self.dir(stage) / "log.jsonl", line)
        if event in ("start", "resume", "done", "failed", "interrupted"):
            _append(self.root / "executions.jsonl", {
                **line, "kind": stage.kind, "key": stage.key, "label": stage.label,
                "pid": os.getpid(), "host": HOST})

    def executions(self) -> list[dict]:
        p = self.root / "executions.jsonl"
        if not p.is_file():
            return []
        return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]

    # -- claims ---------------------------------------------------------------------------
    def claim_path(self, stage: Stage) -> Path:
        return self.root / "claims" / f"{stage.kind}-{stage.key}.claim"

    def try_claim(self, stage: Stage, timeout: float, shard: str = "") -> bool:
        path = self.claim_path(stage)
        path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(2):
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if not self._take_stale(path, timeout):
                    return False
                continue
            with os.fdopen(fd, "w") as fh:
                json.dump({"pid": os.getpid(), "host": HOST, "time": time.time(), "shard": shard}, fh)
            return True
        return False

    def claim_state(self, stage: Stage, timeout: float) -> str | None:
        """None (no claim), 'live' or 'stale'."""
        path = self.claim_path(stage)
        if not path.exists():
            return None
        return "stale" if _claim_is_stale(path, timeout) else "live"

    def release(self, stage: Stage) -> None:
        path = self.claim_path(stage)
        info = _read_claim(path)
        if info is not None and info.get("pid") == os.getpid() and info.get("host") == HOST:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def heartbeat(self, stage: Stage) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.claim_path(stage))

    def _take_stale(self, path: Path, timeout: float) -> bool:
        """Move a stale claim out of the way; False when it is live or someone else took it."""
        before = path.read_bytes() if path.exists() else None
        if before is None:
            return True
        if not _claim_is_stale(path, timeout):
            return False
        grave = path.with_name(f".stale-{path.name}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        try:
            os.rename(path, grave)
        except FileNotFoundError:
            return True  # another process removed it first; try to create ours
        if grave.read_bytes() != before:  # we moved a fresh claim taken in the meantime: put it back
            with contextlib.suppress(FileExistsError):
                os.link(grave, path)
            grave.unlink()
            return False
        grave.unlink()
        return True


def _read_claim(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None


def _claim_is_stale(path: Path, timeout: float) -> bool:
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    info = _read_claim(path)
    if info is None:  # owner died between creating and writing the claim
        return age > 30
    if info.get("host") == HOST and not _pid_alive(int(info.get("pid", -1))):
        return True
    return age > timeout


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (killed, not yet reaped) is dead for our purposes
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _append(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(obj, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# -- running stages ---------------------------------------------------------------------------
class StageInterrupted(Exception):
    """A stop was requested; the stage saved its progress."""

    def __init__(self, stage: Stage, epoch: int, step: int, where: Path) -> None:
        super().__init__(f"interrupted in {stage.label} at epoch {epoch}, step {step}; "
                         f"progress saved in {where}")
        self.stage = stage


class DeviceData:
    """A cache's arrays, indexed by batch and delivered on the device as tensors.

    On a CUDA device a cache that fits ``max_bytes`` is copied there once as uint8 and indexed in
    place; otherwise batches are gathered from the memory map and transferred.
    """

    def __init__(self, cache, device, max_bytes: int = 12 << 30) -> None:
        import numpy as np
        import torch

        self.cache = cache
        self.device = device
        self.on_device = device.type == "cuda" and cache.images.nbytes <= max_bytes
        self._t: dict[str, torch.Tensor] = {}
        if self.on_device:
            for name in ("images", "masks", "labels"):
                arr = getattr(cache, name)
                if arr is not None:
                    self._t[name] = torch.from_numpy(np.ascontiguousarray(arr)).to(device)

    def __len__(self) -> int:
        return len(self.cache)

    def take(self, idx) -> dict:
        import numpy as np
        import torch

        idx = np.sort(np.asarray(idx, dtype=np.int64))
        out = {"n": len(idx)}
        if self.on_device:
            t = torch.from_numpy(idx).to(self.device)
            out.update({k: v[t] for k, v in self._t.items()})
            return out
        for name in ("images", "masks", "labels"):
            arr = getattr(self.cache, name)
            if arr is not None:
                out[name] = torch.from_numpy(np.ascontiguousarray(arr[idx])).to(self.device, non_blocking=True)
        return out


class Batches:
    """A batch source for the engine: ``batches[step]`` indexes, moves and transforms one batch.

    The generator handed to ``make`` is re-seeded from ``(*seed_parts, step)`` at every step, so
    a step's augmentation and masks depend on nothing but its position.
    """

    def __init__(self, data: DeviceData, index_batches: list, make, seed_parts: tuple | None = None) -> None:
        import torch

        self.data, self.index_batches, self.make, self.seed_parts = data, index_batches, make, seed_parts
        self.gen = torch.Generator(device=data.device) if seed_parts is not None else None

    def __len__(self) -> int:
        return len(self.index_batches)

    def __getitem__(self, step: int):
        from .engine import derive_seed

        raw = self.data.take(self.index_batches[step])
        if self.gen is not None:
            self.gen.manual_seed(derive_seed(*self.seed_parts, step))
        return self.make(raw, self.gen)


class Context:
    """What all stages of one process share: config, switches, accelerator, store, caches."""

    def __init__(self, cfg: ExperimentConfig, rt, store: Store, accelerator, stop=None, fault=None,
                 claim_timeout: float = 1800.0) -> None:
        self.cfg, self.rt, self.store, self.acc = cfg, rt, store, accelerator
        self.device = accelerator.device
        self.is_main = accelerator.is_main_process
        self.stop, self.fault, self.claim_timeout = stop, fault, claim_timeout
        self.sync_every = 1 if self.device.type == "cpu" else 25
        self._caches: dict = {}
        self._data: dict = {}
        self.trackers = None
        self.unit: Stage | None = None  # the unit whose claim this process holds (kept fresh while training)

    def root_of(self, dataset: str) -> str:
        return getattr(self.cfg.data, f"{dataset}_root")

    def cache(self, dataset: str, split: str = "train"):
        """The prepared cache (built on first use; the main process builds, the others wait)."""
        from .data.cache import prepare

        if (dataset, split) not in self._caches:
            with self.acc.main_process_first():
                c = prepare(dataset, self.root_of(dataset), self.rt.cache_dir, split=split,
                            limit=self.cfg.data.limit or None, skip_bad=self.cfg.data.skip_bad,
                            progress=self.rt.progress and self.is_main)
            self._caches[dataset, split] = c
        return self._caches[dataset, split]

    def intel_test(self):
        """The Intel test cache, or None when the dataset has no seg_test folder."""
        from .data.readers import DataMissingError, intel_split_dir

        if ("intel", "test") not in self._caches:
            try:  # decided before prepare(), so that every process takes the same path
                intel_split_dir(self.root_of("intel"), "test")
            except DataMissingError:
                self._caches["intel", "test"] = None
            else:
                self.cache("intel", "test")
        return self._caches["intel", "test"]

    def data(self, dataset: str, split: str = "train") -> DeviceData:
        if (dataset, split) not in self._data:
            self._data[dataset, split] = DeviceData(self.cache(dataset, split), self.device)
        return self._data[dataset, split]

    def index_batches(self, order, batch_size: int) -> list:
        from .engine import split_batches

        return split_batches(order, batch_size, self.acc.process_index, self.acc.num_processes)

    def eval_batches(self, idx, batch_size: int) -> list:
        """This process's share of ``idx`` (no example twice), in batches."""
        import numpy as np

        part = np.array_split(np.asarray(idx), self.acc.num_processes)[self.acc.process_index]
        return [part[i : i + batch_size] for i in range(0, len(part), batch_size)]


def _scheduler(opt, sc: StageConfig):
    import torch

    if sc.warmup_epochs <= 0:
        return torch.optim.lr_scheduler.MultiStepLR(opt, list(sc.milestones), sc.gamma)
    w, ms, g = sc.warmup_epochs, sc.milestones, sc.gamma
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda e: min(1.0, (e + 1) / w) * g ** sum(m <= e for m in ms))


def _train(ctx: Context, stage: Stage, model, sc: StageConfig, loss_fn, make_batches, n_images: int):
    """Train ``model`` for ``sc.epochs`` epochs with checkpoints; returns (unwrapped model, state)."""
    import math
    import random

    import numpy as np
    import torch
    from tqdm.auto import tqdm

    from . import engine

    acc, store, d = ctx.acc, ctx.store, ctx.store.dir(stage)
    model.to(ctx.device)
    fused = {"fused": True} if ctx.device.type == "cuda" else {}
    opt = torch.optim.AdamW(model.parameters(), lr=sc.lr, weight_decay=sc.weight_decay, **fused)
    sched = _scheduler(opt, sc)
    state = {"epoch": 0, "step": 0, "loss_sum": 0.0, "count": 0, "seconds": 0.0, "history": []}
    ck = d / "checkpoint.pt"
    if ck.is_file():
        blob = torch.load(ck, map_location="cpu", weights_only=False)
        if blob.get("key") != stage.key:
            raise RuntimeError(f"{ck}: checkpoint belongs to stage {blob.get('key')}, not {stage.key}")
        model.load_state_dict(blob["model"])
        opt.load_state_dict(blob["optimizer"])
        sched.load_state_dict(blob["scheduler"])
        if blob.get("scaler") is not None and acc.scaler is not None:
            acc.scaler.load_state_dict(blob["scaler"])
        torch.set_rng_state(blob["rng"]["torch"])
        np.random.set_state(blob["rng"]["numpy"])
        random.setstate(blob["rng"]["python"])
        state = blob["state"]
        if ctx.is_main:
            store.log(stage, "resume", epoch=state["epoch"], step=state["step"])
    elif ctx.is_main:
        store.log(stage, "start")

    last_save = [time.time()]
    every = ctx.rt.checkpoint_every
    if every is None:  # CPU epochs are long next to a write; GPU epochs of small stages are not
        every = 0.0 if ctx.device.type == "cpu" else 30.0

    def save() -> None:
        last_save[0] = time.time()
        if not ctx.is_main:
            return
        atomic_torch_save(ck, {
            "key": stage.key, "model": acc.unwrap_model(pmodel).state_dict(), "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(), "scaler": acc.scaler.state_dict() if acc.scaler else None,
            "state": state, "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                                    "python": random.getstate()}})
        store.heartbeat(ctx.unit or stage)

    pmodel, popt = acc.prepare(model, opt)
    steps = math.ceil(n_images / sc.batch_size) if n_images else 0
    bar = tqdm(total=sc.epochs * steps, initial=state["epoch"] * steps + state["step"], desc=stage.label,
               unit="step", leave=False, dynamic_ncols=True, disable=not (ctx.is_main and ctx.rt.progress))
    beat = [time.time()]
    done_steps = [state["step"]]

    def on_sync(step: int, loss: float, ips: float) -> None:
        bar.set_postfix(epoch=epoch, loss=f"{loss:.4f}", img_s=f"{ips:.0f}", refresh=False)
        bar.update(step + 1 - done_steps[0])
        done_steps[0] = step + 1
        if ctx.is_main and time.time() - beat[0] > 30:
            store.heartbeat(ctx.unit or stage)
            beat[0] = time.time()

    try:
        for epoch in range(state["epoch"], sc.epochs):
            done_steps[0] = state["step"]
            res = engine.train_one_epoch(
                pmodel, popt, loss_fn, make_batches(epoch), accelerator=acc, kind=stage.kind, epoch=epoch,
                where=stage.label, start_step=state["step"], loss_sum=state["loss_sum"], count=state["count"],
                grad_clip=sc.grad_clip, stop=ctx.stop, sync_every=ctx.sync_every, on_sync=on_sync,
                fault=ctx.fault)
            state["seconds"] += res.seconds
            if res.interrupted:
                state.update(epoch=epoch, step=res.next_step, loss_sum=res.loss_sum, count=res.count)
                save()
                if ctx.is_main:
                    store.log(stage, "interrupted", epoch=epoch, step=res.next_step)
                raise StageInterrupted(stage, epoch, res.next_step, d)
            sched.step()
            totals = torch.tensor([res.loss_sum, float(res.count)], dtype=torch.float64, device=ctx.device)
            if acc.num_processes > 1:
                totals = acc.reduce(totals, reduction="sum")
            loss = float(totals[0] / totals[1]) if totals[1] > 0 else math.nan
            state.update(epoch=epoch + 1, step=0, loss_sum=0.0, count=0)
            state["history"].append(loss)
            stopping = ctx.stop is not None and epoch + 1 < sc.epochs and engine.agree(ctx.stop.requested, acc)
            if stopping or time.time() - last_save[0] >= every:
                save()
            if ctx.is_main:
                lr = opt.param_groups[0]["lr"]
                store.log(stage, "epoch", epoch=epoch, loss=loss, lr=lr, seconds=res.seconds,
                          images_per_s=res.count * acc.num_processes / res.seconds if res.seconds else None)
                if ctx.trackers is not None:
                    ctx.trackers.log(stage, {"loss": loss, "lr": lr}, epoch)
            if stopping:
                if ctx.is_main:
                    store.log(stage, "interrupted", epoch=epoch + 1, step=0)
                raise StageInterrupted(stage, epoch + 1, 0, d)
    finally:
        bar.close()
    return acc.unwrap_model(pmodel), state


def _model_blob(ctx: Context, stage: Stage, task: str, model, **extra) -> dict:
    return {"format": 1, "task": task, "model_config": dataclasses.asdict(ctx.cfg.model),
            "state_dict": model.state_dict(), "label": stage.label, "key": stage.key, "spec": stage.spec,
            "config_name": ctx.cfg.name, "config_hash": ctx.cfg.hash, **extra}


def _backbone(ctx: Context, seed: int):
    """The seed's random initialisation of ViNy (also the starting point of pre-training)."""
    import torch

    from .engine import derive_seed
    from .model import ViNy

    torch.manual_seed(derive_seed(seed, "init"))
    return ViNy(ctx.cfg.model)


def _with_upstream(ctx: Context, stage: Stage, wrapper) -> None:
    """Load the upstream stage's backbone into ``wrapper`` (nothing for a random initialisation)."""
    import torch

    from .model import load_backbone

    if stage.upstream is None:
        return
    blob = torch.load(ctx.store.dir(stage.upstream) / "model.pt", map_location="cpu", weights_only=False)
    load_backbone(wrapper, blob["state_dict"])


def cross_entropy(logits, target):
    """Mean cross-entropy of (B, C) or (B, C, H, W) logits. Under ``--deterministic`` on a GPU it
    is taken as per-element losses and a plain mean: the fused mean of the per-pixel loss
    (``nll_loss2d``) accumulates with atomics on CUDA and PyTorch refuses it in deterministic mode.
    Same value up to the order of summation; the default path is unchanged."""
    import torch
    import torch.nn.functional as F

    if logits.is_cuda and torch.are_deterministic_algorithms_enabled():
        return F.cross_entropy(logits, target, reduction="none").mean()
    return F.cross_entropy(logits, target)


def _order(idx, seed_parts: tuple, epoch: int):
    from .engine import derive_seed, epoch_order

    return idx[epoch_order(len(idx), derive_seed(*seed_parts), epoch)]


def run_pretrain(ctx: Context, stage: Stage) -> dict:
    import torch

    from .data.splits import pretrain_subset
    from .data.transforms import simmim_augment
    from .engine import derive_seed
    from .simmim import SimMIM

    cfg, sc = ctx.cfg, ctx.cfg.pretrain
    data = ctx.data("imagenet")
    idx = pretrain_subset(len(data), stage.pretrain, sc.data_seed)
    backbone = _backbone(ctx, stage.seed)
    torch.manual_seed(derive_seed(stage.seed, "pretrain-head"))
    model = SimMIM(backbone, cfg.simmim)
    parts = (stage.seed, "pretrain", stage.pretrain)

    def make(raw, gen):
        return {"x": simmim_augment(raw["images"], gen), "gen": gen, "n": raw["n"]}

    def loss_fn(m, b):
        return m(b["x"], generator=b["gen"]), b["n"]

    def batches(epoch):
        order = _order(idx, parts, epoch)
        return Batches(data, ctx.index_batches(order, sc.batch_size), make, (*parts, epoch, ctx.acc.process_index))

    model, state = _train(ctx, stage, model, sc, loss_fn, batches, len(idx))
    if ctx.is_main:
        atomic_torch_save(ctx.store.dir(stage) / "model.pt", _model_blob(ctx, stage, "simmim", model))
    return {"pretrain": stage.pretrain, "seed": stage.seed, "final_loss": state["history"][-1] if state["history"]
            else float("nan"), "history": state["history"], "train_seconds": state["seconds"],
            "images": len(idx), "cache_hash": data.cache.hash}


def run_intermediate(ctx: Context, stage: Stage) -> dict:
    import torch

    from .data.transforms import cls_augment, normalize
    from .engine import derive_seed, evaluate
    from .model import Classifier

    cfg, sc = ctx.cfg, ctx.cfg.intermediate
    data = ctx.data("intel")
    backbone = _backbone(ctx, stage.seed)
    torch.manual_seed(derive_seed(stage.seed, "intermediate-head"))
    model = Classifier(backbone, sc.num_classes)
    _with_upstream(ctx, stage, model)
    import numpy as np

    idx = np.arange(len(data))
    parts = (stage.seed, "intermediate")

    def make(raw, gen):
        return {"x": cls_augment(raw["images"], gen), "y": raw["labels"], "n": raw["n"]}

    def loss_fn(m, b):
        return cross_entropy(m(b["x"]).float(), b["y"]), b["n"]

    def batches(epoch):
        order = _order(idx, parts, epoch)
        return Batches(data, ctx.index_batches(order, sc.batch_size), make, (*parts, epoch, ctx.acc.process_index))

    model, state = _train(ctx, stage, model, sc, loss_fn, batches, len(idx))
    test = ctx.intel_test() if sc.evaluate_test else None
    split = "test" if test is not None else "train"
    edata = ctx.data("intel", "test") if test is not None else data
    eidx = np.arange(len(edata))
    ebatches = Batches(edata, ctx.eval_batches(eidx, cfg.finetune.eval_batch_size),
                       lambda raw, gen: (normalize(raw["images"]), raw["labels"]))

    def predict(m, b):
        with ctx.acc.autocast():
            return m(b[0]).argmax(1), b[1]

    cm = evaluate(model, ebatches, predict, accelerator=ctx.acc, num_classes=sc.num_classes)
    accuracy = float(cm.diag().sum()) / max(float(cm.sum()), 1.0)
    if ctx.is_main:
        atomic_torch_save(ctx.store.dir(stage) / "model.pt",
                          _model_blob(ctx, stage, "classify", model, num_classes=sc.num_classes))
    return {"pretrain": stage.pretrain, "seed": stage.seed, "accuracy": accuracy, "accuracy_split": split,
            "final_loss": state["history"][-1] if state["history"] else float("nan"),
            "history": state["history"], "train_seconds": state["seconds"], "confusion": cm.tolist(),
            "cache_hash": data.cache.hash}


def _pets(ctx: Context):
    from .data.splits import pets_split

    data = ctx.data("pets")
    test_idx, pool_idx = pets_split(len(data), ctx.cfg.finetune.test_size, ctx.cfg.finetune.split_seed)
    return data, test_idx, pool_idx


def run_finetune(ctx: Context, stage: Stage):
    """Returns (record, trained Segmenter)."""
    import torch

    from .data.splits import finetune_subset
    from .data.transforms import seg_augment
    from .engine import derive_seed
    from .model import Segmenter

    sc = ctx.cfg.finetune
    data, _, pool = _pets(ctx)
    idx = finetune_subset(pool, stage.finetune, stage.seed)
    backbone = _backbone(ctx, stage.seed)
    torch.manual_seed(derive_seed(stage.seed, "finetune-head"))
    model = Segmenter(backbone)
    _with_upstream(ctx, stage, model)
    parts = (stage.seed, "finetune", stage.finetune)

    def make(raw, gen):
        x, y = seg_augment(raw["images"], raw["masks"], gen)
        return {"x": x, "y": y, "n": raw["n"]}

    def loss_fn(m, b):
        return cross_entropy(m(b["x"]).float(), b["y"]), b["n"]

    def batches(epoch):
        order = _order(idx, parts, epoch)
        return Batches(data, ctx.index_batches(order, sc.batch_size), make, (*parts, epoch, ctx.acc.process_index))

    model, state = _train(ctx, stage, model, sc, loss_fn, batches, len(idx))
    if ctx.is_main:
        atomic_torch_save(ctx.store.dir(stage) / "model.pt", _model_blob(ctx, stage, "segment", model, num_classes=3))
    record = {"pretrain": stage.pretrain, "intermediate": stage.intermediate, "finetune": stage.finetune,
              "seed": stage.seed, "final_loss": state["history"][-1] if state["history"] else float("nan"),
              "history": state["history"], "train_seconds": state["seconds"], "cache_hash": data.cache.hash}
    return record, model


def load_model(path: Path):
    """A saved model file -> (module, blob). Works for the files written by every stage."""
    import torch

    from .model import Classifier, Segmenter, ViNy, ViNyConfig
    from .simmim import SimMIM, SimMIMConfig

    blob = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(blob, dict) or blob.get("format") != 1 or "state_dict" not in blob:
        raise ValueError(f"{path}: not a diminish model file")
    backbone = ViNy(ViNyConfig(**blob["model_config"]))
    task = blob["task"]
    if task == "segment":
        model = Segmenter(backbone, blob.get("num_classes", 3))
    elif task == "classify":
        model = Classifier(backbone, blob["num_classes"])
    else:
        model = SimMIM(backbone, SimMIMConfig(**blob["spec"].get("simmim", {})))
    model.load_state_dict(blob["state_dict"])
    return model, blob


def segment_scores(ctx: Context, model, data: DeviceData, idx, batch_size: int):
    """Confusion matrix of a Segmenter over ``data[idx]`` (all processes) -> (matrix, scores)."""
    from .data.transforms import normalize
    from .engine import evaluate
    from .metrics import scores_from_confusion

    batches = Batches(data, ctx.eval_batches(idx, batch_size),
                      lambda raw, gen: (normalize(raw["images"]), raw["masks"].long()))

    def predict(m, b):
        with ctx.acc.autocast():
            return m(b[0]).argmax(1), b[1]

    model.to(ctx.device)
    cm = evaluate(model, batches, predict, accelerator=ctx.acc, num_classes=3)
    return cm, scores_from_confusion(cm)


def run_evaluate(ctx: Context, stage: Stage, model=None, examples: int = 0) -> dict:
    """Score the fine-tuned model on the held-out Pets test set; optionally save example predictions."""
    import numpy as np
    import torch

    from .data.transforms import normalize

    ft = stage.upstream
    if model is None:
        model, _ = load_model(ctx.store.dir(ft) / "model.pt")
    data, test_idx, _ = _pets(ctx)
    cm, scores = segment_scores(ctx, model, data, test_idx, ctx.cfg.finetune.eval_batch_size)
    if examples and ctx.is_main:
        raw = data.take(test_idx[:examples])
        model.eval()
        with torch.inference_mode(), ctx.acc.autocast():
            pred = model(normalize(raw["images"])).argmax(1)
        atomic_save_npz(ctx.store.dir(stage) / "examples.npz",
                        image=raw["images"].permute(0, 2, 3, 1).cpu().numpy().astype(np.uint8),
                        truth=raw["masks"].cpu().numpy().astype(np.uint8),
                        pred=pred.cpu().numpy().astype(np.uint8),
                        cell=np.array(f"pretrain={stage.pretrain} intermediate={stage.intermediate} "
                                      f"finetune={stage.finetune} seed={stage.seed} (first {examples} "
                                      f"test images by cache index)"))
    ftrec = ctx.store.record(ft) if ctx.store.is_done(ft) else {}
    return {"pretrain": stage.pretrain, "intermediate": stage.intermediate, "finetune": stage.finetune,
            "seed": stage.seed, "accuracy": scores["accuracy"], "miou": scores["miou"], "iou": scores["iou"],
            "confusion": cm.tolist(), "n_test": len(test_idx), "train_seconds": ftrec.get("train_seconds"),
            "final_loss": ftrec.get("final_loss"), "cache_hash": data.cache.hash}


EXAMPLES = 8  # test predictions kept from the examples cell


def execute(ctx: Context, plan: Plan, unit: Stage) -> dict:
    """Run one unit of work whose upstream stages are finished: a pre-training, an intermediate
    stage, or a grid cell (an ``evaluate`` stage, running its fine-tuning first when needed).
    Writes the stage folders (main process only); returns the unit's record."""
    store, current = ctx.store, unit
    ctx.unit = unit
    try:
        if unit.kind in ("pretrain", "intermediate"):
            if ctx.is_main:
                store.begin(unit)
            record = (run_pretrain if unit.kind == "pretrain" else run_intermediate)(ctx, unit)
            record["device"] = _device_name(ctx)
            if ctx.is_main:
                store.finish(unit, record)
            ctx.acc.wait_for_everyone()
            return record
        ft, model = unit.upstream, None
        weights = store.dir(ft) / "model.pt"
        if not (store.is_done(ft) and weights.is_file()):
            current = ft
            if ctx.is_main:
                with contextlib.suppress(FileNotFoundError):
                    (store.dir(ft) / "done").unlink()  # weights gone: the stage must run again
                store.begin(ft)
            record, model = run_finetune(ctx, ft)
            if ctx.is_main:
                store.finish(ft, record)
            ctx.acc.wait_for_everyone()
        current = unit
        if ctx.is_main:
            store.begin(unit)
        record = run_evaluate(ctx, unit, model, EXAMPLES if unit.cell == plan.examples_cell else 0)
        record["device"] = _device_name(ctx)
        if ctx.is_main:
            store.finish(unit, record)
            if ctx.rt.save_models:
                link = store.root / "models" / (unit.label.replace("evaluate ", "").replace(" ", "_") + ".pt")
                link.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    link.unlink()
                os.link(weights, link)
            else:
                with contextlib.suppress(FileNotFoundError):
                    weights.unlink()
        ctx.acc.wait_for_everyone()
        return record
    except StageInterrupted:
        raise
    except BaseException as e:
        if ctx.is_main and not isinstance(e, KeyboardInterrupt):
            with contextlib.suppress(OSError):  # e.g. a full disk must not hide the original error
                store.fail(current, e)
        raise
    finally:
        ctx.acc.free_memory()


def _device_name(ctx: Context) -> str:
    import torch

    if ctx.device.type == "cuda":
        name = torch.cuda.get_device_name(ctx.device)
    else:
        name = f"{ctx.device.type} ({torch.get_num_threads()} threads)"
    return f"{name} x{ctx.acc.num_processes}" if ctx.acc.num_processes > 1 else name
