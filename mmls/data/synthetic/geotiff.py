"""Writing the scene: the composite (7 x float32) and the inventory (uint8) as GeoTIFFs.

Tiled, deflate-compressed with a predictor, no timestamp tag, written atomically: the same
scene gives the same bytes, which DVC's hashes of the ``synthetic_scene`` outputs rely on.
"""

from __future__ import annotations

from typing import Any

import rasterio
from affine import Affine
from rasterio.crs import CRS

from mmls.core.io import PathLike, atomic_path
from mmls.data.bands import BAND_NAMES
from mmls.data.synthetic.config import BLOCK, INV_NODATA, NODATA
from mmls.data.synthetic.scene import SyntheticScene


def _profile(
    width: int, height: int, count: int, dtype: str, crs: str, transform: Affine, nodata: float
) -> dict[str, Any]:
    """The rasterio creation profile shared by both files (predictor by dtype)."""
    return {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": dtype,
        "crs": CRS.from_user_input(crs),
        "transform": transform,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": BLOCK,
        "blockysize": BLOCK,
        "compress": "deflate",
        "predictor": 3 if dtype == "float32" else 2,
        "interleave": "pixel",
    }


def write_scene(scene: SyntheticScene, composite_path: PathLike, inventory_path: PathLike) -> None:
    """Write the composite (7 x float32) and the inventory (uint8) GeoTIFFs atomically."""
    count, h, w = scene.bands.shape
    prof = _profile(w, h, count, "float32", scene.crs, scene.transform, NODATA)
    with atomic_path(composite_path) as tmp, rasterio.open(tmp, "w", **prof) as dst:
        dst.write(scene.bands)
        for i, name in enumerate(BAND_NAMES, start=1):
            dst.set_band_description(i, name)
    ih, iw = scene.inventory.shape
    prof = _profile(iw, ih, 1, "uint8", scene.crs, scene.inventory_transform, INV_NODATA)
    with atomic_path(inventory_path) as tmp, rasterio.open(tmp, "w", **prof) as dst:
        dst.write(scene.inventory, 1)
        dst.set_band_description(1, "landslide_inventory")
