"""Confidence intervals from per-patch counts: spatial block bootstrap, and seeds as replicates.

Neighbouring pixels and patches are correlated, so the resampling unit is the 2 x 2 spatial
block of the split (``region, block_col, block_row``), never the pixel; blocks whose patches
share pixels (terminal origins) are one unit (:func:`merge_overlapping_blocks`), as they are one
unit of the split and of the CV folds. Each resample draws as
many blocks as there are, with replacement, sums their confusion counts and recomputes the
*pooled* metric (same zero-division policy as :mod:`mmls.metrics.confusion`); intervals are
percentile ones.

Training randomness is the second source of variance. A model trained once per seed gives S
replicate count tables over the same blocks. The estimate is the mean over seeds of the pooled
metric; a resample draws the blocks (as above) AND S seeds with replacement, and averages the
drawn seeds' pooled metrics on the drawn blocks (a two-level bootstrap: test-set sampling and
training randomness in one interval). With one seed the seed draw is trivial and the interval
covers test-set sampling only; the tables say that seed variance is not measured.

Differences between two models scored on the same patches are *paired* over blocks (both use
the same resampled blocks) and independent over seeds (seed k of one model has nothing in
common with seed k of another), unless both sides score the SAME checkpoints (a test-time
decision such as TTA against the plain argmax): then seed k is paired with seed k too. Test vs
isolated test (different patches) is unpaired.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from mmls.core.config import ParamError, Section
from mmls.metrics.confusion import COUNT_COLUMNS, SCORE_KEYS, scores_array

KEY_COLUMNS: tuple[str, ...] = ("region", "col", "row")
BLOCK_COLUMNS: tuple[str, ...] = ("region", "block_col", "block_row")


@dataclass(frozen=True)
class Interval:
    """A point estimate with its percentile bootstrap interval."""

    estimate: float
    lo: float
    hi: float
    level: float
    n_blocks: int
    n_resamples: int
    n_seeds: int = 1

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of 0 (a distinguishable difference)."""
        return self.lo > 0 or self.hi < 0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "excludes_zero": self.excludes_zero}


def merge_overlapping_blocks(table: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """``table`` (per-patch rows) with each patch's block replaced by the first block (lowest
    ``block_col``, then ``block_row``) of its ``group`` in ``groups`` (the store's patch table:
    blocks merged where patches share pixels, Sec. 2.4 with terminal origins)."""
    t = table.reset_index(drop=True)
    keyed = t[list(KEY_COLUMNS)].merge(
        groups[[*KEY_COLUMNS, "group"]], on=list(KEY_COLUMNS), how="left", validate="one_to_one"
    )
    if keyed["group"].isna().any():
        raise ValueError("patches without a group in the store's patch table")
    keyed[["block_col", "block_row"]] = t[["block_col", "block_row"]].to_numpy()
    order = keyed.sort_values(["block_col", "block_row"], kind="stable")
    first = order.groupby(["region", "group"], sort=False)[["block_col", "block_row"]].transform(
        "first"
    )
    out = t.copy()
    out[["block_col", "block_row"]] = first.sort_index().to_numpy()
    return out


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
        k, c = block_counts(t.merge(common, on=list(KEY_COLUMNS)))
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


def seed_draws(n_seeds: int, n_resamples: int, seed: int) -> np.ndarray:
    """R x S seed indices drawn with replacement (all 0 for one seed: no seed variance)."""
    if n_seeds == 1:
        return np.zeros((n_resamples, 1), dtype=np.int64)
    rng = np.random.default_rng([seed, 1])  # a stream of its own: block draws stay as they are
    return rng.integers(0, n_seeds, size=(n_resamples, n_seeds))


def _percentiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _check(metric: str, level: float, n_resamples: int) -> None:
    if metric not in SCORE_KEYS:
        raise ValueError(f"unknown metric {metric!r}; known: {SCORE_KEYS}")
    if not 0 < level < 1 or n_resamples < 1:
        raise ValueError("need 0 < level < 1 and n_resamples >= 1")


def _as_seeds(blocks: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """S x B x 4 from one B x 4 table or a list of S tables over the same blocks."""
    arr = np.asarray(blocks, dtype=np.int64)
    return arr[None] if arr.ndim == 2 else arr


def estimate(blocks: np.ndarray | Sequence[np.ndarray], metric: str) -> float:
    """Mean over seeds of the pooled metric of all blocks."""
    c = _as_seeds(blocks)
    return float(scores_array(c.sum(axis=1))[metric].mean())


def replicate_samples(
    blocks: np.ndarray | Sequence[np.ndarray],
    metric: str,
    weights: np.ndarray,
    seeds: np.ndarray,
) -> np.ndarray:
    """R bootstrap replicates: per resample, the mean over drawn seeds of the pooled metric on
    the drawn blocks (``weights`` R x B, ``seeds`` R x S' indices)."""
    c = _as_seeds(blocks)  # S x B x 4
    per_seed = scores_array(np.einsum("rb,sbk->srk", weights, c))[metric]  # S x R
    return per_seed[seeds, np.arange(len(weights))[:, None]].mean(axis=1)


def bootstrap_ci(
    blocks: np.ndarray | Sequence[np.ndarray],
    metric: str = "miou",
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Percentile CI of a pooled metric from B x 4 block counts (or one table per seed)."""
    _check(metric, level, n_resamples)
    c = _as_seeds(blocks)
    w = resample_weights(c.shape[1], n_resamples, seed)
    samples = replicate_samples(c, metric, w, seed_draws(len(c), n_resamples, seed))
    lo, hi = _percentiles(samples, level)
    return Interval(estimate(c, metric), lo, hi, level, c.shape[1], n_resamples, len(c))


def bootstrap_diff_ci(
    blocks_a: np.ndarray | Sequence[np.ndarray],
    blocks_b: np.ndarray | Sequence[np.ndarray],
    metric: str = "miou",
    *,
    paired: bool = True,
    same_checkpoints: bool = False,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> Interval:
    """Percentile CI of ``metric(a) - metric(b)`` (each a table or one table per seed).

    ``paired``: a and b are the same blocks in the same order (two models on one split); both
    use the same resampled blocks. Otherwise (e.g. test vs isolated test) they are resampled
    independently. Seeds are drawn independently for a and b, unless ``same_checkpoints`` (a
    and b score seed k's checkpoint alike, e.g. with and without TTA): then one draw serves both.
    """
    _check(metric, level, n_resamples)
    a, b = _as_seeds(blocks_a), _as_seeds(blocks_b)
    if paired:
        if a.shape[1:] != b.shape[1:]:
            raise ValueError(f"paired blocks differ in shape: {a.shape[1:]} vs {b.shape[1:]}")
        wa = wb = resample_weights(a.shape[1], n_resamples, seed)
    else:
        wa = resample_weights(a.shape[1], n_resamples, seed)
        wb = resample_weights(b.shape[1], n_resamples, seed + 1)
    if same_checkpoints and len(a) != len(b):
        raise ValueError(f"same checkpoints, yet {len(a)} seeds vs {len(b)}")
    sa = seed_draws(len(a), n_resamples, seed)
    sb = sa if same_checkpoints else seed_draws(len(b), n_resamples, seed + 2)
    samples = replicate_samples(a, metric, wa, sa) - replicate_samples(b, metric, wb, sb)
    lo, hi = _percentiles(samples, level)
    point = estimate(a, metric) - estimate(b, metric)
    return Interval(
        point, lo, hi, level, min(a.shape[1], b.shape[1]), n_resamples, min(len(a), len(b))
    )


def seed_spread(values: Sequence[float]) -> dict[str, float | int | None]:
    """Mean and sample sd (ddof=1; None for one seed) of one metric over seeds."""
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
        "n_seeds": len(v),
    }


class StatisticsConfig(Section):
    """The ``statistics`` params section."""

    n_resamples: int
    ci_level: float
    seed: int  # the same seed, hence the same resampled blocks, for every model: paired

    def check(self) -> None:
        if self.n_resamples < 100:
            raise ParamError("n_resamples", "must be >= 100")
        if not 0.5 <= self.ci_level < 1:
            raise ParamError("ci_level", "must lie in [0.5, 1)")
