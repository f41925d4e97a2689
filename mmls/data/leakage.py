"""Leakage audit of a split: how close evaluation patches lie to training patches.

Footprints are the pixel squares ``[x, x+s) x [y, y+s)`` of ``x_off, y_off`` in the composite.
With ``dx, dy`` the offset differences, the Chebyshev gap ``g = max(|dx|, |dy|) - s`` is the
number of pixel rows/columns strictly between the two squares: ``g < 0`` they overlap (share
pixels), ``g == 0`` they are 8-neighbour adjacent (share an edge, or only a corner when
``|dx| == |dy| == s``), ``g > 0`` they are apart. "Touch" means ``g <= 0``: the footprint
dilated by one pixel (3 x 3 structuring element) meets the other one. The audit runs with the
split it audits (stage ``block_split``), before any training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

LEAKAGE_DEFINITION = (
    "Patch footprints are the pixel squares [x_off, x_off+s) x [y_off, y_off+s) in the composite. "
    "gap = max(|dx|, |dy|) - s. overlap: gap < 0 (shared pixels); edge: gap == 0 and the squares "
    "share a side; corner: |dx| == |dy| == s (only a corner pixel is 8-adjacent); touch: gap <= 0. "
    "Each patch is counted once, under its closest contact (overlap > edge > corner)."
)


def chebyshev_gaps(
    xy_a: np.ndarray, xy_b: np.ndarray, size: int, chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    """For each patch of ``a`` (offsets N x 2): the smallest gap to any patch of ``b`` and the
    contact kind code (0 none, 1 corner, 2 edge, 3 overlap) of the closest contact."""
    a = np.asarray(xy_a, dtype=np.int64).reshape(-1, 2)
    b = np.asarray(xy_b, dtype=np.int64).reshape(-1, 2)
    min_gap = np.full(len(a), np.iinfo(np.int64).max, dtype=np.int64)
    kind = np.zeros(len(a), dtype=np.int64)
    if len(b) == 0:
        return min_gap, kind
    for start in range(0, len(a), chunk):
        sub = a[start : start + chunk]
        dx = np.abs(sub[:, None, 0] - b[None, :, 0])
        dy = np.abs(sub[:, None, 1] - b[None, :, 1])
        gap = np.maximum(dx, dy) - size
        k = np.where(gap < 0, 3, np.where(gap == 0, np.where((dx == size) & (dy == size), 1, 2), 0))
        min_gap[start : start + chunk] = gap.min(axis=1)
        kind[start : start + chunk] = k.max(axis=1)
    return min_gap, kind


def contact_summary(xy: np.ndarray, xy_ref: np.ndarray, size: int) -> dict[str, Any]:
    """Counts of patches of ``xy`` touching / overlapping / near the patches of ``xy_ref``."""
    gaps, kind = chebyshev_gaps(xy, xy_ref, size)
    n = len(gaps)
    touching = int((kind > 0).sum())
    finite = gaps[gaps != np.iinfo(np.int64).max]
    return {
        "n_patches": n,
        "n_touching": touching,
        "n_overlapping": int((kind == 3).sum()),
        "n_edge_adjacent": int((kind == 2).sum()),
        "n_corner_adjacent": int((kind == 1).sum()),
        "share_touching": round(touching / n, 6) if n else 0.0,
        "n_within_one_patch": int((finite < size).sum()),
        "min_gap_px": int(finite.min()) if len(finite) else None,
        "median_gap_px": float(np.median(finite)) if len(finite) else None,
    }


def leakage_audit(
    splits: pd.DataFrame,
    size: int,
    against: str = "train",
    audited: Sequence[str] = ("val", "test", "isolated_test"),
) -> dict[str, Any]:
    """Contacts of each audited split's patches with the ``against`` split (data/splits.csv).

    Also ``isolated_test_vs_base``: isolated patches touching ANY base-region patch.
    """
    missing = [c for c in ("x_off", "y_off", "split", "region") if c not in splits.columns]
    if missing:
        raise ValueError(f"splits table lacks column(s) {missing}")
    xy = splits[["x_off", "y_off"]].to_numpy(dtype=np.int64)
    ref = xy[(splits["split"] == against).to_numpy()]
    out: dict[str, Any] = {
        "definition": LEAKAGE_DEFINITION,
        "tile_size": int(size),
        "against": against,
        f"n_{against}": len(ref),
        "splits": {},
    }
    for split in audited:
        out["splits"][split] = contact_summary(xy[(splits["split"] == split).to_numpy()], ref, size)
    iso = (splits["split"] == "isolated_test").to_numpy()
    base = (splits["region"] == "base").to_numpy()
    out["isolated_test_vs_base"] = contact_summary(xy[iso], xy[base], size)
    out["overlapping_pairs"] = overlapping_pairs(splits, size)
    return out


def overlapping_pairs(splits: pd.DataFrame, size: int) -> dict[str, int]:
    """Pairs of patches that share pixels (terminal origins, Sec. 2.3), by pair of splits
    (``train|val``: one patch in each; sorted names); patches of different regions never do."""
    xy = splits[["x_off", "y_off"]].to_numpy(dtype=np.int64)
    names = splits["split"].astype(str).to_numpy()
    regions = splits["region"].astype(str).to_numpy()
    out: dict[str, int] = {}
    for i in range(len(xy)):
        gap = np.maximum(np.abs(xy[i + 1 :, 0] - xy[i, 0]), np.abs(xy[i + 1 :, 1] - xy[i, 1]))
        for j in np.flatnonzero((gap < size) & (regions[i + 1 :] == regions[i])) + i + 1:
            key = "|".join(sorted((names[i], names[j])))
            out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))
