"""The task-agnostic loops: data order, sharding of batches, resume at a step, NaN guard, evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from accelerate import Accelerator

from _runner import faulty
from diminish.core.batches import epoch_order, split_batches
from diminish.core.loop import NonFiniteLossError, StopRequest, confusion_pass, train_one_epoch


@pytest.fixture(scope="module")
def acc():
    return Accelerator(cpu=True)


class Source:
    """A loader-like batch source: fixed data, per-step noise from a generator seeded by the step."""

    def __init__(self, n=40, batch=8, epoch=0):
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, 5, generator=g)
        self.y = (self.x[:, 0] > 0).long()
        self.batches = split_batches(epoch_order(n, 7, epoch), batch)
        self.epoch = epoch

    def __len__(self):
        return len(self.batches)

    def __getitem__(self, step):
        idx = torch.from_numpy(self.batches[step])
        g = torch.Generator().manual_seed(1000 * self.epoch + step)
        return self.x[idx] + 0.1 * torch.randn(len(idx), 5, generator=g), self.y[idx], len(idx)


def loss_fn(model, batch):
    x, y, n = batch
    return torch.nn.functional.cross_entropy(model(x), y), n


def fresh():
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 2)
    return model, torch.optim.AdamW(model.parameters(), lr=0.05)


def test_epoch_order_is_a_function_of_seed_and_epoch():
    a = epoch_order(100, 3, 0)
    assert sorted(a) == list(range(100))
    np.testing.assert_array_equal(a, epoch_order(100, 3, 0))
    assert not np.array_equal(a, epoch_order(100, 3, 1)) and not np.array_equal(a, epoch_order(100, 4, 0))


def test_split_batches_covers_every_index_once_and_ranks_get_equal_steps():
    order = np.arange(21)
    one = split_batches(order, 8)
    assert [len(b) for b in one] == [8, 8, 5] and np.array_equal(np.concatenate(one), order)
    parts = [split_batches(order, 8, rank, 3) for rank in range(3)]
    assert {len(p) for p in parts} == {3}
    union = np.concatenate([np.concatenate(p) for p in parts])
    assert sorted(union) == list(range(21))
    tiny = [split_batches(np.arange(2), 8, r, 3) for r in range(3)]  # fewer images than processes
    assert all(len(t) == 1 and len(t[0]) >= 1 for t in tiny)


def test_stop_then_resume_at_the_next_step_is_bit_identical(acc):
    src = Source()
    model, opt = fresh()
    full = train_one_epoch(model, opt, loss_fn, src, accelerator=acc, kind="t", epoch=0, where="t")
    assert not full.interrupted and full.next_step == len(src) == 5 and full.count == 40

    model2, opt2 = fresh()
    stop = StopRequest()

    class StopAfter2:
        def __call__(self, step, loss, ips):
            if step == 1:
                stop.signum = 15  # as the signal handler would

    part = train_one_epoch(model2, opt2, loss_fn, src, accelerator=acc, kind="t", epoch=0, where="t",
                           stop=stop, on_sync=StopAfter2())
    assert part.interrupted and part.next_step == 2 and part.count == 16
    state = {k: v.clone() for k, v in model2.state_dict().items()}
    ostate = opt2.state_dict()
    model3, opt3 = fresh()
    model3.load_state_dict(state)
    opt3.load_state_dict(ostate)
    rest = train_one_epoch(model3, opt3, loss_fn, src, accelerator=acc, kind="t", epoch=0, where="t",
                           start_step=part.next_step, loss_sum=part.loss_sum, count=part.count)
    assert rest.next_step == 5 and rest.count == 40 and rest.loss_sum == full.loss_sum
    for k, v in model.state_dict().items():
        assert torch.equal(v, model3.state_dict()[k]), k


def test_non_finite_loss_names_stage_epoch_and_step(acc):
    model, opt = fresh()
    with pytest.raises(NonFiniteLossError, match=r"in finetune P=0: epoch 3, step 2"):
        train_one_epoch(model, opt, loss_fn, Source(), accelerator=acc, kind="finetune", epoch=3,
                        where="finetune P=0", step_hook=faulty().Fault("nan@finetune:3:2"))


def test_bad_fault_spec_is_rejected():
    with pytest.raises(ValueError, match="ACTION@KIND:EPOCH:STEP"):
        faulty().Fault("nan-finetune")


def test_evaluate_counts_every_prediction_once_and_restores_train_mode(acc):
    src = Source()
    model, _ = fresh()
    model.train()
    cm = confusion_pass(model, src, lambda m, b: (m(b[0]).argmax(1), b[1]), accelerator=acc, num_classes=2)
    assert model.training and cm.dtype == torch.int64 and int(cm.sum()) == 40
    expect = torch.zeros(2, 2, dtype=torch.int64)
    for i in range(len(src)):
        x, y, _ = src[i]
        for t, p in zip(y, model(x).argmax(1)):
            expect[t, p] += 1
    assert torch.equal(cm, expect)


def test_deferred_loss_checks_as_on_gpus_keep_totals_and_name_the_first_bad_step(acc):
    """GPUs check the losses every 25 steps (no host sync per step); the totals must not change
    and a NaN must still be reported at the step where it happened, not where it was noticed."""
    model, opt = fresh()
    every = train_one_epoch(model, opt, loss_fn, Source(), accelerator=acc, kind="t", epoch=0, where="t")
    model2, opt2 = fresh()
    calls = []
    deferred = train_one_epoch(model2, opt2, loss_fn, Source(), accelerator=acc, kind="t", epoch=0, where="t",
                               sync_every=3, on_sync=lambda step, loss, ips: calls.append(step))
    assert calls == [2, 4]  # after 3 steps, then at the epoch's end (5 steps)
    assert deferred.count == every.count == 40 and deferred.loss_sum == pytest.approx(every.loss_sum, rel=1e-12)
    model3, opt3 = fresh()
    with pytest.raises(NonFiniteLossError, match=r"epoch 0, step 1"):
        train_one_epoch(model3, opt3, loss_fn, Source(), accelerator=acc, kind="t", epoch=0, where="t",
                        sync_every=25, step_hook=faulty().Fault("nan@t:0:1"))
