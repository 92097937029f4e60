"""The human-readable report: :func:`format_table` turns :func:`diminish.bench.run`'s result into text.

One header line (device, torch, dtype, compile, load average), the matmul reference, one row per
stage (on a CPU with the cpu-time columns beside the wall-clock ones), then whichever optional
rows were measured (reference, data path, concurrent runs) and the projected grid time.
"""

from __future__ import annotations

import math
import statistics


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
        parts = ", ".join(f"{k}: {v['images_per_s']:,.1f} img/s" + (f" (MFU {v['mfu']:.0%})" if "mfu" in v else "")
                          for k, v in p.items() if k != "speedup")
        lines.append(f"fine-tuning processes x threads: {parts} (speedup {p['speedup']:.2f}x)")
    sh = res.get("shared_cpu")
    if sh:
        lines.append(f"finetune beside {sh['neighbours']} busy process(es): {sh['shared_images_per_s']:,.1f} img/s, "
                     f"alone {sh['alone_images_per_s']:,.1f} in the same rounds = {sh['ratio']:.0%} (fair share "
                     f"{sh['fair_share']:.0%}; {sh['threads']} threads, {sh['cores']} cores; OpenMP wait: "
                     f"{sh['openmp_wait']}; load {sh['load_average_before']} -> {sh['load_average_after']})")
    pr = res["projection"]
    secs = ", ".join(f"{s} {v / 3600:,.1f} h" for s, v in pr["seconds"].items() if v is not None)
    total = "n/a (not all stages timed)" if pr["total_hours"] is None else f"{pr['total_hours']:,.1f} h"
    lines.append(f"paper grid ({pr['total_image_steps'] / 1e6:,.1f}M image-steps): {secs}; total {total}")
    ps = res.get("projection_stacked_finetune")
    if ps and ps["total_hours"] is not None:
        lines.append(f"  with fine-tuning runs stacked {res['many']['stacked']['k']} at a time: "
                     f"total {ps['total_hours']:,.1f} h")
    return "\n".join(lines)
