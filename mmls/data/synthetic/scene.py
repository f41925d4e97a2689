"""The scene: generated from the config in one pure call, and summarised for the stage's log.

:func:`generate_scene` runs the steps in a fixed order, each on its own random stream spawned
from the seed (terrain, nodata, landslides, bands, unmapped patch), then lays the truth onto the
inventory's own, shifted and larger grid, which the align/binarize stages must bring back onto
the composite grid (Sec. 2.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from affine import Affine

from mmls.data.bands import BAND_NAMES
from mmls.data.synthetic.config import (
    INV_BACKGROUND,
    INV_LANDSLIDE,
    INV_NODATA,
    NODATA,
    SyntheticConfig,
)
from mmls.data.synthetic.imagery import render_bands
from mmls.data.synthetic.landslides import place_landslides
from mmls.data.synthetic.masks import nodata_mask, unmapped_patch
from mmls.data.synthetic.terrain import base_terrain

#: The random streams, in spawn order: appending one keeps every other stream's draws.
STREAMS = ("terrain", "side", "slides", "hummock", "texture", "ti", "color", "nodata", "patch")


@dataclass(frozen=True)
class SyntheticScene:
    """A generated scene. ``bands`` holds -9999 where ``nodata``; ``truth`` is 0 there."""

    config: SyntheticConfig
    bands: np.ndarray  # (7, H, W) float32
    truth: np.ndarray  # (H, W) uint8 {0, 1}: the mask align -> binarize must reproduce
    nodata: np.ndarray  # (H, W) bool
    inventory: np.ndarray  # inventory_shape uint8 {0, 1, 255}
    transform: Affine
    inventory_transform: Affine
    crs: str

    @property
    def band_names(self) -> tuple[str, ...]:
        """The bands' names, in band order."""
        return BAND_NAMES


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per step (:data:`STREAMS`), spawned from ``seed``."""
    seeds = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {n: np.random.default_rng(s) for n, s in zip(STREAMS, seeds, strict=True)}


def _inventory(cfg: SyntheticConfig, truth: np.ndarray, unmapped: np.ndarray) -> np.ndarray:
    """The inventory raster on its own grid: classes where the scene lies, 255 elsewhere.

    ``unmapped`` (nodata or the unmapped patch) is 255 inside the scene too.
    """
    h, w = truth.shape
    inv = np.full(cfg.inventory_shape, INV_NODATA, np.uint8)
    dx, dy = cfg.inventory_shift_px
    classes = np.where(truth == 1, INV_LANDSLIDE, INV_BACKGROUND).astype(np.uint8)
    classes[unmapped] = INV_NODATA
    inv[dy : dy + h, dx : dx + w] = classes
    return inv


def generate_scene(cfg: SyntheticConfig) -> SyntheticScene:
    """Generate the scene for ``cfg`` (pure and deterministic: same config, same arrays)."""
    rngs = _streams(cfg.seed)
    terrain = base_terrain(rngs["terrain"], rngs["side"], cfg)
    nodata = nodata_mask(rngs["nodata"], cfg)
    slides = place_landslides(rngs["slides"], rngs["hummock"], cfg, terrain, nodata)
    bands = render_bands(cfg, terrain, slides, rngs)
    unmapped = unmapped_patch(rngs["patch"], cfg, slides.mask, nodata)
    truth = (slides.mask & ~nodata & ~unmapped).astype(np.uint8)
    bands[:, nodata] = NODATA
    return SyntheticScene(
        config=cfg,
        bands=bands,
        truth=truth,
        nodata=nodata,
        inventory=_inventory(cfg, truth, nodata | unmapped),
        transform=cfg.transform,
        inventory_transform=cfg.inventory_transform,
        crs=cfg.crs,
    )


def grid_cell_stats(truth: np.ndarray, nodata: np.ndarray, size: int = 128) -> dict[str, Any]:
    """Stats of the full ``size`` cells (stride ``size`` from the top-left corner).

    ``kept``: cells with at least one landslide pixel and no nodata pixel (what the tile stage
    keeps), with their foreground ratios (Eq. 1).
    """
    h, w = truth.shape
    ny, nx = h // size, w // size
    t = truth[: ny * size, : nx * size].reshape(ny, size, nx, size)
    n = nodata[: ny * size, : nx * size].reshape(ny, size, nx, size)
    fg = t.sum(axis=(1, 3)) / float(size * size)
    bad = n.any(axis=(1, 3))
    kept = (fg > 0) & ~bad
    ratios = fg[kept]
    return {
        "cells": int(ny * nx),
        "kept": int(kept.sum()),
        "with_nodata": int(bad.sum()),
        "mean_fg_ratio": float(ratios.mean()) if ratios.size else 0.0,
        "min_fg_ratio": float(ratios.min()) if ratios.size else 0.0,
        "max_fg_ratio": float(ratios.max()) if ratios.size else 0.0,
    }


def summary(scene: SyntheticScene) -> str:
    """One line describing the scene (the stage prints it)."""
    cfg = scene.config
    st = grid_cell_stats(scene.truth, scene.nodata)
    return (
        f"synthetic_scene: {cfg.width}x{cfg.height} px, seed {cfg.seed}, "
        f"landslide share {scene.truth.mean():.3f}, nodata share {scene.nodata.mean():.3f}, "
        f"128-px cells with landslides and no nodata {st['kept']}/{st['cells']} "
        f"(mean fg ratio {st['mean_fg_ratio']:.3f})"
    )
