"""A/B of the CPU fast-path choices, interleaved in one process (benchmarks/README.md, "Fast path").

    .venv/bin/python benchmarks/ab_cpu.py [--batch 32] [--threads 1] [--rounds 5] [--compile]

Every variant is timed once per round, in turn, so all see the same machine; rates are images per
CPU-second of this process divided by the threads (exact with one thread, and unaffected by other
jobs sharing the cores), median over rounds, and relative to the first row of the same dtype.
Variants: attention as first written (SDPA on qkv[i]), SDPA on unbind (the current fp32 path),
the explicit product (the current bf16 path on CPUs); evaluation under no_grad vs inference_mode;
vit-pytorch's ViT.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from diminish.core import fastpath
from diminish.core.model import Attention, Classifier, ViNy

CURRENT = Attention.forward


def sdpa_index(self, x):  # the first version
    b, n, _ = x.shape
    qkv = self.to_qkv(self.norm(x)).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4)
    out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
    return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


def sdpa_unbind(self, x):
    b, n, _ = x.shape
    q, k, v = self.to_qkv(self.norm(x)).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    out = F.scaled_dot_product_attention(q, k, v)
    return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


def sdpa_contiguous(self, x):  # q, k, v copied to contiguous (B, H, N, Dh) blocks first
    b, n, _ = x.shape
    qkv = self.to_qkv(self.norm(x)).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4).contiguous()
    out = F.scaled_dot_product_attention(*qkv.unbind(0))
    return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


def sdpa_math(self, x):  # torch's reference (unfused) SDPA backend
    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.MATH):
        return sdpa_unbind(self, x)


def explicit(self, x):  # the written-out product (the current path under bf16 on a CPU)
    b, n, _ = x.shape
    q, k, v = self.to_qkv(self.norm(x)).reshape(b, n, 3, self.heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
    out = ((q * q.shape[-1] ** -0.5) @ k.transpose(-1, -2)).softmax(-1) @ v
    return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--compile", action="store_true",
                   help="add torch.compile rows, default and max-autotune (about a minute each)")
    p.add_argument("--only", default="", help="comma-separated row-name fragments to keep")
    a = p.parse_args()
    cpu = torch.device("cpu")
    fastpath.setup_device(cpu, a.threads)
    torch.manual_seed(0)
    x = torch.randn(a.batch, 3, 128, 128)
    y = torch.randint(0, 6, (a.batch,))
    model = Classifier(ViNy(), 6)
    opt = fastpath.make_optimizer(model.parameters(), 1e-4, 0.0, cpu)

    def train(attn, precision, m=model, o=opt):
        def step():
            Attention.forward = attn
            with fastpath.autocast(cpu, precision):
                loss = F.cross_entropy(m(x), y)
            o.zero_grad(set_to_none=True)
            loss.backward()
            o.step()
        return step

    def evaluate(ctx):
        def step():
            Attention.forward = CURRENT
            with ctx():
                model(x).argmax(1)
        return step

    rows = {}
    for name, dt in (("fp32", "no"), ("bf16", "bf16")):  # row name, --mixed-precision word
        rows[f"train {name} attention=sdpa qkv[i] (first)"] = train(sdpa_index, dt)
        rows[f"train {name} attention=sdpa unbind"] = train(sdpa_unbind, dt)
        rows[f"train {name} attention=explicit"] = train(explicit, dt)
        rows[f"train {name} attention=sdpa contiguous"] = train(sdpa_contiguous, dt)
        rows[f"train {name} attention=sdpa math backend"] = train(sdpa_math, dt)
        if a.compile:
            cm = torch.compile(model)
            rows[f"train {name} current + torch.compile"] = train(CURRENT, dt, cm)
            cm = torch.compile(model, mode="max-autotune-no-cudagraphs")  # inductor's C++ GEMM templates
            rows[f"train {name} current + compile max-autotune"] = train(CURRENT, dt, cm)
    rows["eval fp32 no_grad"] = evaluate(torch.no_grad)
    rows["eval fp32 inference_mode"] = evaluate(torch.inference_mode)
    try:
        from vit_pytorch import ViT

        ref = ViT(image_size=128, patch_size=16, num_classes=6, dim=128, depth=12, heads=8, mlp_dim=512,
                  dim_head=64)
        ropt = torch.optim.AdamW(ref.parameters(), lr=1e-4)
        rows["train fp32 vit-pytorch ViT"] = train(CURRENT, "no", ref, ropt)
        rows["train bf16 vit-pytorch ViT"] = train(CURRENT, "bf16", ref, ropt)
    except ImportError:
        print("vit-pytorch not installed: reference rows skipped")
    if a.only:
        rows = {k: f for k, f in rows.items() if any(o in k for o in a.only.split(","))}
    for f in rows.values():  # warm-up (and compile)
        f()
    rates = {k: [] for k in rows}
    for _ in range(a.rounds):
        for k, f in rows.items():
            c = time.process_time()
            f()
            rates[k].append(a.batch / ((time.process_time() - c) / a.threads))
    base = {}
    for k, r in rates.items():
        group = k.split(" ")[0] + " " + k.split(" ")[1]
        base.setdefault(group, statistics.median(r))
        print(f"{k:<48} {statistics.median(r):8.1f} img/s   x{statistics.median(r) / base[group]:.2f}")


if __name__ == "__main__":
    main()
