"""What a model sees of a pixel: per-band standardisation and the treatment of missing values.

The paper (Sec. 4.1) does not say how inputs are normalised. Here each band is standardised
with the mean and standard deviation of the *training* patches' valid pixels
(:func:`band_stats`); the statistics travel with the checkpoint so that evaluation and
whole-scene prediction apply the very same transform (:func:`standardize`).

A pixel value is *missing* (:func:`invalid_pixels`) when it is the raster's declared nodata,
not finite (NaN, +-inf), or non-physical: a magnitude beyond :data:`NONPHYSICAL_ABS` (1e30),
such as the float32 extremes -3.4e38 / 3.4e38 that GIS tools write as an undeclared nodata
sentinel. Missing pixels take no part in the band statistics, and after standardisation they
are set to :data:`FILL_VALUE` = 0, i.e. the band's training mean: the model sees "average" there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mmls.geo.nodata import invalid_pixels

#: Standardised value of a missing pixel (0 = the band's training mean).
FILL_VALUE = 0.0


def band_stats(
    images: np.ndarray,
    rows: Sequence[int],
    band_idx: Sequence[int],
    nodata: float | None,
    chunk: int = 64,
) -> tuple[list[float], list[float]]:
    """Per-band mean and std over the valid pixels of ``images[rows]`` (N x C x H x W).

    A band without valid pixels gets mean 0, std 1; a constant band gets std 1 (so
    standardisation never divides by 0). Sums run in float64, ``chunk`` rows at a time.
    """
    k = len(band_idx)
    s1 = np.zeros(k)
    s2 = np.zeros(k)
    cnt = np.zeros(k)
    rows = np.asarray(rows, dtype=np.int64)
    for start in range(0, len(rows), chunk):
        sel = rows[start : start + chunk]
        block = np.asarray(images[sel][:, list(band_idx)], dtype=np.float64)
        valid = ~invalid_pixels(block, nodata)
        block = np.where(valid, block, 0.0)
        s1 += block.sum(axis=(0, 2, 3))
        s2 += (block * block).sum(axis=(0, 2, 3))
        cnt += valid.sum(axis=(0, 2, 3))
    means: list[float] = []
    stds: list[float] = []
    for a, b, c in zip(s1, s2, cnt, strict=True):
        if c == 0:
            means.append(0.0)
            stds.append(1.0)
            continue
        mean = a / c
        std = math.sqrt(max(b / c - mean * mean, 0.0))
        means.append(float(mean))
        stds.append(float(std) if std > 1e-12 else 1.0)
    return means, stds


class Standardizer:
    """``(raw - mean) / std`` per band in float32, missing pixels set to :data:`FILL_VALUE`."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], nodata: float | None) -> None:
        if len(mean) != len(std):
            raise ValueError("mean and std must have the same length")
        self.mean = np.asarray(mean, dtype=np.float32)[:, None, None]
        self.inv_std = (1.0 / np.asarray(std, dtype=np.float32))[:, None, None]
        self.nodata = nodata

    def __len__(self) -> int:
        return len(self.mean)

    def __call__(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(standardised ``... x C x H x W`` float32, invalid mask of the same shape)."""
        raw = np.asarray(raw, dtype=np.float32)
        invalid = invalid_pixels(raw, self.nodata)
        out = (raw - self.mean) * self.inv_std
        out[invalid] = FILL_VALUE
        return out, invalid
