"""The ``synthetic`` params section and the scene's fixed encoding (nodata, classes, grids).

The constants are the format contract every other module of the package writes to: nodata
values of the composite and the inventory, the inventory's class codes, and the quantization
grids that make the written bytes independent of ulp-level CPU differences.
"""

from __future__ import annotations

import math
from typing import Any

from affine import Affine
from pydantic import field_validator
from rasterio.crs import CRS
from rasterio.errors import CRSError

from mmls.core.config import ParamError, Section

NODATA: float = -9999.0
INV_LANDSLIDE, INV_BACKGROUND, INV_NODATA = 1, 0, 255
MARS_EQC = "+proj=eqc +lat_ts=0 +lat_0=0 +lon_0=0 +x_0=0 +y_0=0 +R=3396190 +units=m +no_defs"
#: Valid band values are multiples of 1/QUANT (the DEM: of 1/DEM_QUANT).
QUANT = 4096
DEM_QUANT = 65536
#: Slope (degrees) is scaled to [0, 1] by this divisor.
SLOPE_SCALE_DEG = 90.0
#: Tile size (px) of the written GeoTIFFs.
BLOCK = 256


class SyntheticConfig(Section):
    """The ``synthetic`` params section: the scene's size, grid, content and inventory grid."""

    seed: int
    width: int
    height: int
    pixel_size_m: float
    origin_x: float  # top-left corner, CRS units
    origin_y: float
    crs: str
    n_landslides: int
    nodata_fraction: float
    inventory_shift_px: tuple[int, int]  # inventory origin: dx left, dy up
    inventory_pad_px: int  # inventory extends this much further right and down
    n_troughs: int  # east-west troughs (chasmata)
    dem_min_m: float  # elevation mapped to DEM value 0
    dem_max_m: float  # elevation mapped to DEM value 1
    unmapped_patch_px: int  # side of a small unmapped (255) patch inside the scene; 0: none

    @field_validator("inventory_shift_px", mode="before")
    @classmethod
    def _pair(cls, v: Any) -> Any:
        """Accept the YAML list ``[dx, dy]`` for the tuple (strict mode would refuse it)."""
        return tuple(v) if isinstance(v, list) else v  # YAML has lists, not tuples

    def check(self) -> None:
        """Range and cross-field checks the types cannot express; each error names its key."""
        if self.width < 64 or self.height < 64:
            raise ParamError("width" if self.width < 64 else "height", "must be at least 64 px")
        if self.width * self.height > 60_000_000:
            raise ParamError("width", "makes a scene over 60 Mpx (memory)")
        if not (math.isfinite(self.pixel_size_m) and self.pixel_size_m > 0):
            raise ParamError("pixel_size_m", "must be a positive number")
        for key in ("origin_x", "origin_y", "dem_min_m", "dem_max_m"):
            if not math.isfinite(getattr(self, key)):
                raise ParamError(key, "must be finite")
        if not self.dem_max_m - self.dem_min_m >= 1000.0:
            raise ParamError("dem_max_m", "must exceed dem_min_m by at least 1000 m")
        if not 0.0 <= self.nodata_fraction < 0.5:
            raise ParamError("nodata_fraction", "must lie in [0, 0.5)")
        if self.n_landslides < 0:
            raise ParamError("n_landslides", "must be >= 0")
        if not 1 <= self.n_troughs <= max(1, self.height // 100):
            raise ParamError("n_troughs", f"must lie in [1, height/100 = {self.height // 100}]")
        if min(self.inventory_shift_px) < 0:
            raise ParamError("inventory_shift_px", "must be two non-negative integers [dx, dy]")
        if self.inventory_pad_px < 0:
            raise ParamError("inventory_pad_px", "must be >= 0")
        if not 0 <= self.unmapped_patch_px <= min(self.width, self.height) // 4:
            raise ParamError("unmapped_patch_px", "must lie in [0, min(width, height) / 4]")
        try:
            CRS.from_user_input(self.crs)
        except CRSError as exc:
            raise ParamError("crs", f"is not a valid CRS ({exc})") from exc

    @property
    def transform(self) -> Affine:
        """Affine transform of the composite (north-up, square pixels)."""
        p = self.pixel_size_m
        return Affine(p, 0.0, self.origin_x, 0.0, -p, self.origin_y)

    @property
    def inventory_transform(self) -> Affine:
        """The inventory's grid: origin ``inventory_shift_px`` pixels left and up."""
        dx, dy = self.inventory_shift_px
        p = self.pixel_size_m
        return Affine(p, 0.0, self.origin_x - dx * p, 0.0, -p, self.origin_y + dy * p)

    @property
    def inventory_shape(self) -> tuple[int, int]:
        """(height, width) of the inventory: shifted origin plus ``inventory_pad_px``."""
        dx, dy = self.inventory_shift_px
        pad = self.inventory_pad_px
        return self.height + dy + pad, self.width + dx + pad
