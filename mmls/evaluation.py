"""Scoring a model on a store split: pooled metrics and per-image latency (MMLSv2 Sec. 4.1).

Confusion counts are accumulated over every pixel of the split (see :mod:`mmls.metrics`), so the
scores do not depend on the batch size. Latency is the median, over repeats after a warm-up, of
one forward pass (plus argmax) on ONE image already on the device, synchronised on CUDA.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from mmls.bands import band_indices
from mmls.errors import InputError
from mmls.io import PathLike, read_json
from mmls.metrics import Confusion, check_total, confusion_from_logits, metrics_record
from mmls.models import load_checkpoint, resolve_device
from mmls.stats import write_patch_outputs
from mmls.store import StoreSplit, TileDataset, load_split, make_loader


@dataclass(frozen=True)
class EvalResult:
    """Pooled confusion, mean per-pixel cross entropy and image count of one pass over a split,
    and (when asked for) the predicted labels, N x H x W uint8 in dataset order."""

    confusion: Confusion
    loss: float
    n_images: int
    predictions: np.ndarray | None = None


def dataset_for(split: StoreSplit, meta: Mapping[str, Any]) -> TileDataset:
    """The :class:`TileDataset` of ``split`` with a checkpoint's bands and normalisation."""
    idx = band_indices(meta["bands"], available=split.bands, source="checkpoint bands")
    norm = meta["normalization"]
    return TileDataset(split.images, split.masks, idx, norm["mean"], norm["std"], split.nodata)


def to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """Move an image batch to ``device`` in the configured memory layout."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return x.to(device, non_blocking=True, memory_format=fmt)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    dataset: TileDataset,
    device: torch.device,
    batch_size: int,
    channels_last: bool = False,
    num_workers: int = 0,
    keep_predictions: bool = False,
) -> EvalResult:
    """Pooled confusion counts and mean cross entropy of ``model`` (eval mode) over ``dataset``;
    with ``keep_predictions`` also the argmax labels of every image."""
    model.eval()
    n = len(dataset)
    batches = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
    total = Confusion()
    loss_sum = 0.0
    height = width = 0
    loader = make_loader(dataset, batches, num_workers, pin=device.type == "cuda")
    kept: list[np.ndarray] = []
    for x, y in loader:
        x = to_device(x, device, channels_last)
        y = y.to(device, non_blocking=True)
        logits = model(x)
        loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        total = total + confusion_from_logits(logits, y)
        height, width = y.shape[-2:]
        if keep_predictions:
            kept.append(logits.argmax(1).to(torch.uint8).cpu().numpy())
    if n:
        check_total(total, n, height, width)
    n_pixels = total.total
    predictions = np.concatenate(kept) if keep_predictions and kept else None
    return EvalResult(total, loss_sum / n_pixels if n_pixels else float("nan"), n, predictions)


def device_label(device: torch.device) -> str:
    """Readable device of a measurement, e.g. ``cpu (2 threads)`` or ``cuda (NVIDIA A100)``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({torch.get_num_threads()} threads)"


@torch.inference_mode()
def measure_latency(
    model: nn.Module,
    image: torch.Tensor,
    device: torch.device,
    warmup: int = 5,
    repeats: int = 20,
    channels_last: bool = False,
) -> float:
    """Median seconds of one batch-1 forward pass (+ argmax) after ``warmup`` passes."""
    model.eval()
    x = to_device(image.unsqueeze(0), device, channels_last)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(warmup):
        model(x).argmax(1)
    sync()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        model(x).argmax(1)
        sync()
        times.append(time.perf_counter() - t0)
    return float(statistics.median(times))


@dataclass(frozen=True)
class EvalConfig:
    """The ``eval`` params section."""

    device: str = "auto"
    threads: int | None = None
    batch_size: int = 16
    latency_warmup: int = 5
    latency_repeats: int = 30

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> EvalConfig:
        """Read ``params['eval']`` (every key optional)."""
        section = params.get("eval") or {}
        unknown = sorted(set(section) - {f.name for f in fields(cls)})
        if unknown:
            raise InputError("params.yaml", f"unknown eval key(s) {unknown}")
        cfg = cls(**section)
        if cfg.batch_size < 1 or cfg.latency_warmup < 0 or cfg.latency_repeats < 1:
            raise InputError("params.yaml", "eval.batch_size/latency_repeats must be >= 1")
        if cfg.threads is not None and cfg.threads < 1:
            raise InputError("params.yaml", "eval.threads must be null or >= 1")
        return cfg

    def setup(self) -> torch.device:
        """Fix the torch thread count; return the device (``auto``: CUDA when available)."""
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        return resolve_device(self.device)


def evaluate_checkpoint(
    checkpoint: PathLike,
    store_dir: PathLike,
    split: str,
    device: torch.device,
    cfg: EvalConfig,
    train_time_h: float | None,
    patch_outputs: tuple[PathLike, PathLike | None, pd.DataFrame] | None = None,
) -> dict[str, Any]:
    """Flat metrics record (docs/design.md) of a checkpoint on one store split.

    ``patch_outputs`` = (patches_csv, predictions_npz or None, splits table): also write the
    per-patch counts (for the block bootstrap) and predicted masks (for the qualitative figures)
    through :func:`mmls.stats.write_patch_outputs`.
    """
    model, meta = load_checkpoint(checkpoint, device)
    channels_last = bool(meta.get("train_config", {}).get("channels_last", False))
    if channels_last:
        model.to(memory_format=torch.channels_last)
    store_split = load_split(store_dir, split)
    data = dataset_for(store_split, meta)
    if len(data) == 0:
        raise InputError(Path(store_dir) / f"{split}_images.npy", "the split has no tiles")
    result = evaluate(
        model, data, device, cfg.batch_size, channels_last, keep_predictions=bool(patch_outputs)
    )
    if patch_outputs is not None:
        patches_csv, predictions_npz, splits = patch_outputs
        table = write_patch_outputs(
            patches_csv,
            predictions_npz,
            store_split.index,
            splits,
            result.predictions,
            np.asarray(store_split.masks),
        )
        summed = tuple(int(table[k].sum()) for k in ("tp", "fp", "fn", "tn"))
        pooled = result.confusion
        if summed != (pooled.tp, pooled.fp, pooled.fn, pooled.tn):
            raise RuntimeError(f"per-patch counts {summed} do not add up to the pooled {pooled}")
    latency = measure_latency(
        model, data[0][0], device, cfg.latency_warmup, cfg.latency_repeats, channels_last
    )
    return metrics_record(
        result.confusion, result.n_images, latency, device_label(device), train_time_h
    )


def summarize(model: str, eval_dir: PathLike) -> dict[str, Any]:
    """``metrics/summary.json``: the studied model's test and isolated-test mIoU and IoU_FG."""
    out: dict[str, Any] = {"model": model}
    for split in ("test", "isolated_test"):
        record = read_json(Path(eval_dir) / split / f"{model}.json")
        out[f"{split}_miou"] = record["miou"]
        out[f"{split}_iou_fg"] = record["iou_fg"]
    out["miou_drop"] = out["test_miou"] - out["isolated_test_miou"]
    return out
