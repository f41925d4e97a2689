"""channels_last vs the default (contiguous) memory layout for each model's training on CPU.

For every entry of `models` in params.yaml: Adam steps (forward, cross entropy, backward, step)
on batches of the quick profile (batch 16, 7 x 128 x 128), in both layouts, interleaved
(default, channels_last, default, ...) so that a noisy machine slows both alike; the median step
time of each layout and their ratio are printed. The first steps of each layout are warm-up.

    python -m benchmarks.bench_channels_last [--threads 2] [--steps 6] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from mmls.core.config import load_params
from mmls.nn.models import build_model, read_model

ROOT = Path(__file__).resolve().parents[1]


def step_times(name: str, cfg: dict, channels_last: bool, steps: int, batch: int) -> list[float]:
    torch.manual_seed(0)
    model = build_model(name, cfg, 7, bands=None).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 7, 128, 128).contiguous(memory_format=fmt)
    y = torch.randint(0, 2, (batch, 128, 128))
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return times[1:]  # the first step is warm-up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    params = load_params(ROOT / "params.yaml")
    print(f"threads={args.threads} batch={args.batch} steps={args.steps} x rounds={args.rounds}")
    print("| model | default s/step | channels_last s/step | channels_last / default |")
    print("|---|---|---|---|")
    for name in params["models"]:
        cfg = read_model(params, name)
        runs: dict[bool, list[float]] = {False: [], True: []}
        for _ in range(args.rounds):
            for layout in (False, True):
                runs[layout] += step_times(name, cfg, layout, args.steps, args.batch)
        d, c = statistics.median(runs[False]), statistics.median(runs[True])
        print(f"| {name} | {d:.3f} | {c:.3f} | {c / d:.2f} |", flush=True)


if __name__ == "__main__":
    main()
