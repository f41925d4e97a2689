"""Fold protocols: how a cross-validation variant (``cv.variants.<name>.protocol``) splits the
pool into its held-out fold and what its training may see.

- ``blocks`` (the default, the headline): the spatial 2 x 2 block folds of ``folds.csv``
  (:mod:`mmls.data.folds`); no pixel is shared across folds, but most held-out patches touch a
  training patch along an edge or a corner.
- ``random``: patch-level k-fold, the anchor's protocol (DualSwinFusionSeg: 5 random folds of
  train + val), stratified by foreground ratio like the blocks and seeded: neighbours, and at
  terminal origins overlapping patches, fall on both sides of a fold.
- ``buffered``: the block folds, and every training and inner-validation patch that touches a
  held-out patch (Chebyshev gap <= 0, :mod:`mmls.data.leakage`) is dropped from that fold.
- ``buffered_control``: the block folds, and as many training and inner-validation patches as
  ``buffered`` drops are dropped at random (seeded): ``buffered`` minus this control is the
  effect of neighbourhood leakage, free of the effect of training on fewer patches.

The inner validation that selects the checkpoint is drawn by groups from the training folds
under every protocol (:func:`mmls.data.folds.inner_validation`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from mmls.data.leakage import chebyshev_gaps

Protocol = Literal["blocks", "random", "buffered", "buffered_control"]

PROTOCOL_DEFINITIONS: dict[str, str] = {
    "blocks": "spatial block k-fold CV (2 x 2 blocks, merged where patches overlap)",
    "random": "patch-level random k-fold CV (the anchor's protocol; neighbours and overlapping "
    "patches fall on both sides of a fold)",
    "buffered": "spatial block k-fold CV, every training patch that touches a held-out patch "
    "dropped from that fold",
    "buffered_control": "spatial block k-fold CV, as many random training patches dropped as "
    "`buffered` drops (its control)",
}

CV_SELECTION = (
    "each fold's checkpoint (and threshold) selected on an inner block split of its training "
    "folds, scored on the held-out fold"
)


def definition(protocol: str) -> str:
    """The one-line description of ``protocol`` that a CV row and a bundle's score carry."""
    return f"{PROTOCOL_DEFINITIONS[protocol]}: {CV_SELECTION}"


def touching(patches: pd.DataFrame, held_out: np.ndarray, size_px: int) -> np.ndarray:
    """Boolean mask over ``patches`` (columns region, x_off, y_off): the patches outside
    ``held_out`` whose footprint touches or overlaps a held-out patch of the same region."""
    out = np.zeros(len(patches), dtype=bool)
    regions = patches["region"].astype(str).to_numpy()
    xy = patches[["x_off", "y_off"]].to_numpy(dtype=np.int64)
    for region in np.unique(regions):
        here = regions == region
        others = np.flatnonzero(here & ~held_out)
        _, kind = chebyshev_gaps(xy[others], xy[here & held_out], size_px)
        out[others[kind > 0]] = True
    return out


def matched_random_drop(
    dropped: np.ndarray, roles: list[np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    """Boolean mask: within each role (disjoint masks, e.g. training and inner validation), as
    many patches as ``dropped`` holds in that role, drawn uniformly from the role."""
    out = np.zeros(len(dropped), dtype=bool)
    for role in roles:
        members = np.flatnonzero(role)
        n = int((dropped & role).sum())
        out[rng.choice(members, size=n, replace=False)] = True
    return out
