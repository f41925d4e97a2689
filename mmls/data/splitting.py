"""Spatially grouped, foreground-stratified partitioning (MMLSv2 Sec. 2.4, Eqs. 1-2).

Pure functions from a patch table to an assignment:
1. ``block_col, block_row = floor(col / 2), floor(row / 2)`` (Eq. 2 with 0-based indices; the
   paper's ceil pairs columns correctly only for 1-based ones).
2. Blocks holding patches that share a pixel (a terminal patch overlaps its neighbour, Sec. 2.3)
   are merged into one group, so that overlapping patches always land in the same split.
3. Each group's representative foreground ratio is the mean ``fg_ratio`` of its patches; groups
   are binned into ``bins`` equal-count quantile strata of that value.
4. Within each stratum, the groups (shuffled by a seeded generator) are dealt to train / val /
   test by the target fractions, with remainders carried across strata so that the totals stay
   within one group of target.
Isolated-region patches all go to ``isolated_test`` and take no part in any of this.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mmls.core.config import ParamError, Section
from mmls.core.errors import InputError
from mmls.core.paths import BASE_SPLITS, SPLITS, tile_name

SPLIT_COLUMNS = [
    "region",
    "col",
    "row",
    "x_off",
    "y_off",
    "block_col",
    "block_row",
    "group",
    "fg_pixels",
    "fg_ratio",
    "stratum",
    "split",
    "labelled",
    "source",
]


class SplitConfig(Section):
    """The ``split`` params section (Sec. 2.4)."""

    seed: int
    bins: int  # equal-count quantile strata of the block fg ratio
    fractions: dict[str, float]  # train / val / test shares of the base groups

    def check(self) -> None:
        if self.bins < 1:
            raise ParamError("bins", "must be >= 1")
        try:
            validate_fractions(self.fractions)
        except InputError as exc:
            raise ParamError("fractions", exc.problem) from exc


def validate_fractions(fractions: Mapping[str, float]) -> dict[str, float]:
    where = "params.yaml:split.fractions"
    if set(fractions) != set(BASE_SPLITS):
        raise InputError(where, f"must name exactly {BASE_SPLITS}")
    values = {k: float(fractions[k]) for k in BASE_SPLITS}
    if any(v < 0 for v in values.values()) or not math.isclose(sum(values.values()), 1.0):
        raise InputError(where, f"must be >= 0 and sum to 1: {values}")
    return values


def overlap_groups(patches: pd.DataFrame, size: int) -> pd.Series:
    """Group label per patch: its 2x2 block, merged with every block it shares a pixel with.

    Labels are ``"<block_col>_<block_row>"`` of the group's smallest block (deterministic).
    """
    blocks = list(zip(patches["block_col"], patches["block_row"], strict=True))
    parent: dict[tuple[int, int], tuple[int, int]] = {b: b for b in blocks}

    def find(b: tuple[int, int]) -> tuple[int, int]:
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        return b

    # Patches overlap iff their offsets differ by < size on both axes; only neighbours
    # across a terminal origin can, so comparing each patch to those within `size` suffices.
    xs = patches["x_off"].to_numpy()
    ys = patches["y_off"].to_numpy()
    order = np.argsort(xs, kind="stable")
    for i_pos, i in enumerate(order):
        for j in order[i_pos + 1 :]:
            if xs[j] - xs[i] >= size:
                break
            if abs(int(ys[j]) - int(ys[i])) < size:
                a, b = find(blocks[i]), find(blocks[j])
                if a != b:
                    parent[max(a, b)] = min(a, b)
    return pd.Series([f"{find(b)[0]}_{find(b)[1]}" for b in blocks], index=patches.index)


def quantile_strata(values: np.ndarray, bins: int) -> np.ndarray:
    """Equal-count quantile bins: the i-th smallest of n values goes to bin floor(i*bins/n).

    Ties are broken by position, so the result is deterministic and every bin is non-empty
    whenever n >= bins.
    """
    if bins < 1:
        raise InputError("params.yaml:split.bins", f"{bins} must be >= 1")
    n = len(values)
    order = np.argsort(values, kind="stable")
    strata = np.empty(n, dtype=np.int64)
    strata[order] = (np.arange(n) * bins) // max(n, 1)
    return strata


def allocate_counts(
    n_per_stratum: list[int], fractions: Mapping[Any, float], keys: Sequence[Any] = BASE_SPLITS
) -> list[dict[Any, int]]:
    """Per stratum, how many groups each of ``keys`` gets: largest remainder with carried
    residue (so totals stay within one group of target even when strata are small)."""
    carry = dict.fromkeys(keys, 0.0)
    out = []
    for n in n_per_stratum:
        ideal = {k: n * fractions[k] + carry[k] for k in keys}
        counts = {k: max(0, math.floor(ideal[k])) for k in keys}
        left = n - sum(counts.values())
        by_remainder = sorted(keys, key=lambda k: (-(ideal[k] - counts[k]), k))
        for k in by_remainder[:left]:
            counts[k] += 1
        carry = {k: ideal[k] - counts[k] for k in keys}
        out.append(counts)
    return out


def assign_splits(
    index: pd.DataFrame,
    *,
    size: int,
    fractions: Mapping[str, float],
    bins: int,
    seed: int,
) -> pd.DataFrame:
    """Return ``index`` (region, col, row, x_off, y_off, fg_pixels, fg_ratio) with the split
    columns of :data:`SPLIT_COLUMNS`, sorted by region, col, row."""
    fractions = validate_fractions(fractions)
    table = index.copy()
    table["block_col"] = table["col"] // 2  # Eq. 2, 0-based
    table["block_row"] = table["row"] // 2
    table["group"] = ""
    table["stratum"] = -1
    table["split"] = "isolated_test"

    base = table["region"] == "base"
    if not base.any():
        raise InputError("data/tiles/index.csv", "the base region has no patch to split")
    table.loc[base, "group"] = overlap_groups(table[base], size)
    iso = table["region"] == "isolated"
    table.loc[iso, "group"] = (
        table.loc[iso, "block_col"].astype(str) + "_" + table.loc[iso, "block_row"].astype(str)
    )

    groups = table[base].groupby("group", sort=True)["fg_ratio"].mean().rename("rep").reset_index()
    groups["stratum"] = quantile_strata(groups["rep"].to_numpy(), bins)
    rng = np.random.default_rng(seed)
    n_per_stratum = [int((groups["stratum"] == s).sum()) for s in range(bins)]
    group_split: dict[str, str] = {}
    for s, counts in enumerate(allocate_counts(n_per_stratum, fractions)):
        names = groups.loc[groups["stratum"] == s, "group"].to_numpy()
        shuffled = names[rng.permutation(len(names))]
        labels = [k for k in BASE_SPLITS for _ in range(counts[k])]
        group_split.update(zip(shuffled, labels, strict=True))
    stratum_of = dict(zip(groups["group"], groups["stratum"], strict=True))
    table.loc[base, "split"] = table.loc[base, "group"].map(group_split)
    table.loc[base, "stratum"] = table.loc[base, "group"].map(stratum_of)

    if not iso.any():
        warnings.warn(
            "the isolated region has no patch: isolated_test is empty (nothing to score there)",
            stacklevel=2,
        )
    wanted = [k for k in BASE_SPLITS if fractions[k] > 0]
    empty = [k for k in wanted if not (table["split"] == k).any()]
    if empty:
        counts = table["split"].value_counts().to_dict()
        raise InputError(
            "params.yaml",
            f"split(s) {empty} received no patch ({len(groups)} base groups, patches per split "
            f"{counts}); use a larger scene, fewer split.bins or other split.fractions",
        )
    table["stratum"] = table["stratum"].astype(int)
    table["labelled"] = True
    table["source"] = [tile_name(c, r) for c, r in zip(table["col"], table["row"], strict=True)]
    return (
        table[SPLIT_COLUMNS]
        .sort_values(["region", "col", "row"], kind="stable")
        .reset_index(drop=True)
    )


class Table1Config(Section):
    """The ``table1`` params section (Sec. 3, Table 1)."""

    # Standard deviation convention: 0 = population (what the released MMLSv2 tiles show the
    # paper used: train 25.64, val 24.05 reproduce only with ddof 0), 1 = sample.
    std_ddof: int

    def check(self) -> None:
        if self.std_ddof not in (0, 1):
            raise ParamError("std_ddof", "must be 0 (population) or 1 (sample)")


STAT_KEYS = ("avg_fg_pct", "std_fg_pct", "min_fg_pct", "max_fg_pct")
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def table1(splits: pd.DataFrame, std_ddof: int) -> dict[str, dict[str, float | int | None]]:
    """Table 1: per split the number of images and avg/std/min/max foreground in percent
    (Eq. 1 over each patch's H x W pixels), plus quartiles and deciles (``q10_pct`` ...).

    A split without masks (unlabelled) or without patches has its count and null statistics.
    """
    labelled = splits["labelled"].astype(bool) if "labelled" in splits else True
    out: dict[str, dict[str, float | int | None]] = {}
    for split in SPLITS:
        in_split = splits["split"] == split
        pct = splits.loc[in_split & labelled, "fg_ratio"].to_numpy(dtype=np.float64) * 100.0
        row: dict[str, float | int | None] = {"n_images": int(in_split.sum())}
        if len(pct) == 0:
            row.update(dict.fromkeys(STAT_KEYS))
            row.update({f"q{int(q * 100):02d}_pct": None for q in QUANTILES})
        else:
            std = float(pct.std(ddof=std_ddof)) if len(pct) > std_ddof else 0.0
            row.update(
                avg_fg_pct=round(float(pct.mean()), 4),
                std_fg_pct=round(std, 4),
                min_fg_pct=round(float(pct.min()), 4),
                max_fg_pct=round(float(pct.max()), 4),
            )
            quantiles = np.quantile(pct, QUANTILES)
            row.update(
                {
                    f"q{int(q * 100):02d}_pct": round(float(v), 4)
                    for q, v in zip(QUANTILES, quantiles, strict=True)
                }
            )
        out[split] = row
    return out


def fg_intervals(
    splits: pd.DataFrame, edges_pct: tuple[int, ...] = tuple(range(0, 101, 10))
) -> pd.DataFrame:
    """Fig. 2: share (%) of each split's patches per foreground-ratio interval.

    One row per interval, one column per split (wide, so that ``dvc plots`` draws one line per
    split against ``interval_hi_pct``). Intervals are left-open, right-closed: (0, 10],
    (10, 20], ... since a kept patch has r > 0.
    """
    rows = []
    if "labelled" in splits:
        splits = splits[splits["labelled"].astype(bool)]
    for lo, hi in zip(edges_pct[:-1], edges_pct[1:], strict=True):
        row: dict[str, object] = {"interval": f"{lo}-{hi}%", "interval_hi_pct": hi}
        for split in SPLITS:
            pct = splits.loc[splits["split"] == split, "fg_ratio"].to_numpy() * 100.0
            n_in = int(((pct > lo) & (pct <= hi)).sum())
            row[split] = round(100.0 * n_in / max(len(pct), 1), 4)
        rows.append(row)
    return pd.DataFrame(rows)
