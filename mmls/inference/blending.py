"""Blended probability rows of a region: each window's prediction, weighted, summed, normalised.

Windows (laid out by :mod:`mmls.inference.windows`) whose pixels are all nodata are skipped;
inside the other windows nodata pixels are set to 0 after standardisation, exactly as
:class:`mmls.data.store.TileDataset` does in training.

Each window's landslide probability (``softmax(logits)[:, 1]``) is accumulated with a separable
weight ``w(i) * w(j)`` where ``w`` is a linear ramp over ``overlap_px`` pixels from each window
edge (``w(i) = min(1, (i + 0.5) / o, (size - i - 0.5) / o)``, all ones when ``o = 0``), and the
sum is divided by the accumulated weight. Two neighbours at the regular stride have weights
summing to 1 across their overlap, so the map fades from one window into the next instead of
jumping (no seam); terminal windows overlap more and are normalised the same way. Every weight is
> 0, so a pixel covered by one window only gets that window's value.

The region is computed one row of windows (a strip of ``size`` rows) at a time: the accumulators
hold one strip (2 x ``size`` x width float32) and inputs are read per batch of windows, so memory
is bounded by the region's width. A source of rows (:data:`RowSource`) yields them in order:
:func:`local_rows` in this process, :mod:`mmls.inference.engine` on Dask workers; both go
through :func:`blended_rows`, so the map is bitwise the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import rasterio
from rasterio.windows import Window

from mmls.core.io import read_raster
from mmls.inference.predictor import Predictor
from mmls.inference.sinks import PROB_NODATA
from mmls.inference.windows import RowPlan


def ramp(size: int, overlap: int) -> np.ndarray:
    """1-D blending weight: linear ramp over ``overlap`` px from both ends, 1 in between."""
    if overlap == 0:
        return np.ones(size, np.float32)
    i = np.arange(size, dtype=np.float64) + 0.5
    return np.minimum(1.0, np.minimum(i, size - i) / overlap).astype(np.float32)


def blend_weights(size: int, overlap: int) -> np.ndarray:
    """Separable 2-D weight window (size x size, all > 0)."""
    w = ramp(size, overlap)
    return np.outer(w, w)


@dataclass
class Rows:
    """Blended probability (nodata outside valid pixels) and validity of consecutive pixel
    rows of the region, and the windows run / skipped to get them."""

    prob: np.ndarray
    valid: np.ndarray
    n_windows: int = 0
    n_skipped: int = 0


def read_strip(
    src: rasterio.io.DatasetReader,
    bands: Sequence[int],
    window: Window,
    context_px: int,
) -> np.ndarray:
    """The bands of ``window`` with ``context_px`` more pixels on each side. Context beyond the
    raster's edge reads as nodata (NaN when the raster declares none): missing, as in
    training, where a context pixel no allowed patch covers is missing too."""
    if context_px == 0:
        return read_raster(src, list(bands), window=window, out_dtype="float32")
    c = context_px
    wide = Window(
        window.col_off - c, window.row_off - c, window.width + 2 * c, window.height + 2 * c
    )
    fill = src.nodata if src.nodata is not None else np.nan
    return read_raster(
        src, list(bands), window=wide, out_dtype="float32", boundless=True, fill_value=fill
    )


def blended_rows(
    predictor: Predictor,
    src: rasterio.io.DatasetReader,
    bands: Sequence[int],
    plan: RowPlan,
    batch_size: int,
    a: int,
    b: int,
    tta: bool = False,
) -> Iterator[Rows]:
    """Window rows ``a .. b-1`` of ``plan``, one :class:`Rows` (its finished pixel rows) each.

    Window rows from :meth:`RowPlan.halo` on are computed first, not yielded, so that every
    yielded pixel is the same sum, in the same order, as in one pass over the whole region:
    any split of the rows into chunks gives a bitwise identical map (with the same thread count).
    A model with context (``predictor.context_px`` = c, recipe ``context_px``) sees each window
    with c more pixels of imagery on every side, as in training, and its probability is taken
    on the central window; ``tta`` averages the 8 flips/rotations (the recipe's decision).
    """
    size, width = plan.size, plan.width
    c = predictor.context_px
    standardize = predictor.standardizer(src.nodata)
    weights = blend_weights(size, plan.overlap)
    carry_p = carry_w = None
    for i in range(plan.halo(a), b):
        y = plan.ys[i]
        acc_p = np.zeros((size, width), np.float32)
        acc_w = np.zeros((size, width), np.float32)
        valid = np.zeros((size, width), bool)
        if carry_p is not None and carry_w is not None:
            acc_p[: len(carry_p)] = carry_p
            acc_w[: len(carry_w)] = carry_w
        n_windows = n_skipped = 0
        for j0 in range(0, len(plan.xs), batch_size):
            batch_x = plan.xs[j0 : j0 + batch_size]
            x0, x1 = batch_x[0], batch_x[-1] + size
            window = Window(plan.col_off + x0, plan.row_off + y, x1 - x0, size)
            data, bad = standardize(read_strip(src, bands, window, c))
            ok = ~bad[:, c : c + size, c : c + x1 - x0].any(axis=0)
            valid[:, x0:x1] = ok
            todo = [x for x in batch_x if ok[:, x - x0 : x - x0 + size].any()]
            n_windows += len(batch_x)
            n_skipped += len(batch_x) - len(todo)
            if todo:
                stack = np.stack([data[:, :, x - x0 : x - x0 + size + 2 * c] for x in todo])
                prob = predictor.probabilities(stack, tta)
                if c:
                    prob = prob[:, c : c + size, c : c + size]
                for k, x in enumerate(todo):
                    acc_p[:, x : x + size] += prob[k] * weights
                    acc_w[:, x : x + size] += weights
        nxt = plan.ys[i + 1] if i + 1 < len(plan.ys) else plan.height
        done = nxt - y
        if i >= a:
            ok_rows = valid[:done]
            if (acc_w[:done][ok_rows] <= 0).any():  # cannot happen: see the module docstring
                raise AssertionError("a valid pixel is covered by no window")
            with np.errstate(invalid="ignore", divide="ignore"):
                blended = np.where(ok_rows, acc_p[:done] / acc_w[:done], np.float32(PROB_NODATA))
            yield Rows(blended.astype(np.float32), ok_rows, n_windows, n_skipped)
        carry_p, carry_w = acc_p[done:].copy(), acc_w[done:].copy()


#: A source of the region's rows in order: (predictor, open composite, bands, plan, cfg, tta)
#: -> Rows.
RowSource = Callable[..., Iterator[Rows]]


class Batched(Protocol):
    """What :func:`local_rows` reads of its config: the ``predict`` section,
    :class:`mmls.inference.scene.PredictConfig` (named by this protocol, not imported, because
    scene imports this module)."""

    @property
    def batch_size(self) -> int:
        """Windows per forward pass."""
        ...


def local_rows(
    predictor: Predictor,
    src: rasterio.io.DatasetReader,
    bands: Sequence[int],
    plan: RowPlan,
    cfg: Batched,
    tta: bool = False,
) -> Iterator[Rows]:
    """Every window row in this process (the default engine)."""
    return blended_rows(predictor, src, bands, plan, cfg.batch_size, 0, len(plan.ys), tta)
