"""Training-step time of the paper's U-Net in fp32 and under bf16 autocast on this CPU, against
the machine's GEMM peak (issue: more epochs per CPU-hour).

- peak: the best of ``--repeats`` square float32 (and bfloat16) matrix products of side
  ``--gemm``, in GFLOP/s (2 n^3 / t);
- step: forward + backward + Adam step of smp U-Net (resnet34, 7 bands, 128 x 128, batch 16,
  channels_last) with ``train.threads`` threads, the two precisions interleaved over
  ``--rounds``; FLOPs of one step counted by torch's FlopCounterMode, so achieved GFLOP/s =
  FLOPs / step time.

    python -m benchmarks.bench_bf16 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import segmentation_models_pytorch as smp
import torch
from torch.utils.flop_counter import FlopCounterMode


def gemm_gflops(n: int, dtype: torch.dtype, repeats: int) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    torch.matmul(a, b)
    best = min(_timed(lambda: torch.matmul(a, b)) for _ in range(repeats))
    return 2 * n**3 / best / 1e9


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def make_step(bf16: bool):
    torch.manual_seed(0)
    model = smp.Unet("resnet34", encoder_weights=None, in_channels=7, classes=2)
    model = model.to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(16, 7, 128, 128).to(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (16, 128, 128))

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    return step


def step_flops() -> int:
    step = make_step(False)
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--gemm", type=int, default=2048)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    peak32 = gemm_gflops(args.gemm, torch.float32, args.repeats)
    peak16 = gemm_gflops(args.gemm, torch.bfloat16, args.repeats)
    flops = step_flops()
    steps = {"fp32": make_step(False), "bf16": make_step(True)}
    times: dict[str, list[float]] = {k: [] for k in steps}
    for step in steps.values():
        step()  # warm-up (oneDNN picks its kernels)
    for _ in range(args.rounds):
        for name, step in steps.items():
            times[name].extend(_timed(step) for _ in range(args.steps))
    out = {
        "threads": args.threads,
        "gemm_fp32_gflops": round(peak32, 1),
        "gemm_bf16_gflops": round(peak16, 1),
        "step_gflop": round(flops / 1e9, 2),
    }
    for name, ts in times.items():
        med = statistics.median(ts)
        out[f"{name}_step_s"] = round(med, 3)
        out[f"{name}_achieved_gflops"] = round(flops / med / 1e9, 1)
    out["bf16_speedup"] = round(out["fp32_step_s"] / out["bf16_step_s"], 2)
    out["fp32_share_of_fp32_peak"] = round(out["fp32_achieved_gflops"] / peak32, 3)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
