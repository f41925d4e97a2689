"""Per-patch confusion counts, spatial-block bootstrap and the split leakage audit.

Statistics the MMLSv2 paper does not report, all computed from data files alone:

* **Per-patch counts** (:func:`patch_counts`, :func:`patch_table`, :func:`write_patch_counts`):
  the eval stage writes, beside each metrics JSON, ``<name>.patches.csv`` with one row per patch
  and the columns :data:`PATCH_COLUMNS`. Summed over all rows they give the JSON's pooled
  TP/FP/FN/TN exactly. Prediction masks go to ``predictions/<split>/<model>.npz``
  (:func:`write_predictions`, one uint8 array per patch under :func:`prediction_key`).
* **Block bootstrap** (:func:`bootstrap_ci`, :func:`bootstrap_diff_ci`): neighbouring pixels and
  patches are correlated, so the resampling unit is the 2 x 2 spatial block of the split
  (``region, block_col, block_row``), never the pixel. Each resample draws as many blocks as
  there are, with replacement, sums their confusion counts and recomputes the *pooled* metric
  (same zero-division policy as :mod:`mmls.metrics`). The interval is the percentile one. A
  difference between two models scored on the same patches is *paired*: both use the same
  resampled blocks. Test vs isolated test (different patches) is unpaired: independent draws.
  These intervals cover test-set sampling only; training randomness (seeds) is not in them.
* **Leakage audit** (:func:`leakage_audit`): how many val / test / isolated-test patches touch a
  training patch. Footprints are the pixel squares ``[x, x+s) x [y, y+s)`` of ``x_off, y_off`` in
  the composite. With ``dx, dy`` the offset differences, the Chebyshev gap
  ``g = max(|dx|, |dy|) - s`` is the number of pixel rows/columns strictly between the two
  squares: ``g < 0`` they overlap (share pixels), ``g == 0`` they are 8-neighbour adjacent (share
  an edge, or only a corner when ``|dx| == |dy| == s``), ``g > 0`` they are apart. "Touch" means
  ``g <= 0``: the footprint dilated by one pixel (3 x 3 structuring element) meets the other one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mmls.errors import InputError
from mmls.io import PathLike, atomic_path, read_csv
from mmls.metrics import scores_array

#: Columns of a per-patch counts file ``<metrics>.patches.csv``.
PATCH_COLUMNS: tuple[str, ...] = (
    "region",
    "col",
    "row",
    "block_col",
    "block_row",
    "tp",
    "fp",
    "fn",
    "tn",
)
COUNT_COLUMNS: tuple[str, ...] = ("tp", "fp", "fn", "tn")
KEY_COLUMNS: tuple[str, ...] = ("region", "col", "row")
BLOCK_COLUMNS: tuple[str, ...] = ("region", "block_col", "block_row")
#: Metrics the bootstrap can recompute from summed counts.
BOOTSTRAP_METRICS: tuple[str, ...] = ("miou", "iou_fg", "iou_bg", "precision", "recall", "f1")


# ------------------------------------------------------------------------ per-patch producers
def patch_counts(
    pred: np.ndarray, target: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-patch ``(tp, fp, fn, tn)``, each an int64 array of length N.

    ``pred`` and ``target`` are N x H x W label maps in {0, 1} (anything nonzero is foreground;
    a single H x W map counts as N = 1). CPU torch tensors work too (``np.asarray``).
    """
    p = np.asarray(pred)
    t = np.asarray(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} != target shape {t.shape}")
    if p.ndim == 2:
        p, t = p[None], t[None]
    if p.ndim != 3:
        raise ValueError(f"expected N x H x W label maps, got shape {p.shape}")
    p = p.astype(bool, copy=False).reshape(len(p), -1)
    t = t.astype(bool, copy=False).reshape(len(t), -1)
    tp = np.count_nonzero(p & t, axis=1).astype(np.int64)
    fp = np.count_nonzero(p & ~t, axis=1).astype(np.int64)
    fn = np.count_nonzero(~p & t, axis=1).astype(np.int64)
    tn = p.shape[1] - tp - fp - fn
    return tp, fp, fn, tn


def patch_table(
    index: pd.DataFrame,
    splits: pd.DataFrame,
    counts: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
) -> pd.DataFrame:
    """The per-patch counts table (columns :data:`PATCH_COLUMNS`, rows in ``index`` order).

    ``index`` holds ``region, col, row`` of the N patches in the order of ``counts`` (e.g.
    ``data/store/<split>_index.csv``); ``block_col, block_row`` are looked up in ``splits``
    (``data/splits.csv``). A patch missing from ``splits`` is an error.
    """
    n = len(index)
    if any(len(c) != n for c in counts):
        raise ValueError(f"counts have lengths {[len(c) for c in counts]}, index has {n} rows")
    keys = index[list(KEY_COLUMNS)].reset_index(drop=True)
    blocks = splits[[*KEY_COLUMNS, "block_col", "block_row"]].drop_duplicates(list(KEY_COLUMNS))
    merged = keys.merge(blocks, on=list(KEY_COLUMNS), how="left", validate="many_to_one")
    if merged["block_col"].isna().any():
        missing = merged.loc[merged["block_col"].isna(), list(KEY_COLUMNS)].head(3)
        raise ValueError(f"patches not in splits: {missing.to_dict('records')}")
    table = merged.astype({"col": int, "row": int, "block_col": int, "block_row": int})
    for name, values in zip(COUNT_COLUMNS, counts, strict=True):
        table[name] = np.asarray(values, dtype=np.int64)
    return table[list(PATCH_COLUMNS)]


def write_patch_counts(path: PathLike, table: pd.DataFrame) -> None:
    """Write a per-patch counts table as CSV, atomically (column order :data:`PATCH_COLUMNS`)."""
    with atomic_path(path) as tmp:
        table[list(PATCH_COLUMNS)].to_csv(tmp, index=False, lineterminator="\n")


def read_patch_counts(path: PathLike) -> pd.DataFrame:
    """Read and check a per-patch counts file."""
    p = Path(path)
    df = read_csv(p, PATCH_COLUMNS)
    if df.duplicated(list(KEY_COLUMNS)).any():
        raise InputError(p, "a (region, col, row) patch appears more than once")
    if (df[list(COUNT_COLUMNS)] < 0).to_numpy().any():
        raise InputError(p, "negative confusion count")
    df["region"] = df["region"].astype(str)
    return df[list(PATCH_COLUMNS)]


def prediction_key(region: str, col: int, row: int) -> str:
    """Key of one patch's mask in a predictions ``.npz``: ``c<col>_r<row>_<region>``."""
    return f"c{int(col)}_r{int(row)}_{region}"


def write_predictions(path: PathLike, index: pd.DataFrame, pred: np.ndarray) -> None:
    """Save N x H x W predicted labels as a compressed ``.npz`` (uint8, one key per patch)."""
    labels = np.asarray(pred)
    if labels.ndim != 3 or len(labels) != len(index):
        raise ValueError(f"expected {len(index)} x H x W labels, got shape {labels.shape}")
    arrays = {
        prediction_key(r.region, r.col, r.row): labels[i].astype(np.uint8)
        for i, r in enumerate(index[list(KEY_COLUMNS)].itertuples(index=False))
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def read_predictions(path: PathLike) -> dict[str, np.ndarray]:
    """All masks of a predictions ``.npz`` by :func:`prediction_key`."""
    p = Path(path)
    if not p.is_file():
        raise InputError(p, "file not found")
    try:
        with np.load(p) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(p, f"not a readable .npz ({exc})") from exc


def write_patch_outputs(
    patches_csv: PathLike,
    predictions_npz: PathLike | None,
    index: pd.DataFrame,
    splits: pd.DataFrame,
    pred: np.ndarray,
    target: np.ndarray,
) -> pd.DataFrame:
    """One call for the eval / band_ablation stages: per-patch counts of N x H x W ``pred``
    against ``target`` (rows in ``index`` order, e.g. a store split's ``index`` and ``masks``)
    written to ``patches_csv``; the masks to ``predictions_npz`` unless it is None. Returns the
    counts table (its sums are the split's pooled TP/FP/FN/TN)."""
    table = patch_table(index, splits, patch_counts(pred, target))
    write_patch_counts(patches_csv, table)
    if predictions_npz is not None:
        write_predictions(predictions_npz, index, pred)
    return table


# ------------------------------------------------------------------------------ pooled metrics
#: Pooled metrics of ``(..., 4)`` summed counts, vectorized: the one implementation in metrics.
pooled_metrics = scores_array


# ---------------------------------------------------------------------------------- bootstrap
@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval."""

    estimate: float
    lo: float
    hi: float
    level: float
    n_blocks: int
    n_resamples: int

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0 (a distinguishable difference)."""
        return self.lo > 0 or self.hi < 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "excludes_zero": self.excludes_zero}


def block_counts(table: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Sum per-patch counts over spatial blocks: (block keys ``BLOCK_COLUMNS``, B x 4 counts)."""
    grouped = table.groupby(list(BLOCK_COLUMNS), sort=True)[list(COUNT_COLUMNS)].sum()
    return grouped.index.to_frame(index=False), grouped.to_numpy(dtype=np.int64)


def aligned_block_counts(tables: Sequence[pd.DataFrame]) -> tuple[list[np.ndarray], int]:
    """Block counts of several tables restricted to the patches they ALL hold, in one block order
    (so that the same resampled block indices pair them). Returns (list of B x 4, n patches)."""
    if not tables:
        raise ValueError("no table")
    common = tables[0][list(KEY_COLUMNS)]
    for t in tables[1:]:
        common = common.merge(t[list(KEY_COLUMNS)], on=list(KEY_COLUMNS))
    out = []
    keys = None
    for t in tables:
        sub = t.merge(common, on=list(KEY_COLUMNS))
        k, c = block_counts(sub)
        if keys is not None and not k.equals(keys):
            raise ValueError("the tables disagree on the blocks of shared patches")
        keys = k
        out.append(c)
    return out, len(common)


def resample_weights(n_blocks: int, n_resamples: int, seed: int) -> np.ndarray:
    """R x B multiplicities of a block bootstrap: each row draws B blocks with replacement."""
    if n_blocks < 1:
        raise ValueError("no block to resample")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_blocks, size=(n_resamples, n_blocks))
    flat = (np.arange(n_resamples)[:, None] * n_blocks + draws).ravel()
    counts = np.bincount(flat, minlength=n_resamples * n_blocks)
    return counts.reshape(n_resamples, n_blocks).astype(np.int64)


def _percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _check(metric: str, level: float, n_resamples: int) -> None:
    if metric not in BOOTSTRAP_METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {BOOTSTRAP_METRICS}")
    if not 0 < level < 1 or n_resamples < 1:
        raise ValueError("need 0 < level < 1 and n_resamples >= 1")


def bootstrap_ci(
    blocks: np.ndarray,
    metric: str = "miou",
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Percentile CI of a pooled metric from B x 4 per-block counts (block bootstrap)."""
    _check(metric, level, n_resamples)
    c = np.asarray(blocks, dtype=np.int64)
    estimate = float(pooled_metrics(c.sum(axis=0))[metric])
    w = resample_weights(len(c), n_resamples, seed)
    samples = pooled_metrics(w @ c)[metric]
    lo, hi = _percentiles(samples, level)
    return Interval(estimate, lo, hi, level, len(c), n_resamples)


def bootstrap_diff_ci(
    blocks_a: np.ndarray,
    blocks_b: np.ndarray,
    metric: str = "miou",
    *,
    paired: bool = True,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Percentile CI of ``metric(a) - metric(b)``.

    ``paired``: a and b are the same blocks in the same order (two models on one split); both
    sums use the same resampled blocks. Otherwise (e.g. test vs isolated test) a and b are
    resampled independently (``n_blocks`` is then the smaller of the two).
    """
    _check(metric, level, n_resamples)
    a = np.asarray(blocks_a, dtype=np.int64)
    b = np.asarray(blocks_b, dtype=np.int64)
    estimate = float(pooled_metrics(a.sum(axis=0))[metric] - pooled_metrics(b.sum(axis=0))[metric])
    if paired:
        if a.shape != b.shape:
            raise ValueError(f"paired blocks differ in shape: {a.shape} vs {b.shape}")
        w = resample_weights(len(a), n_resamples, seed)
        wa = wb = w
    else:
        wa = resample_weights(len(a), n_resamples, seed)
        wb = resample_weights(len(b), n_resamples, seed + 1)
    samples = pooled_metrics(wa @ a)[metric] - pooled_metrics(wb @ b)[metric]
    lo, hi = _percentiles(samples, level)
    return Interval(estimate, lo, hi, level, min(len(a), len(b)), n_resamples)


# ------------------------------------------------------------------------------ leakage audit
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
    return out


# ---------------------------------------------------------------------------------- multi-seed
def seed_summary(records: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> dict[str, Any]:
    """Mean and sample std (ddof=1; 0 for one seed) of ``keys`` over per-seed metric records."""
    out: dict[str, Any] = {"n_seeds": len(records)}
    for key in keys:
        values = np.array([float(r[key]) for r in records if r.get(key) is not None])
        out[f"{key}_mean"] = float(values.mean()) if len(values) else math.nan
        out[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return out
