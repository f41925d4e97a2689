"""Scoring a model on store rows: per-patch counts, pooled metrics and latency (Sec. 4.1).

Counting happens once, per patch (:func:`mmls.metrics.patch_counts`); the split's confusion is
the sum of those rows, so the scores do not depend on the batch size and the block bootstrap
(:mod:`mmls.stats`) resamples exactly what the metrics JSON pools. Latency is the median, over
repeats after a warm-up, of one forward pass (plus argmax) on ONE image already on the device,
synchronised on CUDA.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from mmls.config import ParamError, Section
from mmls.context import center, rows_mask
from mmls.dataset import TileDataset, make_loader, sequential_batches
from mmls.device import autocast, device_label, resolve_device, set_threads
from mmls.errors import InputError
from mmls.io import PathLike, write_json
from mmls.layout import MASKS_SUFFIX, PATCHES_SUFFIX, SPLITS
from mmls.metrics import Confusion, metrics_record, patch_counts
from mmls.patch_files import patch_table, write_masks, write_patch_table
from mmls.predictor import Predictor, to_device
from mmls.recipe import RecipeConfig, calibrate_threshold
from mmls.store import Store
from mmls.tta import landslide_probability


class EvalConfig(Section):
    """The ``eval`` params section."""

    splits: list[str]  # the labelled splits each trained model is scored on
    device: str  # auto = cuda when available, else cpu
    threads: int | None  # fixed thread count for the scoring pass and the latency measurement
    batch_size: int
    latency_warmup: int  # batch-1 forward passes discarded before timing
    latency_repeats: int  # latency_s = median over these batch-1 forward passes

    def check(self) -> None:
        unknown = sorted(set(self.splits) - set(SPLITS))
        if unknown or not self.splits:
            raise ParamError("splits", f"must be a non-empty list of {list(SPLITS)}")
        if self.batch_size < 1:
            raise ParamError("batch_size", "must be >= 1")
        if self.latency_warmup < 0:
            raise ParamError("latency_warmup", "must be >= 0")
        if self.latency_repeats < 1:
            raise ParamError("latency_repeats", "must be >= 1")
        if self.threads is not None and self.threads < 1:
            raise ParamError("threads", "must be null or >= 1")


@dataclass(frozen=True)
class EvalResult:
    """One pass over some rows: N x 4 per-patch counts, mean per-pixel cross entropy and (when
    asked for) the predicted labels (N x H x W uint8) and landslide probabilities (float32),
    in row order; all on the scored patch (the centre of a context window)."""

    counts: np.ndarray
    loss: float
    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None

    @property
    def confusion(self) -> Confusion:
        return Confusion.of(self.counts)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    dataset: TileDataset,
    device: torch.device,
    batch_size: int,
    channels_last: bool = False,
    num_workers: int = 0,
    *,
    keep_labels: bool = False,
    keep_probabilities: bool = False,
    tta: bool = False,
    threshold: float | None = None,
    amp: str = "fp32",
) -> EvalResult:
    """Per-patch counts and mean cross entropy of ``model`` (eval mode) over ``dataset``.

    Labels are the argmax of the two logits (the paper's) unless ``tta`` or a ``threshold`` is
    given: then landslide where the (test-time-augmented) probability exceeds ``threshold``
    (0.5 when None). The loss (the training's validation figure) comes with argmax labels only;
    when probabilities are asked for it is NaN, which saves a forward pass per batch.
    """
    model.eval()
    loader = make_loader(
        dataset, sequential_batches(len(dataset), batch_size), num_workers, device.type == "cuda"
    )
    c = dataset.context_px
    counts: list[np.ndarray] = [np.zeros((0, 4), np.int64)]
    kept: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    loss_sum = 0.0
    for x, y in loader:
        y = y.to(device, non_blocking=True)
        x = to_device(x, device, channels_last)
        with autocast(device, amp):
            if tta or threshold is not None or keep_probabilities:
                logits, prob = None, center(landslide_probability(model, x, tta), c)
            else:
                logits, prob = model(x), None
        if logits is not None:
            loss_sum += float(nn.functional.cross_entropy(logits.float(), y, reduction="sum"))
        y = center(y, c)
        if int(y.min()) < 0 or int(y.max()) > 1:
            raise ValueError("scored targets must be 0/1: an unlabelled or margin pixel is scored")
        if logits is not None:
            labels = center(logits, c).argmax(1).to(torch.uint8).cpu().numpy()
        else:
            labels = (
                (prob > (0.5 if threshold is None else threshold)).to(torch.uint8).cpu().numpy()
            )
        counts.append(patch_counts(labels, y.cpu().numpy()))
        if keep_labels:
            kept.append(labels)
        if keep_probabilities and prob is not None:
            probs.append(prob.cpu().numpy())
    all_counts = np.concatenate(counts)
    n_pixels = int(all_counts.sum())
    with_loss = not (tta or threshold is not None or keep_probabilities)
    return EvalResult(
        all_counts,
        loss_sum / n_pixels if n_pixels and with_loss else float("nan"),
        np.concatenate(kept) if keep_labels and kept else None,
        np.concatenate(probs) if keep_probabilities and probs else None,
    )


@torch.inference_mode()
def measure_latency(
    predictor: Predictor, image: torch.Tensor, warmup: int = 5, repeats: int = 20, tta: bool = False
) -> float:
    """Median seconds of one batch-1 forward pass (+ argmax; with ``tta`` the 8 passes and the
    averaged probability) after ``warmup`` passes."""
    model, device = predictor.model, predictor.device
    model.eval()
    x = to_device(image.unsqueeze(0), device, predictor.channels_last)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def once() -> None:
        with autocast(device, predictor.amp):
            if tta:
                landslide_probability(model, x, True)
            else:
                model(x).argmax(1)

    for _ in range(warmup):
        once()
    sync()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        once()
        sync()
        times.append(time.perf_counter() - t0)
    return float(statistics.median(times))


@dataclass(frozen=True)
class Decision:
    """How a model's probabilities become labels at evaluation (recipe.tta / .threshold)."""

    tta: bool = False
    threshold: float | None = None  # None: the argmax of the two logits (the paper's)
    source: str = "argmax (paper)"


#: The paper's decision: the argmax of the two logits, no test-time augmentation.
ARGMAX = Decision()


def calibrate(
    predictor: Predictor,
    store: Store,
    rows: Sequence[int],
    cfg: EvalConfig,
    tta: bool,
    context_rows: Sequence[int] = (),
) -> Decision:
    """The threshold maximising pooled mIoU on ``rows`` (the split that selected the
    checkpoint; never the scored one); context windows from ``rows`` and ``context_rows``
    (the training rows) only."""
    data = predictor.dataset(store, rows, rows_mask(len(store.patches), rows, context_rows))
    result = evaluate(
        predictor.model,
        data,
        predictor.device,
        cfg.batch_size,
        predictor.channels_last,
        keep_probabilities=True,
        tta=tta,
        amp=predictor.amp,
    )
    assert result.probabilities is not None
    masks = np.stack([center(data.mask(i), data.context_px) for i in range(len(data))])
    threshold, miou = calibrate_threshold(result.probabilities, masks)
    return Decision(tta, threshold, f"calibrated on {len(rows)} patches (mIoU {miou:.4f})")


def decide(
    recipe: RecipeConfig,
    predictor: Predictor,
    store: Store,
    selection_rows: Sequence[int],
    cfg: EvalConfig,
    training_rows: Sequence[int] = (),
) -> Decision:
    """The decision a recipe asks for; ``calibrate`` uses ``selection_rows`` (with context
    from them and ``training_rows``)."""
    if recipe.threshold == "calibrate":
        return calibrate(predictor, store, selection_rows, cfg, recipe.tta, training_rows)
    if recipe.threshold == 0.5 and not recipe.tta:
        return ARGMAX
    return Decision(recipe.tta, float(recipe.threshold), "fixed (recipe.threshold)")


def decide_on_val(
    recipe: RecipeConfig, predictor: Predictor, store: Store, cfg: EvalConfig
) -> Decision:
    """The paper protocol's decision: calibrated (if the recipe asks) on the store's val split,
    the split that selected the checkpoint, with context from train and val."""
    if recipe.threshold == "calibrate" and "val" in cfg.splits:
        raise InputError(
            "params.yaml:eval.splits",
            "lists val, the split that calibrates the threshold (recipe.threshold: calibrate): "
            "a calibrated score on it would be fitted to it; score other splits or use the cv "
            "protocol",
        )
    where = str(store.path)
    val, train = store.labelled_rows("val", where), store.labelled_rows("train", where)
    return decide(recipe, predictor, store, val, cfg, train)


@dataclass(frozen=True)
class Scored:
    """A checkpoint scored on some rows: the flat metrics record, per-patch table, labels."""

    record: dict[str, Any]
    patches: pd.DataFrame
    labels: np.ndarray


def score(
    predictor: Predictor,
    store: Store,
    rows: Sequence[int],
    cfg: EvalConfig,
    train_time_h: float | None,
    decision: Decision = ARGMAX,
) -> Scored:
    """Score ``predictor`` on store ``rows``: pooled metrics, per-patch counts, latency."""
    data = predictor.dataset(store, rows)
    result = evaluate(
        predictor.model,
        data,
        predictor.device,
        cfg.batch_size,
        predictor.channels_last,
        keep_labels=True,
        tta=decision.tta,
        threshold=decision.threshold,
        amp=predictor.amp,
    )
    latency = measure_latency(
        predictor, data[0][0], cfg.latency_warmup, cfg.latency_repeats, decision.tta
    )
    record = metrics_record(
        result.confusion, len(data), latency, device_label(predictor.device), train_time_h
    )
    if decision != ARGMAX:
        record.update(tta=decision.tta, threshold=decision.threshold, decision=decision.source)
    table = patch_table(store.patches.iloc[np.asarray(rows)], result.counts)
    assert result.labels is not None
    return Scored(record, table, result.labels)


def open_predictor(checkpoint: PathLike, cfg: EvalConfig) -> Predictor:
    """The checkpoint on ``eval.device`` with ``eval.threads`` fixed."""
    set_threads(cfg.threads)
    return Predictor.load(checkpoint, resolve_device(cfg.device, "params.yaml:eval.device"))


def write_scored(scored: Scored, metrics_json: PathLike, predictions_dir: Path, split: str) -> None:
    """The metrics JSON, and ``<split>.patches.csv`` + ``<split>.npz`` in ``predictions_dir``."""
    write_json(metrics_json, scored.record)
    write_patch_table(predictions_dir / f"{split}{PATCHES_SUFFIX}", scored.patches)
    write_masks(predictions_dir / f"{split}{MASKS_SUFFIX}", scored.patches, scored.labels)
