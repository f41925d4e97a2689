"""Spatial block k-fold cross-validation over the labelled patches (the honest protocol).

MMLSv2's test masks are not all public, so a user scores a recipe by cross-validation on the
labelled tiles. Patches are grouped as in the paper's partitioning (Sec. 2.4): 2 x 2 blocks of
the grid, merged where patches overlap (terminal origins), so that no pixel is shared across
folds. Groups are stratified by their mean foreground ratio (equal-count quantile bins, as
:func:`mmls.data.splitting.assign_splits`) and dealt to the k folds within each stratum after a
seeded shuffle, so every fold sees the whole range of landslide cover.

Each fold's model trains on the other folds and is selected on an *inner* block split of those
training folds (``inner_val_fraction`` of their groups, stratified the same way): the held-out
fold never chooses the checkpoint, so its score is not optimistic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from mmls.core.config import ParamError, Section
from mmls.core.errors import InputError
from mmls.data.protocols import Protocol, matched_random_drop, touching
from mmls.data.splitting import allocate_counts, quantile_strata

FOLD_COLUMNS: tuple[str, ...] = ("region", "col", "row", "group", "fold")


class Variant(Section):
    """A cross-validated recipe: a ``models`` entry plus overrides of its architecture (e.g.
    another encoder) and of the ``train`` / ``recipe`` sections, under a fold protocol
    (:mod:`mmls.data.protocols`; ``blocks`` unless named)."""

    model: str
    protocol: Protocol = "blocks"
    architecture: dict[str, Any] | None = None
    train: dict[str, Any] | None = None
    recipe: dict[str, Any] | None = None


class Rescored(Section):
    """A variant's fold checkpoints scored with other test-time decisions, no training (in
    ``ensembles``: the mean probability of every seed's checkpoint of a fold)."""

    of: str
    tta: bool
    threshold: float | Literal["calibrate"]

    def check(self) -> None:
        if not isinstance(self.threshold, str) and not 0 < self.threshold < 1:
            raise ParamError("threshold", "must be in (0, 1) or 'calibrate'")


class Replicates(Section):
    """Extra seeds for some variants: a second seed of every variant is a second full study, so
    seed replicates (and seed ensembles) are bought for the recipes that matter."""

    variants: list[str]
    seeds: list[int]

    def check(self) -> None:
        if len(set(self.seeds)) != len(self.seeds):
            raise ParamError("seeds", f"must list distinct seeds, got {self.seeds}")
        if self.variants and not self.seeds:
            raise ParamError("seeds", "must list a seed when variants are listed")


class Best(Section):
    """The current best recipes (``cv.best``), each row's second comparison, like with like: a
    row over seeds against ``mean``, a seed ensemble against ``ensemble``."""

    mean: str
    ensemble: str


class CVConfig(Section):
    """The ``cv`` params section."""

    splits: list[str]  # the labelled splits pooled for cross-validation (MMLSv2: train + val)
    k: int  # folds (challenge teams: 5)
    folds: list[int]  # the folds to run (0 .. k-1); a DVC matrix needs the list
    bins: int  # quantile strata of the group foreground ratio
    inner_val_fraction: float  # share of the training folds' groups that selects the checkpoint
    seed: int
    baseline: str  # the variant every other one is compared with (paired CIs)
    variants: dict[str, Variant]  # recipes trained on every fold
    rescored: dict[str, Rescored]  # other decisions on a variant's checkpoints
    ensembles: dict[str, Rescored]  # seed ensembles of a variant, one per fold
    replicates: Replicates  # extra seeds of chosen variants
    best: Best | None = None  # the current best recipes, each row's like-with-like comparison

    def check(self) -> None:
        if self.k < 2:
            raise ParamError("k", "must be >= 2")
        if not self.folds or not set(self.folds) <= set(range(self.k)):
            raise ParamError("folds", f"must list folds among 0 .. {self.k - 1}")
        if self.bins < 1:
            raise ParamError("bins", "must be >= 1")
        if not 0 < self.inner_val_fraction < 0.5:
            raise ParamError("inner_val_fraction", "must lie in (0, 0.5)")
        names = [*self.variants, *self.rescored, *self.ensembles]
        if len(set(names)) != len(names):
            raise ParamError("variants", "variants, rescored and ensembles share a name")
        if self.baseline not in self.variants:
            raise ParamError("baseline", f"{self.baseline!r} is not a variant")
        for kind in ("rescored", "ensembles"):
            for name, r in getattr(self, kind).items():
                if r.of not in self.variants:
                    raise ParamError(f"{kind}.{name}.of", f"{r.of!r} is not a variant")
                try:
                    r.check()
                except ParamError as exc:
                    raise ParamError(f"{kind}.{name}.{exc.key}", exc.problem) from exc
        if self.best is not None and self.best.mean not in [*self.variants, *self.rescored]:
            raise ParamError("best.mean", f"{self.best.mean!r} is not a variant or rescoring")
        if self.best is not None and self.best.ensemble not in self.ensembles:
            raise ParamError("best.ensemble", f"{self.best.ensemble!r} is not an ensemble")
        if unknown := [v for v in self.replicates.variants if v not in self.variants]:
            raise ParamError("replicates.variants", f"{unknown} are not variants")
        try:
            self.replicates.check()
        except ParamError as exc:
            raise ParamError(f"replicates.{exc.key}", exc.problem) from exc

    def seeds_of(self, variant: str, seeds: list[int]) -> list[int]:
        """The seeds ``variant`` is trained with: ``seeds`` (every variant's), then the replicate
        seeds where ``replicates.variants`` lists it."""
        if variant not in self.replicates.variants:
            return list(seeds)
        if repeated := sorted(set(seeds) & set(self.replicates.seeds)):
            raise InputError("params.yaml:cv.replicates.seeds", f"repeats {repeated} of `seeds`")
        return [*seeds, *self.replicates.seeds]

    def trained_variant(self, name: str) -> str:
        """The variant whose checkpoints ``name`` scores one by one: itself, or the variant a
        rescoring reuses (an ensemble scores several: :meth:`ensemble_seeds`)."""
        if name in self.rescored:
            return self.rescored[name].of
        if name not in self.variants:
            raise InputError("params.yaml:cv", f"has no variants or rescored entry {name!r}")
        return name

    def protocol_variant(self, name: str) -> str:
        """The variant whose fold protocol row ``name`` is scored under (an ensemble's or a
        rescoring's: the variant whose checkpoints it reuses)."""
        return self.ensembles[name].of if name in self.ensembles else self.trained_variant(name)

    def ensemble_seeds(self, name: str, seeds: list[int]) -> list[int]:
        """The seeds whose checkpoints ensemble ``name`` averages (an error below two)."""
        of = self.ensembles[name].of
        members = self.seeds_of(of, seeds)
        if len(members) < 2:
            raise InputError(
                f"params.yaml:cv.ensembles.{name}",
                f"needs >= 2 seeds of {of!r}, got {members}: list more `seeds`, or {of!r} in "
                "cv.replicates.variants",
            )
        return members

    @property
    def scored(self) -> list[str]:
        """Every row of the CV table, in params order."""
        return [*self.variants, *self.rescored, *self.ensembles]


def _deal(groups: pd.DataFrame, n_parts: int, bins: int, rng: np.random.Generator) -> dict:
    """Group -> part 0..n_parts-1: stratified by mean fg ratio, shuffled, dealt evenly."""
    groups = groups.copy()
    groups["stratum"] = quantile_strata(groups["rep"].to_numpy(), min(bins, len(groups)))
    fractions = {k: 1.0 / n_parts for k in range(n_parts)}
    sizes = [int((groups["stratum"] == s).sum()) for s in range(int(groups["stratum"].max()) + 1)]
    part_of: dict = {}
    for s, counts in enumerate(allocate_counts(sizes, fractions, tuple(range(n_parts)))):
        names = groups.loc[groups["stratum"] == s, "group"].to_numpy()
        shuffled = names[rng.permutation(len(names))]
        labels = [k for k in range(n_parts) for _ in range(counts[k])]
        part_of.update(zip(shuffled, labels, strict=True))
    return part_of


def group_key(patches: pd.DataFrame) -> pd.Series:
    """``<region>:<group>``: group names are unique within a region only."""
    return patches["region"].astype(str) + ":" + patches["group"].astype(str)


def group_table(patches: pd.DataFrame) -> pd.DataFrame:
    """One row per group: its key (:func:`group_key`) and mean foreground ratio (``rep``),
    sorted by key."""
    keyed = patches.assign(group=group_key(patches))
    return keyed.groupby("group", sort=True)["fg_ratio"].mean().rename("rep").reset_index()


def assign_folds(patches: pd.DataFrame, k: int, bins: int, seed: int) -> pd.DataFrame:
    """``patches`` (labelled; columns region, col, row, group, fg_ratio) with a ``fold``."""
    groups = group_table(patches)
    if len(groups) < k:
        raise InputError("params.yaml:cv.k", f"{k} folds need >= {k} groups, have {len(groups)}")
    part_of = _deal(groups, k, bins, np.random.default_rng(seed))
    out = patches[["region", "col", "row", "group"]].copy()
    out["fold"] = group_key(out).map(part_of).astype(int)
    return out


def random_folds(patches: pd.DataFrame, k: int, bins: int, seed: int) -> np.ndarray:
    """Patch-level k-fold (protocol ``random``): each patch its own group, stratified by its
    foreground ratio and dealt like the blocks; the fold of each row of ``patches``."""
    keys = group_key(patches) + "/" + patches["col"].astype(str) + "," + patches["row"].astype(str)
    table = pd.DataFrame({"group": keys, "rep": patches["fg_ratio"].to_numpy()})
    table = table.sort_values("group", kind="stable").reset_index(drop=True)
    part_of = _deal(table, k, bins, np.random.default_rng([seed, k]))
    return keys.map(part_of).to_numpy(dtype=int)


def inner_validation(
    patches: pd.DataFrame, fold: int, fraction: float, bins: int, seed: int
) -> np.ndarray:
    """Boolean mask over ``patches`` (with ``fold``): the inner validation groups of fold
    ``fold``, a stratified ``fraction`` of the groups of the other folds."""
    training = patches[patches["fold"] != fold]
    groups = group_table(training)
    rng = np.random.default_rng([seed, fold])
    n_val = max(1, round(fraction * len(groups)))
    groups["stratum"] = quantile_strata(groups["rep"].to_numpy(), min(bins, len(groups)))
    # a stratified draw: shuffle within strata, then take every m-th group in stratum order
    order = np.lexsort((rng.random(len(groups)), groups["stratum"].to_numpy()))
    step = len(groups) / n_val
    picked = groups["group"].to_numpy()[order][(np.arange(n_val) * step).astype(int)]
    picked_rows = group_key(patches).isin(set(picked)).to_numpy()
    return picked_rows & (patches["fold"] != fold).to_numpy()


@dataclass(frozen=True)
class FoldRows:
    """Store rows of one fold: its training folds (minus the inner validation), the inner
    validation that selects the checkpoint (and calibrates a threshold), the held-out fold;
    ``n_dropped``: training and inner-validation patches its protocol dropped."""

    train: np.ndarray
    val: np.ndarray
    held_out: np.ndarray
    n_dropped: int = 0


def pool(patches: pd.DataFrame, splits: Sequence[str]) -> pd.DataFrame:
    """The labelled patches of ``splits`` (the cross-validation pool), with their store row."""
    rows = patches.reset_index(drop=True)
    chosen = rows["split"].isin(list(splits)) & rows["labelled"].astype(bool)
    out = rows[chosen].copy()
    out["store_row"] = np.flatnonzero(chosen.to_numpy())
    return out


def fold_rows(
    patches: pd.DataFrame,
    folds: pd.DataFrame,
    fold: int,
    cfg: CVConfig,
    protocol: Protocol = "blocks",
    size_px: int | None = None,
) -> FoldRows:
    """Rows of ``fold`` under ``protocol`` from the store's patch table and ``folds.csv``
    (``size_px``, the patch size, is needed by the buffered protocols)."""
    pooled = pool(patches, cfg.splits)
    merged = pooled.merge(folds, on=["region", "col", "row", "group"])
    if not len(merged) == len(folds) == len(pooled):
        raise InputError(
            "data/folds.csv", "does not match the store's labelled patches (re-run cv_folds)"
        )
    if protocol == "random":
        merged["fold"] = random_folds(merged, cfg.k, cfg.bins, cfg.seed)
    inner = inner_validation(merged, fold, cfg.inner_val_fraction, cfg.bins, cfg.seed)
    held = (merged["fold"] == fold).to_numpy()
    train = ~held & ~inner
    dropped = np.zeros(len(merged), dtype=bool)
    if protocol in ("buffered", "buffered_control"):
        if size_px is None:
            raise ValueError(f"protocol {protocol!r} needs the patch size")
        dropped = touching(merged, held, size_px)
        if protocol == "buffered_control":
            rng = np.random.default_rng([cfg.seed, fold])
            dropped = matched_random_drop(dropped, [train, inner], rng)
    rows = merged["store_row"].to_numpy()
    return FoldRows(
        np.sort(rows[train & ~dropped]),
        np.sort(rows[inner & ~dropped]),
        np.sort(rows[held]),
        int(dropped.sum()),
    )
