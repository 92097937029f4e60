"""The GPU path on a CPU (issue 23): the worker GPU mask and CPU count under SLURM, the caches built
before the process group, the loss window (one host read per window, across epoch ends, safe from
CUDA-graph output reuse), fp16 refused, the TF32 API, one host read per evaluation batch and per
finite-weights check, the intermediate accuracy's image count, images/s after a resume, fused AdamW
with a resume, and the checkpoint cadence under a patched clock. Each runs in seconds in-process;
the tiny-grid comparisons are in ``test_gpu_path_grid.py``."""

from __future__ import annotations

import functools
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from _hostsync import HostReads, optimizer_steps
from _runner import make_data, write_config
from diminish.config import ExperimentConfig, StageConfig, ViNyConfig, load
from diminish.core import fastpath, loop
from diminish.core.batches import Batches, DeviceData, epoch_order, split_batches
from diminish.core.loop import LossWindow, StopRequest, train_one_epoch
from diminish.core.metrics import ConfusionMatrix
from diminish.core.tasks import BY_KIND, SEGMENT
from diminish.runner import accel, cli, launch, schedule, stages, training
from diminish.runner.checkpoint import Checkpointer
from diminish.runner.plan import Stage, build_plan
from diminish.runner.store import Store

STAGE = Stage("finetune", "a1b2c3d4e5f60718", pretrain=0, seed=0, finetune=8)


@pytest.fixture(scope="module")
def acc():
    return Accelerator(cpu=True)


# -- --jobs: GPUs and CPU threads of the workers -------------------------------------------------
class FakeProcess:
    made: list = []
    pid = 0

    def __init__(self, cmd, env):
        FakeProcess.made.append((cmd, env))

    def wait(self):
        return 1  # the workers "fail": run_jobs returns before assembling


def _workers(monkeypatch, jobs: int, gpus: int, mask: str | None):
    FakeProcess.made = []
    monkeypatch.setattr(launch, "_cuda_count", lambda: gpus)
    monkeypatch.setattr(launch.subprocess, "Popen", FakeProcess)
    if mask is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", mask)
    assert launch.run_jobs(schedule.RunOptions(config="c.toml", jobs=jobs), None, None) == 1
    return [(env.get("CUDA_VISIBLE_DEVICES"), cmd) for cmd, env in FakeProcess.made]


def test_jobs_map_each_worker_into_the_parents_visible_gpus(monkeypatch):
    """SLURM without device cgroups gives the job e.g. GPUs 2,3: worker i must get the parent's
    i-th visible GPU, not physical GPU i (which belongs to another job); MIG UUIDs likewise."""
    got = _workers(monkeypatch, 4, 2, "2,3")
    assert [m for m, _ in got] == ["2", "3", "2", "3"]
    assert [c[c.index("--gpu-share") + 1] for _, c in got] == ["2", "2", "2", "2"]
    mig = "MIG-1b2c3d4e-0000-1111-2222-333344445555,MIG-9f8e7d6c-0000-1111-2222-333344445555"
    got = _workers(monkeypatch, 3, 2, mig)
    assert [m for m, _ in got] == [mig.split(",")[0], mig.split(",")[1], mig.split(",")[0]]
    got = _workers(monkeypatch, 2, 1, "5")  # one GPU shared by both workers
    assert [m for m, _ in got] == ["5", "5"] and all(c[c.index("--gpu-share") + 1] == "2" for _, c in got)
    assert [m for m, _ in _workers(monkeypatch, 3, 2, None)] == ["0", "1", "0"]  # no mask: torch's order


def test_jobs_threads_come_from_the_cpu_affinity_not_the_machine(monkeypatch):
    """SLURM's --cpus-per-task sets the affinity; os.cpu_count() is the whole node."""
    monkeypatch.setattr(launch.os, "sched_getaffinity", lambda pid: {4, 5, 6, 7}, raising=False)
    monkeypatch.setattr(launch.os, "cpu_count", lambda: 128)
    _workers(monkeypatch, 2, 0, None)
    assert {env["OMP_NUM_THREADS"] for _, env in FakeProcess.made} == {"2"}


# -- the caches before the process group ----------------------------------------------------------
def test_caches_are_built_before_the_accelerator_exists(monkeypatch, tmp_path):
    """Ranks above 0 must not sit in a collective (NCCL: 10-minute timeout) while rank 0 decodes
    images: every cache is prepared before the Accelerator (and its process group) is made."""
    data = make_data(tmp_path)
    cfg = load(write_config(tmp_path / "tiny.toml", data))
    order = []
    real = launch.prepare_caches

    def caches(*a, **k):
        order.append("caches")
        return real(*a, **k)

    class Stop(Exception):
        pass

    def accelerator(*a, **k):
        order.append("accelerator")
        raise Stop

    monkeypatch.setattr(launch, "prepare_caches", caches)
    monkeypatch.setattr(launch, "make_accelerator", accelerator)
    rt = cli.runtime(cli.parse_args(["--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]))
    opts = schedule.RunOptions(config="tiny.toml", rt=rt)
    with pytest.raises(Stop):
        launch.run_all(opts, cfg, build_plan(cfg), Store(tmp_path / "out" / "tiny"))
    assert order == ["caches", "accelerator"]
    assert len(list((tmp_path / "cache").glob("*/manifest.json"))) == 4  # imagenet, intel train+test, pets


def test_a_process_group_timeout_reaches_accelerate():
    handlers = []
    real = accel.Accelerator

    class Spy:
        def __init__(self, **kw):
            handlers.extend(kw.get("kwargs_handlers", []))
            self.mixed_precision = "no"

    accel.Accelerator = Spy
    try:
        rt = cli.runtime(cli.parse_args(["--dist-timeout", "7"]))
        accel.make_accelerator(ExperimentConfig(name="x"), Store(Path("/nonexistent")), rt)
    finally:
        accel.Accelerator = real
    assert [h.timeout.total_seconds() for h in handlers if hasattr(h, "timeout")] == [7.0]


# -- the loss window ------------------------------------------------------------------------------
class Source:
    def __init__(self, n=24, batch=4, epoch=0, rec=None):
        g = torch.Generator().manual_seed(11 + epoch)
        self.x, self.y = torch.randn(n, 5, generator=g), torch.randint(0, 2, (n,), generator=g)
        self.batch, self.epoch, self.rec = batch, epoch, rec

    def __len__(self):
        return len(self.x) // self.batch

    def __getitem__(self, step):
        if self.rec is not None:
            self.rec.where = (self.epoch, step)
        s = slice(step * self.batch, (step + 1) * self.batch)
        return {"x": self.x[s], "y": self.y[s], "n": self.batch}


def _loss(m, b):
    return torch.nn.functional.cross_entropy(m(b["x"]), b["y"]), b["n"]


def _fresh(kernel="foreach"):
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 2)
    return model, fastpath.make_optimizer(model.parameters(), 0.05, 0.01, "cpu", kernel)


def test_a_step_loss_overwritten_later_does_not_change_the_totals(acc):
    """Under CUDA graphs (--compile-mode reduce-overhead) a replay overwrites the previous step's
    output tensor: the window must hold copies, not references."""
    model, opt = _fresh()
    ref = train_one_epoch(model, opt, _loss, Source(), accelerator=acc, kind="t", epoch=0, where="t", sync_every=6)
    prev = []

    def replaying(m, b):  # like a graph replay: this step's output storage is the last step's too
        loss, n = _loss(m, b)
        for p in prev:
            p.data.fill_(1e3)
        prev[:] = [loss]
        return loss, n

    model, opt = _fresh()
    got = train_one_epoch(model, opt, replaying, Source(), accelerator=acc, kind="t", epoch=0, where="t",
                          sync_every=6)
    assert (got.loss_sum, got.count) == (ref.loss_sum, ref.count)


def _windowed(acc, folder, sc, every, monkeypatch):
    """training.train with a ``every``-step window under the host-read detector -> (history, weights, reads)."""
    opts = []
    real = fastpath.make_optimizer

    def make(*a, **k):
        opts.append(real(*a, **k))
        return opts[-1]

    monkeypatch.setattr(fastpath, "make_optimizer", make)
    rec = HostReads(host_held=lambda t: optimizer_steps(*opts)(t))
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 2)
    store = Store(folder)
    with rec:
        _, state = training.train(model, STAGE, sc, _loss, lambda e: Source(epoch=e, rec=rec), 24, accelerator=acc,
                                  checkpointer=Checkpointer(store.dir(STAGE), STAGE),
                                  log=functools.partial(store.log, STAGE), progress=False, sync_every=every,
                                  checkpoint_every=1e9)
    return state.history, model.weight.detach().clone(), rec.reads


def test_the_step_loop_reads_the_host_only_at_window_ends_across_epochs(acc, tmp_path, monkeypatch):
    """The runner's epochs (training.train: forward, backward, clip, AdamW step, the batch source)
    with a 5-step window over epochs of 6 steps: host reads happen at global steps 5, 10, 15 and
    at training's end, never inside a window and not at an epoch's end; the records are those
    of one read per step."""
    sc = StageConfig(epochs=3, lr=0.05, weight_decay=0.01, gamma=0.5, milestones=(1,), batch_size=4, grad_clip=1.0)
    runs = {every: _windowed(acc, tmp_path / f"w{every}", sc, every, monkeypatch) for every in (1, 5)}
    hist1, w1, _ = runs[1]
    hist5, w5, reads = runs[5]
    assert hist5 == hist1 and torch.equal(w5, w1)
    in_loop = [(where, op) for where, op in reads if where is not None]
    # window reads after global steps 5, 10, 15 (epoch 0 step 4, epoch 1 steps 3, epoch 2 step 2), then
    # the rest at the last epoch's end, then the final-weights check (one read, and one loss read)
    assert [w for w, op in in_loop if op == "_to_copy"] == [(0, 4), (1, 3), (2, 2), (2, 5)]
    assert [op for w, op in in_loop if op != "_to_copy"] == ["_local_scalar_dense", "_local_scalar_dense"]


def test_a_finite_weights_check_and_a_confusion_update_read_the_host_once():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    with HostReads() as rec:
        loop.check_finite_weights(model, "here", "advice")
    assert len(rec.reads) == 1  # was one per parameter and buffer (8 here)
    with torch.no_grad():
        model[2].bias[1] = float("nan")
    with pytest.raises(loop.NonFiniteWeightsError, match="parameter 2.bias"):
        loop.check_finite_weights(model, "here", "advice")
    cm = ConfusionMatrix(3)
    with HostReads() as rec:
        cm.update(torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 1, 2]))
    assert len(rec.reads) == 1  # was four int() per batch
    with pytest.raises(ValueError, match="outside"):
        cm.update(torch.tensor([3]), torch.tensor([0]))


# -- fp16, TF32 -----------------------------------------------------------------------------------
def test_fp16_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    assert cli.main(["--config", "experiments/demo.toml", "--all", "--mixed-precision", "fp16",
                     "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "fp16 training is not supported" in err[0] and "bf16" in err[0]
    class Fp16:  # what `accelerate launch --mixed_precision fp16` gives the runner
        mixed_precision = "fp16"

        def __init__(self, **kw):
            pass

    monkeypatch.setattr(accel, "Accelerator", Fp16)
    with pytest.raises(SystemExit, match="fp16 training is not supported"):
        accel.make_accelerator(ExperimentConfig(name="x"), Store(tmp_path), cli.runtime(cli.parse_args([])))


def test_tf32_is_switched_on_with_the_new_api_only(monkeypatch):
    """torch >= 2.9: mixing allow_tf32/set_float32_matmul_precision with fp32_precision makes
    inductor raise; setup_device must use only the new per-backend switches."""
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    if not hasattr(matmul, "fp32_precision"):
        pytest.skip("torch < 2.9 has only the legacy switches")
    before = matmul.fp32_precision, conv.fp32_precision

    def legacy(*a, **k):
        raise AssertionError("legacy TF32 switch used")

    monkeypatch.setattr(torch, "set_float32_matmul_precision", legacy)
    try:
        fastpath.setup_device(torch.device("cuda"))  # only flips flags: runs without a GPU
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
    finally:
        matmul.fp32_precision, conv.fp32_precision = before


# -- intermediate accuracy, images/s after a resume ---------------------------------------------
def test_intermediate_accuracy_counts_each_training_image_once(acc, tmp_path):
    """The check of the final weights takes a loss on one more batch; it is no training image."""
    sc = StageConfig(epochs=2, lr=0.05, weight_decay=0.0, gamma=0.5, milestones=(1,), batch_size=4)
    watch, history, images = stages._counting_accuracy(sc.epochs)
    batches, loss = watch(lambda e: Source(epoch=e), lambda m, b: _loss(m, b))
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 2)
    store = Store(tmp_path)
    training.train(model, STAGE, sc, loss, batches, 24, accelerator=acc,
                   checkpointer=Checkpointer(store.dir(STAGE), STAGE), progress=False)
    assert images() == [24, 24]  # was [24, 28]: the check's batch counted into the last epoch
    assert all(0 <= a <= 1 for a in history())


def test_images_per_second_after_a_resume_counts_only_this_sessions_images(acc, tmp_path):
    sc = StageConfig(epochs=1, lr=0.05, weight_decay=0.0, gamma=0.5, milestones=(1,), batch_size=4)
    store = Store(tmp_path)
    stop = StopRequest()

    def hook(kind, epoch, step, loss):
        if step == 3:
            stop.signum = 15  # as SIGTERM would: the loop stops after this step
        return loss

    def run(**kw):
        torch.manual_seed(0)
        return training.train(torch.nn.Linear(5, 2), STAGE, sc, _loss, lambda e: Source(epoch=e), 24,
                              accelerator=acc, checkpointer=Checkpointer(store.dir(STAGE), STAGE),
                              log=functools.partial(store.log, STAGE), progress=False, **kw)

    with pytest.raises(training.StageInterrupted):
        run(stop=stop, step_hook=hook)
    run()
    events = [json.loads(x) for x in (store.dir(STAGE) / "log.jsonl").read_text().splitlines()]
    epoch = next(e for e in events if e["event"] == "epoch")
    assert [e["event"] for e in events] == ["start", "interrupted", "resume", "epoch"]
    # this session trained steps 4 and 5: 8 images (the epoch's count is 24, 16 of them before the stop)
    assert epoch["images_per_s"] * epoch["seconds"] == pytest.approx(8)


# -- fused AdamW with a resume; the checkpoint cadence under a patched clock ---------------------
class Killed(Exception):
    """A step hook's stand-in for SIGKILL: training ends without saving."""


def _cadence_run(acc, folder, kernel, every, clock, kill_at=None):
    sc = StageConfig(epochs=7, lr=0.05, weight_decay=0.01, gamma=0.5, milestones=(3,), batch_size=12)
    store = Store(folder)
    saves = []

    class Counting(Checkpointer):
        def save(self, state):
            saves.append(state.epoch)
            super().save(state)

    def hook(kind, epoch, step, loss):
        clock[0] += 5.0  # each step takes 5 s: an epoch (2 steps) 10 s
        if kill_at == (epoch, step):
            raise Killed
        return loss

    torch.manual_seed(0)
    model = torch.nn.Linear(5, 2)
    _, state = training.train(model, STAGE, sc, _loss, lambda e: Source(batch=12, epoch=e), 24, accelerator=acc,
                              checkpointer=Counting(store.dir(STAGE), STAGE), progress=False, step_hook=hook,
                              checkpoint_every=every, optimizer=kernel, sync_every=25)
    return state, model, saves


@pytest.mark.parametrize("kernel", ["fused", "foreach"])
def test_the_checkpoint_cadence_and_a_kill_between_checkpoints_resume_identically(acc, tmp_path, monkeypatch,
                                                                                     kernel):
    """30 s between checkpoints (the GPU default) with 10-s epochs: checkpoints after epochs 3 and 6
    (state.epoch 3 and 6), none at the others; a kill in epoch 5 resumes from the epoch-3
    checkpoint - fused AdamW's state included - and ends bit-identical to the uninterrupted run."""
    clock = [0.0]
    monkeypatch.setattr(training.time, "time", lambda: clock[0])
    ref, ref_model, saves = _cadence_run(acc, tmp_path / "ref", kernel, 30.0, clock)
    assert saves == [3, 6]
    clock[0] = 0.0
    with pytest.raises(Killed):
        _cadence_run(acc, tmp_path / "kill", kernel, 30.0, clock, kill_at=(4, 1))
    state, model, saves = _cadence_run(acc, tmp_path / "kill", kernel, 30.0, clock)
    assert saves == [6]  # resumed at epoch 3 (restored, not saved again); the next 30 s end at epoch 6
    assert state.history == ref.history
    assert torch.equal(model.weight, ref_model.weight) and torch.equal(model.bias, ref_model.bias)
    if kernel == "fused":
        assert torch.optim.AdamW(torch.nn.Linear(1, 1).parameters(), fused=True).defaults["fused"]


def test_fused_adamw_on_the_cpu_matches_foreach_to_rounding():
    """Fused AdamW (the CUDA default) runs on the CPU too; same algorithm as foreach."""
    a, oa = _fresh("fused")
    b, ob = _fresh("foreach")
    assert oa.defaults["fused"] and ob.defaults["foreach"]
    for step in range(5):
        for m, o in ((a, oa), (b, ob)):
            o.zero_grad()
            _loss(m, Source()[step])[0].backward()
            o.step()
    np.testing.assert_allclose(a.weight.detach().numpy(), b.weight.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_loss_window_reads_once_and_names_the_first_bad_step(acc):
    w = LossWindow(4)
    for s, v in enumerate([1.0, float("nan"), 2.0]):
        w.add(0, s, torch.tensor(v), 2)
    with HostReads() as rec:
        with pytest.raises(loop.NonFiniteLossError, match="epoch 0, step 1"):
            w.check(acc, "t")
    assert [op for _, op in rec.reads] == ["_to_copy"]


# -- the runner's step loop of each task, with the batch path: no host read between windows ------
class TinyCache:
    def __init__(self, n=24, s=32, classes=6):
        rng = np.random.default_rng(0)
        self.images = rng.integers(0, 256, (n, 3, s, s), dtype=np.uint8)
        self.masks = rng.integers(0, 3, (n, s, s), dtype=np.uint8)
        self.labels = rng.integers(0, classes, n).astype(np.int64)

    def __len__(self):
        return len(self.images)


def _task_reads(accelerator, task, tmp_path) -> tuple[list, list]:
    """training.train of ``task`` (tiny ViNy, the task's own augmentation and loss, resident data,
    the device's default AdamW, grad clipping) with a 100-step window under the host-read detector;
    returns (reads inside the step loop, the step positions they happened at)."""
    device = accelerator.device
    cfg = ExperimentConfig(name="t", model=ViNyConfig(image_size=32, patch_size=8, dim=16, depth=1, heads=1,
                                                      dim_head=16, mlp_dim=16))
    sc = StageConfig(epochs=3, lr=1e-3, weight_decay=0.01, gamma=0.5, milestones=(1,), batch_size=8, grad_clip=1.0)
    data = DeviceData(TinyCache(), device, resident="always")
    opts = []
    rec = HostReads(host_held=lambda t: optimizer_steps(*opts)(t))

    class Placed(Batches):
        def __getitem__(self, step):
            rec.where = (self.seed_parts[-2], step)
            return super().__getitem__(step)

    def batches(epoch):
        index = split_batches(epoch_order(len(data), 3, epoch), sc.batch_size)
        return Placed(data, index, functools.partial(task.augment, cfg), (0, task.kind, epoch, 0))

    real = fastpath.make_optimizer

    def make(*a, **k):
        opts.append(real(*a, **k))
        return opts[-1]

    fastpath.make_optimizer = make
    try:
        model = task.build(cfg, 0)
        store = Store(tmp_path / task.kind)
        with rec:
            training.train(model, STAGE, sc, task.loss, batches, len(data), accelerator=accelerator,
                           checkpointer=Checkpointer(store.dir(STAGE), STAGE), progress=False, sync_every=100,
                           checkpoint_every=1e9)
    finally:
        fastpath.make_optimizer = real
    inside = [(w, op) for w, op in rec.reads if w is not None]
    return inside, [w for w, op in inside if op != "_to_copy"]


@pytest.mark.parametrize("kind", ["pretrain", "intermediate", "finetune"])
def test_the_step_loop_of_each_task_reads_the_host_only_at_its_window(acc, kind, tmp_path):
    """Forward, backward, clip and AdamW step of every task, with its augmentation and SimMIM mask
    drawn from the per-step generator and batches indexed on the device: between window reads
    nothing reads a device value (9 steps in a 100-step window: one read, at training's end)."""
    inside, _ = _task_reads(acc, BY_KIND[kind], tmp_path)
    window = [(w, op) for w, op in inside if op == "_to_copy"]
    assert window == [((2, 2), "_to_copy")]  # the last step of the last epoch
    # after it, only the final-weights check (one read) and its loss on one batch (one read)
    assert [op for w, op in inside if op != "_to_copy"] == ["_local_scalar_dense", "_local_scalar_dense"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh runs it)")
def test_cuda_step_loop_makes_no_sync_between_windows(tmp_path):
    """The same on CUDA, where torch itself reports every synchronising call
    (set_sync_debug_mode): none may come from a step between window reads."""
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            inside, _ = _task_reads(Accelerator(), SEGMENT, tmp_path)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert [op for w, op in inside if op == "_to_copy"] == ["_to_copy"]
    syncs = [str(w.message) for w in caught if "synchroniz" in str(w.message)]
    assert len(syncs) <= 4, syncs  # the window read, the final check's two reads, checkpoint-free


# -- the memory-map path: one pinned gather per batch, the next one prefetched -------------------
def test_prefetched_batches_equal_the_plain_ones_in_any_order():
    cache = TinyCache()
    data = DeviceData(cache, torch.device("cpu"), resident="never")
    index = [np.array([5, 1, 9]), np.array([0, 2]), np.array([23, 7, 7, 11])]

    def make(raw, gen):
        return {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in raw.items()}

    plain = Batches(data, index, make, (0, "t", 0, 0), prefetch=False)
    ahead = Batches(data, index, make, (0, "t", 0, 0), prefetch=True)
    for step in (0, 1, 2, 1, 0, 2):  # in order, then a jump back (a resume): the prefetched guess is dropped
        a, b = plain[step], ahead[step]
        assert a.keys() == b.keys() and a["n"] == b["n"]
        for k in ("images", "masks", "labels"):
            assert torch.equal(a[k], b[k]), (step, k)
        assert torch.equal(a["images"], torch.from_numpy(cache.images[np.sort(index[step])]))
    assert not Batches(data, index, make).prefetch  # off on a CPU by default
    assert not Batches(DeviceData(cache, torch.device("cpu"), resident="always"), index, make, prefetch=True).prefetch
