"""Predictions in the challenge's form: one mask per tile of a folder, under the tile's own name
and georeferencing (``mmls predict-tiles``, and the ``predict_tiles`` stage on a release's
unlabelled splits).

The tiles' bands are named by a release layout (``--layout``: :data:`mmls.data.releases.LAYOUTS`,
whose tiles carry no band descriptions), by a band map, or by their band descriptions. The same
refusals as a map apply (:mod:`mmls.inference.compatibility`): bands, pixel size and value
convention, the values sampled from up to :data:`SAMPLE_TILES` tiles spread over the folder. A
model with context sees each tile alone: its context is missing (filled as nodata is in
training), since a folder of tiles does not say which tiles are neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from tqdm import tqdm

from mmls.core.errors import InputError
from mmls.core.io import PathLike, atomic_dir, open_raster, read_raster, write_json
from mmls.data.releases import LAYOUTS, raster_files
from mmls.geo.nodata import invalid_pixels
from mmls.geo.raster import Grid, geotiff_profile
from mmls.inference.bundle import Bundle
from mmls.inference.compatibility import (
    Allowances,
    band_order,
    pixel_size_m,
    refuse,
    value_problems,
)
from mmls.inference.mapping import check_out_dir
from mmls.inference.predictor import Predictor

SAMPLE_TILES = 64
SUMMARY_NAME = "summary.json"


def tile_band_order(
    src: rasterio.DatasetReader,
    path: Path,
    bundle: Bundle,
    layout: str | None,
    band_map: Sequence[str] | None,
) -> list[int]:
    """1-based indices of a tile's bands in the model's order (layout, band map or descriptions)."""
    if layout is not None:
        if layout not in LAYOUTS:
            raise InputError("--layout", f"unknown layout {layout!r}; known: {sorted(LAYOUTS)}")
        band_map = LAYOUTS[layout].band_order
    return band_order(src, path, bundle.bands, band_map)


def check_tiles(
    tiles: Sequence[Path], bundle: Bundle, bands: Sequence[int], allow: Allowances
) -> dict[str, Any]:
    """The refusals of a map, on a sample of the folder's tiles; what the summary records."""
    step = max(1, len(tiles) // SAMPLE_TILES)
    sample, notes, sizes = [], [], set()
    for path in tiles[::step][:SAMPLE_TILES]:
        with open_raster(path) as src:
            if src.crs is None and not allow.pixel_size:
                raise InputError(
                    path,
                    "has no CRS: its pixel size cannot be checked "
                    "(override with --allow-pixel-size)",
                )
            if src.crs is not None:
                sizes.add(round(pixel_size_m(src), 3))
            raw = read_raster(src, list(bands), out_dtype="float32").reshape(len(bands), -1)
            sample.append(raw[:, ~invalid_pixels(raw, src.nodata).any(axis=0)])
    values = np.concatenate(sample, axis=1)
    if values.shape[1] == 0:
        raise InputError(tiles[0].parent, "the sampled tiles hold no valid pixel (all nodata)")
    quantiles = np.percentile(values.astype(np.float64), [1, 50, 99], axis=1).T
    problems = value_problems(quantiles, bundle)
    for size in sorted(sizes) or [bundle.pixel_size_m or 0.0]:  # no CRS: sizes not checked
        notes += refuse(tiles[0].parent, size, bundle, problems, allow)
    return {"sampled_tiles": len(sample), "overrides": sorted(set(notes))}


def _masks(predictor: Predictor, data: np.ndarray, threshold: float, tta: bool) -> np.ndarray:
    """uint8 {0, 1} masks of standardised N x C x S x S tiles (their context missing)."""
    c, s = predictor.context_px, data.shape[-1]
    if c:
        wide = np.zeros((*data.shape[:2], s + 2 * c, s + 2 * c), np.float32)  # 0 = missing
        wide[:, :, c : c + s, c : c + s] = data
        data = wide
    prob = predictor.probabilities(data, tta)[:, c : c + s, c : c + s]
    return (prob > threshold).astype(np.uint8)


def predict_tile_folder(
    predictor: Predictor,
    bundle: Bundle,
    folder: PathLike,
    out_dir: PathLike,
    *,
    layout: str | None = None,
    band_map: Sequence[str] | None = None,
    threshold: float | None = None,
    tta: bool | None = None,
    allow: Allowances | None = None,
    batch_size: int = 16,
    overwrite: str = "never",
    progress: bool = True,
) -> dict[str, Any]:
    """One mask per tile of ``folder`` (``*.tif``) into ``out_dir``; returns the summary."""
    out = Path(out_dir)
    check_out_dir(out, overwrite)
    tiles = raster_files(Path(folder))
    if not tiles:
        raise InputError(folder, "no tiles (*.tif) found")
    with open_raster(tiles[0]) as src:
        bands = tile_band_order(src, tiles[0], bundle, layout, band_map)
    checks = check_tiles(tiles, bundle, bands, allow or Allowances())
    threshold = threshold if threshold is not None else (bundle.inference.threshold or 0.5)
    tta = tta if tta is not None else bundle.inference.tta
    fg = 0
    with atomic_dir(out) as tmp:
        for start in tqdm(
            range(0, len(tiles), batch_size),
            desc="tiles",
            unit="batch",
            disable=None if progress else True,
        ):
            fg += _predict_batch(
                predictor, bundle, tiles[start : start + batch_size], bands, threshold, tta, tmp
            )
        summary = {
            "folder": str(folder),
            "n_tiles": len(tiles),
            "fg_pixels": fg,
            "model": bundle.model_name,
            "threshold": threshold,
            "tta": tta,
            "layout": layout,
            "file_bands": bands,
            **checks,
        }
        write_json(tmp / SUMMARY_NAME, summary)
    return summary


def _predict_batch(predictor, bundle, paths, bands, threshold, tta, out: Path) -> int:
    """Predict and write one batch of tiles; their landslide pixel count."""
    images, grids = [], []
    for path in paths:
        with open_raster(path) as src:
            if (src.width, src.height) != (bundle.tile_size_px,) * 2:
                raise InputError(
                    path,
                    f"is {src.width}x{src.height}, the model takes "
                    f"{bundle.tile_size_px}x{bundle.tile_size_px} tiles",
                )
            raw = read_raster(src, list(bands), out_dtype="float32")
            images.append(predictor.standardizer(src.nodata)(raw)[0])  # the tile's own nodata
            grids.append(Grid.of(src))
    masks = _masks(predictor, np.stack(images), threshold, tta)
    for path, grid, mask in zip(paths, grids, masks, strict=True):
        with rasterio.open(out / path.name, "w", **geotiff_profile(grid, 1, "uint8")) as dst:
            dst.write(mask[None])
    return int(masks.sum())
