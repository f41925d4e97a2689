"""Where the scene has no data (gaps in the mosaic) and where the mappers left it unmapped.

The nodata mask (-9999 in every band, 255 in the inventory) is what the align, binarize and
tile stages must carry through (Sec. 2.2); the unmapped patch is a 255 area of the inventory
over valid imagery, which the binarize stage must not count as background.
"""

from __future__ import annotations

import math

import numpy as np

from mmls.data.synthetic.config import QUANT, SyntheticConfig
from mmls.data.synthetic.noise import fbm


def nodata_mask(rng: np.random.Generator, cfg: SyntheticConfig) -> np.ndarray:
    """Irregular gaps plus one slanted strip from the top edge; share about nodata_fraction.

    The blobs take the highest-ranked pixels of a quantized field (rank, not a fixed level, so
    the share lands on the target; quantized, so ulp-level differences cannot move the edge).
    """
    h, w = cfg.height, cfg.width
    mask = np.zeros((h, w), bool)
    target = round(cfg.nodata_fraction * h * w)
    if target == 0:
        return mask
    # a slanted strip (a missing image swath) down from the top edge
    strip_w = max(6, round(0.008 * w))
    strip_len = round(h * rng.uniform(0.25, 0.4))
    x_top = rng.uniform(0.1, 0.9) * w
    slant = rng.uniform(-0.15, 0.15)
    yy = np.arange(strip_len, dtype=np.float64)[:, None]
    xx = np.arange(w, dtype=np.float64)[None, :]
    strip = np.abs(xx - (x_top + slant * yy)) < strip_w / 2
    mask[:strip_len] = strip
    left = target - int(mask.sum())
    if left <= 0:
        return mask
    # irregular blobs: a max of radial bumps plus noise, thresholded to the remaining count
    n_blobs = int(np.clip(round(left / 50000), 1, 6))
    ys = rng.uniform(0.05, 0.95, n_blobs) * h
    xs = rng.uniform(0.05, 0.95, n_blobs) * w
    radii = math.sqrt(left / n_blobs / math.pi) * rng.uniform(0.7, 1.3, n_blobs)
    y = np.arange(h, dtype=np.float64)[:, None]
    x = np.arange(w, dtype=np.float64)[None, :]
    field = np.full((h, w), -1.0)
    for by, bx, br in zip(ys, xs, radii, strict=True):
        dy2, dx2 = (y - by) ** 2, (x - bx) ** 2
        np.maximum(field, 1.0 - np.sqrt(dy2 + dx2) / (2.0 * br), out=field)
    field += 0.12 * fbm(rng, (h, w), max(8.0, float(np.mean(radii)) / 3.0), 3)
    q = np.round(field * QUANT).astype(np.int64)
    q[mask] = np.iinfo(np.int64).min
    thr = np.partition(q.ravel(), q.size - left)[q.size - left]
    mask |= q >= thr
    return mask


def unmapped_patch(
    rng: np.random.Generator, cfg: SyntheticConfig, slides: np.ndarray, nodata: np.ndarray
) -> np.ndarray:
    """A small square the mappers left unmapped (255), placed where there is no landslide.

    Tries up to 200 random spots; none found (a crowded scene) means no patch.
    """
    h, w = cfg.height, cfg.width
    out = np.zeros((h, w), bool)
    s = cfg.unmapped_patch_px
    if s == 0:
        return out
    for _ in range(200):
        r0, c0 = int(rng.integers(0, h - s)), int(rng.integers(0, w - s))
        win = (slice(r0, r0 + s), slice(c0, c0 + s))
        if not slides[win].any() and not nodata[win].any():
            out[win] = True
            return out
    return out
