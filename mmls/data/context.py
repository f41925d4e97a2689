"""Wider input context: a (S + 2c)-px window around each S-px patch, assembled from the store.

The pipeline owns every patch's imagery and position (``x_off, y_off`` on its region's grid),
so the window around patch i is filled, pixel by pixel, from the patches whose footprints cover
it (their images are in the same store); pixels no allowed patch covers are missing (filled
like nodata after standardisation, :mod:`mmls.data.normalization`). The model is trained and scored
on the central S x S patch only (:func:`center`).

Which imagery may fill a window is the caller's ``allowed`` set of store rows:

- training windows take context only from the training patches' imagery (e.g. a CV fold's
  training folds): a held-out patch's pixels never enter a training input, not even unlabelled;
- windows that select (the validation split that picks the checkpoint, the split that
  calibrates a threshold) take context from the training and selection patches only
  (:func:`rows_mask`): the held-out imagery chooses nothing;
- at evaluation / test time a window may contain the imagery of any patch of the dataset
  (labelled or not: images only, never masks), as a user mapping a region would have it.

Where released patches overlap (terminal origins) the values agree (checked at ingest and
rebuild), so the first covering patch is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from mmls.data.store import Store


@dataclass(frozen=True)
class Piece:
    """Rows ``[y0, y1)`` x cols ``[x0, x1)`` of store row ``src`` go to the window at (wy, wx)."""

    src: int
    y0: int
    y1: int
    x0: int
    x1: int
    wy: int
    wx: int


class ContextIndex:
    """For every store row, the pieces of the neighbouring patches inside its window."""

    def __init__(self, patches: pd.DataFrame, size: int, context_px: int) -> None:
        self.size, self.c = size, context_px
        self.window = size + 2 * context_px
        regions = patches["region"].astype(str).to_numpy()
        xs = patches["x_off"].to_numpy(dtype=np.int64)
        ys = patches["y_off"].to_numpy(dtype=np.int64)
        self.pieces: list[list[Piece]] = []
        reach = size + context_px
        for i in range(len(patches)):
            near = np.flatnonzero(
                (regions == regions[i])
                & (np.abs(xs - xs[i]) < reach)
                & (np.abs(ys - ys[i]) < reach)
            )
            near = [i] + [int(j) for j in near if j != i]  # the patch itself first
            wx0, wy0 = xs[i] - context_px, ys[i] - context_px  # window corner on the grid
            pieces = []
            for j in near:
                x0, y0 = max(xs[j], wx0), max(ys[j], wy0)
                x1 = min(xs[j] + size, wx0 + self.window)
                y1 = min(ys[j] + size, wy0 + self.window)
                if x0 < x1 and y0 < y1:
                    pieces.append(
                        Piece(
                            int(j),
                            int(y0 - ys[j]),
                            int(y1 - ys[j]),
                            int(x0 - xs[j]),
                            int(x1 - xs[j]),
                            int(y0 - wy0),
                            int(x0 - wx0),
                        )
                    )
            self.pieces.append(pieces)

    def assemble(
        self,
        images: np.ndarray,
        row: int,
        bands: slice | Sequence[int],
        allowed: np.ndarray | None,
    ) -> np.ndarray:
        """The C x W x W window of store row ``row`` (NaN where no allowed patch covers it).

        ``allowed`` is a boolean array over store rows (None: every row); the patch itself is
        always used.
        """
        first = np.asarray(images[row, bands])
        out = np.full((first.shape[0], self.window, self.window), np.nan, np.float32)
        filled = np.zeros((self.window, self.window), bool)
        for p in self.pieces[row]:
            if p.src != row and allowed is not None and not allowed[p.src]:
                continue
            h, w = p.y1 - p.y0, p.x1 - p.x0
            dst = np.s_[p.wy : p.wy + h, p.wx : p.wx + w]
            todo = ~filled[dst]
            if not todo.any():
                continue
            src = first if p.src == row else np.asarray(images[p.src, bands])
            out[:, p.wy : p.wy + h, p.wx : p.wx + w][:, todo] = src[:, p.y0 : p.y1, p.x0 : p.x1][
                :, todo
            ]
            filled[dst] = True
        return out


def center(arr: np.ndarray, context_px: int) -> np.ndarray:
    """The central patch of a window (last two axes)."""
    if context_px == 0:
        return arr
    c = context_px
    return arr[..., c:-c, c:-c]


def rows_mask(n_rows: int, *row_sets: Sequence[int]) -> np.ndarray:
    """Boolean array over ``n_rows`` store rows, True on every row of ``row_sets``."""
    allowed = np.zeros(n_rows, bool)
    for rows in row_sets:
        allowed[np.asarray(rows, dtype=np.int64)] = True
    return allowed


def context_index(store: Store, context_px: int) -> ContextIndex | None:
    """The store's context index for ``context_px`` (None without context)."""
    return ContextIndex(store.patches, store.size, context_px) if context_px else None
