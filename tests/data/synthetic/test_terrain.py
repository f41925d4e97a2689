"""Terrain: the slope band is the DEM's gradient, and the canyons have steep walls."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mmls.data.bands import BAND_NAMES
from mmls.data.synthetic.config import QUANT
from mmls.data.synthetic.scene import SyntheticScene


def test_slope_is_the_dem_gradient(scene: SyntheticScene) -> None:
    """Slope (degrees / 90) = arctan |grad z| with z in metres and the pixel size (Sec. 2.1)."""
    cfg = scene.config
    dem = scene.bands[BAND_NAMES.index("dem")].astype(np.float64)
    z = dem * (cfg.dem_max_m - cfg.dem_min_m) + cfg.dem_min_m
    dz_dy, dz_dx = np.gradient(z, cfg.pixel_size_m)
    expected = np.degrees(np.arctan(np.hypot(dz_dx, dz_dy))) / 90.0
    ok = ~ndimage.binary_dilation(scene.nodata, iterations=1)  # 3x3 fully valid
    slope = scene.bands[BAND_NAMES.index("slope")].astype(np.float64)
    assert np.abs(slope[ok] - expected[ok]).max() <= 0.5 / QUANT + 1e-9
    assert slope[ok].max() > 25.0 / 90.0, "no steep canyon walls"
