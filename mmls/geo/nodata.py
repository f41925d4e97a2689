"""Which raster values are missing: declared nodata, non-finite values, and non-physical
magnitudes that GIS tools write as undeclared nodata sentinels.

A pixel value is *missing* (:func:`invalid_pixels`) when it is the raster's declared nodata,
not finite (NaN, +-inf), or non-physical: a magnitude beyond :data:`NONPHYSICAL_ABS` (1e30),
such as the float32 extremes -3.4e38 / 3.4e38. Reading code warns about the undeclared ones
(:func:`warn_nonphysical`) and keeps the values as they are; models treat them as missing
(:mod:`mmls.data.normalization`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from os import PathLike

import numpy as np
from rasterio.windows import Window

from mmls.core.io import open_raster, read_raster

#: Magnitudes above this are not a measurement on Mars (DEM in m, slope in degrees, ...).
NONPHYSICAL_ABS = 1e30


def invalid_pixels(raw: np.ndarray, nodata: float | None) -> np.ndarray:
    """Boolean array, True where ``raw`` is missing (see the module docstring)."""
    invalid = ~np.isfinite(raw)
    if nodata is not None:
        invalid |= raw == nodata
    with np.errstate(invalid="ignore"):
        invalid |= np.abs(raw) > NONPHYSICAL_ABS
    return invalid


def nonphysical_counts(image: np.ndarray) -> dict[int, int]:
    """Per band (0-based, only those with any): pixels that are NaN, +-inf or beyond 1e30.

    ``image`` is C x H x W (or C x ...). The declared nodata value is not counted here: this
    reports values that a file does NOT declare as missing.
    """
    flat = np.asarray(image).reshape(len(image), -1)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(flat) | (np.abs(flat) > NONPHYSICAL_ABS)
    counts = bad.sum(axis=1)
    return {int(b): int(n) for b, n in enumerate(counts) if n}


class NonPhysicalWarning(UserWarning):
    """An image holds NaN, +-inf or magnitudes beyond 1e30 that it does not declare as nodata."""


def warn_nonphysical(image: np.ndarray, source: str | PathLike[str], bands: Sequence[str]) -> int:
    """Warn, naming ``source``, every band and its pixel count, when ``image`` (C x H x W) holds
    non-physical values; return the number of such pixels."""
    counts = nonphysical_counts(image)
    if counts:
        per_band = ", ".join(f"{bands[b]}: {n} px" for b, n in counts.items())
        warnings.warn(
            f"{source}: non-physical values (NaN, inf or |x| > {NONPHYSICAL_ABS:g}) in {per_band};"
            " kept as they are, treated as missing by the models",
            NonPhysicalWarning,
            stacklevel=2,
        )
    return sum(counts.values())


def bands_without_values(
    path: PathLike, window: Window, band_names: Sequence[str], block_rows: int = 256
) -> list[str]:
    """The bands of the raster ``path`` with no valid pixel inside ``window`` (every value is
    declared nodata, NaN, inf or non-physical), read in strips of ``block_rows`` rows."""
    seen = np.zeros(len(band_names), dtype=bool)
    with open_raster(path) as src:
        row_end = int(window.row_off + window.height)
        for row in range(int(window.row_off), row_end, block_rows):
            strip = Window(window.col_off, row, window.width, min(block_rows, row_end - row))
            raw = read_raster(src, window=strip)
            seen |= (~invalid_pixels(raw, src.nodata)).reshape(len(raw), -1).any(axis=1)
            if seen.all():
                break
    return [name for name, ok in zip(band_names, seen, strict=True) if not ok]
