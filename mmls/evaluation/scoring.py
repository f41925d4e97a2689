"""Scoring a model on store rows: per-patch counts, pooled metrics and latency (Sec. 4.1).

Counting happens once, per patch (:func:`mmls.metrics.confusion.patch_counts`); the split's
confusion is the sum of those rows, so the scores do not depend on the batch size and the block
bootstrap (:mod:`mmls.metrics.bootstrap`) resamples exactly what the metrics JSON pools. Latency
is the median, over repeats after a warm-up, of one forward pass (plus argmax) on ONE image
already on the device, synchronised on CUDA.
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

from mmls.core.errors import InputError
from mmls.core.io import PathLike, write_json
from mmls.core.paths import MASKS_SUFFIX, PATCHES_SUFFIX
from mmls.data.context import center, rows_mask
from mmls.data.store import Store
from mmls.evaluation.config import EvalConfig
from mmls.inference.decision import ARGMAX, Decision
from mmls.inference.predictor import Predictor
from mmls.metrics.confusion import metrics_record
from mmls.metrics.patch_files import patch_table, write_masks, write_patch_table
from mmls.metrics.threshold import calibrate_threshold
from mmls.nn.device import autocast, device_label, resolve_device, set_threads, to_device
from mmls.nn.probability import landslide_probability
from mmls.nn.recipe import RecipeConfig
from mmls.nn.validation import evaluate


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
