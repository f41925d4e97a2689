"""A quick look at a map: the mask outlined over the scene's RGB (or a hillshade of its DEM),
for a user who would rather look than open a GIS.

Both the scene and the map are read decimated by GDAL to at most ``max_px`` on the long side, so
memory is bounded by the picture, never by the scene. The map's probability is reduced with the
maximum of each block of pixels (read in strips) and thresholded afterwards, so a landslide
smaller than one picture pixel still shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from rasterio.enums import Resampling  # noqa: E402
from rasterio.windows import Window  # noqa: E402

from mmls.core.io import PathLike, atomic_path, open_raster, read_raster  # noqa: E402
from mmls.geo.nodata import invalid_pixels  # noqa: E402

QUICKLOOK_NAME = "quicklook.png"


def _stretch(band: np.ndarray) -> np.ndarray:
    """2-98 % percentile stretch to [0, 1] over the finite values (NaN stays NaN)."""
    finite = band[np.isfinite(band)]
    if finite.size == 0:
        return band
    lo, hi = np.percentile(finite, [2, 98])
    return np.clip((band - lo) / (hi - lo if hi > lo else 1.0), 0, 1)


def hillshade(
    dem: np.ndarray, azimuth_deg: float = 315.0, altitude_deg: float = 45.0
) -> np.ndarray:
    """Lambertian hillshade of a DEM in [0, 1] (pixel units: for a picture, not for analysis)."""
    dy, dx = np.gradient(
        np.nan_to_num(dem, nan=float(np.nanmean(dem)) if np.isfinite(dem).any() else 0.0)
    )
    slope = np.arctan(np.hypot(dx, dy) / max(float(np.nanstd(dem)), 1e-6) * 8)
    aspect = np.arctan2(-dx, dy)
    az, alt = math.radians(azimuth_deg), math.radians(altitude_deg)
    shade = np.sin(alt) * np.cos(slope) + np.cos(alt) * np.sin(slope) * np.cos(az - aspect)
    return np.clip(shade, 0, 1)


def _background(src, file_bands: Sequence[int], names: Sequence[str], window: Window, shape):
    """RGB of the scene if the model reads red, green and blue, else a hillshade of its DEM,
    else its first band in grey; decimated to ``shape``."""
    by_name = dict(zip(names, file_bands, strict=True))
    if {"red", "green", "blue"} <= set(by_name):
        idx = [by_name["red"], by_name["green"], by_name["blue"]]
    elif "dem" in by_name:
        idx = [by_name["dem"]]
    else:
        idx = [file_bands[0]]
    raw = read_raster(
        src,
        idx,
        window=window,
        out_shape=(len(idx), *shape),
        resampling=Resampling.average,
        out_dtype="float32",
    )
    raw = np.where(invalid_pixels(raw, src.nodata), np.nan, raw)
    if len(idx) == 3:
        return np.dstack([_stretch(b) for b in raw])
    if "dem" in by_name and idx == [by_name["dem"]]:
        return np.dstack([hillshade(raw[0])] * 3)
    return np.dstack([_stretch(raw[0])] * 3)


def max_pooled(src, factor: int) -> np.ndarray:
    """Band 1 of ``src`` reduced by ``factor`` with the maximum of each ``factor`` x ``factor``
    block (nodata counts as -inf), read in strips of ``factor`` rows."""
    h, w = -(-src.height // factor), -(-src.width // factor)
    out = np.full((h, w), -np.inf, np.float32)
    for i in range(h):
        rows = min(factor, src.height - i * factor)
        strip = read_raster(src, 1, window=Window(0, i * factor, src.width, rows))
        strip = np.where(strip == src.nodata, -np.inf, strip) if src.nodata is not None else strip
        padded = np.full((factor, w * factor), -np.inf, np.float32)
        padded[:rows, : src.width] = strip
        out[i] = padded.reshape(factor, w, factor).max(axis=(0, 2))
    return out


def write_quicklook(
    scene_path: PathLike,
    file_bands: Sequence[int],
    names: Sequence[str],
    probability_path: PathLike,
    threshold: float,
    window: Window,
    out_png: PathLike,
    max_px: int = 1024,
) -> tuple[int, int]:
    """Write the quick look of the map (``probability_path`` covers ``window`` of the scene);
    returns its (height, width) in pixels."""
    factor = max(1, math.ceil(max(int(window.width), int(window.height)) / max_px))
    with open_raster(probability_path) as prob_src:
        landslide = max_pooled(prob_src, factor) > threshold
    shape = landslide.shape
    with open_raster(scene_path) as src:
        rgb = _background(src, file_bands, names, window, shape)
    dpi = 100
    fig = plt.figure(figsize=(shape[1] / dpi, shape[0] / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(np.nan_to_num(rgb, nan=0.0), interpolation="nearest")
    if landslide.any():
        ax.contour(landslide.astype(float), levels=[0.5], colors="red", linewidths=0.8)
    ax.set_axis_off()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return shape
