"""Landslides: where they start (steep walls) and where they lie (low)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mmls.data.bands import BAND_NAMES
from mmls.data.synthetic.scene import SyntheticScene

STEEP = 18.0 / 90.0  # slope band value of an 18 degree slope


def test_landslides_start_at_steep_walls(scene: SyntheticScene) -> None:
    """Landslides touch steep terrain (their scarps) and lie lower than the scene's average."""
    slope = scene.bands[BAND_NAMES.index("slope")]
    dem = scene.bands[BAND_NAMES.index("dem")]
    valid = ~scene.nodata
    truth = scene.truth == 1
    assert 0.03 < truth.mean() < 0.6
    labels, n = ndimage.label(truth)
    assert n >= 5
    near_steep = ndimage.binary_dilation((slope > STEEP) & valid, iterations=3)
    touching = np.zeros(n + 1, bool)
    touching[np.unique(labels[near_steep & truth])] = True
    share = touching[labels[truth]].mean()  # landslide pixels in components at a wall
    assert share > 0.9, share
    assert slope[truth].mean() > slope[valid].mean()
    assert dem[truth].mean() < dem[valid].mean()
