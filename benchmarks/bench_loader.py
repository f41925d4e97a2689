"""Is the data loader ever the bottleneck? Loader vs model-training throughput, in one run.

Measures (1) the training loader (memory-mapped store -> band selection, standardisation,
random flip/rotation, batching; no model) in images/s and (2) a few Adam steps of a model
(U-Net by default) on the same batches, in images/s, and prints both. Uses ``data/store`` when
it exists, otherwise a synthetic store it writes to a temporary directory.

    python -m benchmarks.bench_loader [--store data/store] [--model unet] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from mmls.core.config import load_params
from mmls.data.dataset import TileDataset, epoch_plan, make_loader
from mmls.data.normalization import Standardizer, band_stats
from mmls.data.store import load_store
from mmls.nn.device import resolve_device
from mmls.nn.models import build_model, read_model
from tests.stores import write_synthetic_store

ROOT = Path(__file__).resolve().parents[1]


def model_config(name: str) -> dict:
    """``models.<name>`` from params.yaml."""
    return read_model(load_params(ROOT / "params.yaml"), name)


def loader_throughput(ds: TileDataset, batch_size: int, workers: int, min_images: int) -> float:
    """Images/s of the augmented training loader, over whole epochs, >= ``min_images`` images."""
    gen = torch.Generator().manual_seed(0)
    seen, t0 = 0, time.perf_counter()
    while seen < min_images:
        for x, _y in make_loader(ds, epoch_plan(len(ds), batch_size, gen, True), workers):
            seen += len(x)
    return seen / (time.perf_counter() - t0)


def train_throughput(
    ds: TileDataset, name: str, batch_size: int, steps: int, device: torch.device
) -> float:
    """Images/s of Adam steps (forward, cross entropy, backward, step) after one warm-up step."""
    torch.manual_seed(0)
    model = build_model(name, model_config(name), in_channels=len(ds.band_idx)).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    batches = [b for _ in range(steps + 1) for b in epoch_plan(len(ds), batch_size, gen, True)]
    loader = iter(make_loader(ds, batches[: steps + 1], 0))

    def step() -> int:
        x, y = next(loader)
        x, y = x.to(device), y.to(device)
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        return len(x)

    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    n = sum(step() for _ in range(steps))
    if device.type == "cuda":
        torch.cuda.synchronize()
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", type=Path, default=ROOT / "data" / "store")
    parser.add_argument("--model", default="unet")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4, help="timed training steps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--synthetic-tiles", type=int, default=128)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    with tempfile.TemporaryDirectory() as tmp:
        store = args.store
        if not (store / "meta.json").is_file():
            store = Path(tmp) / "store"
            write_synthetic_store(store, {"train": args.synthetic_tiles}, size=128)
            print(f"no store at {args.store}: using a synthetic one ({args.synthetic_tiles} tiles)")
        st = load_store(store)
        rows, idx = st.rows("train"), list(range(len(st.bands)))
        mean, std = band_stats(st.images, rows, idx, st.nodata)
        ds = TileDataset(st.images, st.masks, rows, idx, Standardizer(mean, std, st.nodata))
        size = st.size
        loader_ips = loader_throughput(ds, args.batch_size, args.workers, 4 * len(ds))
        train_ips = train_throughput(ds, args.model, args.batch_size, args.steps, device)

    print(f"store: {store} ({len(ds)} train tiles, {len(idx)} x {size} x {size})")
    print(f"threads={torch.get_num_threads()} batch={args.batch_size} device={device}")
    print(f"loader (augmented, workers={args.workers}): {loader_ips:8.1f} img/s")
    print(f"{args.model} training ({args.steps} steps):    {train_ips:8.1f} img/s")
    print(f"loader / training = {loader_ips / train_ips:.1f}x")


if __name__ == "__main__":
    main()
