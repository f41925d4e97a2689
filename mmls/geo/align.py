"""Bring a landslide inventory onto the composite grid and binarize it (MMLSv2 Sec. 2.2).

Raster inventories are reprojected with nearest neighbour (categorical labels survive);
vector inventories (GeoPackage, Shapefile, GeoJSON, any CRS) are reprojected and rasterized.
Both are processed window by window, so memory is bounded by ``window_px``, not the scene.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.features import rasterize
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds
from rasterio.windows import bounds as window_bounds
from rasterio.windows import transform as window_transform
from shapely import is_valid_reason, make_valid

from mmls.core.config import ParamError, Section
from mmls.core.errors import InputError
from mmls.core.io import PathLike, atomic_path, open_raster, read_raster
from mmls.geo.raster import Grid, check_same_grid, geotiff_profile, iter_windows, overlap_fraction

VECTOR_SUFFIXES = {".gpkg", ".shp", ".geojson", ".json", ".fgb"}


class AlignConfig(Section):
    """The ``align`` params section."""

    window_px: int  # windows of this size bound the memory of align and binarize
    # Vector inventories: keep only features whose `class_column` equals `class_value`
    # (both null: every feature is a landslide).
    class_column: str | None
    class_value: str | int | float | None

    def check(self) -> None:
        if self.window_px < 1:
            raise ParamError("window_px", "must be >= 1")


class BinarizeConfig(Section):
    """The ``binarize`` params section."""

    landslide_class: int  # the inventory class that becomes foreground (1)


class PartialCoverageWarning(UserWarning):
    """The inventory covers only part of the composite; the rest becomes background."""


@dataclass(frozen=True)
class AlignReport:
    kind: str  # "raster" or "vector"
    covered_fraction: float  # share of the composite's area inside the inventory's footprint
    n_features: int | None = None  # vector inventories only


def is_vector(path: PathLike) -> bool:
    return Path(path).suffix.lower() in VECTOR_SUFFIXES


def align_inventory(
    composite: Grid,
    inventory_path: PathLike,
    out_path: PathLike,
    *,
    window_px: int = 1024,
    burn_value: int = 1,
    class_column: str | None = None,
    class_value: object | None = None,
) -> AlignReport:
    """Write ``inventory_path`` resampled onto ``composite``'s grid to ``out_path``.

    Raster inventories keep their class values and dtype; pixels outside the inventory get its
    nodata value (0 if it has none). Vector inventories are burnt as ``burn_value`` on 0.
    The output is re-opened and checked against the composite grid before returning.
    """
    if is_vector(inventory_path):
        report = _align_vector(
            composite, inventory_path, out_path, window_px, burn_value, class_column, class_value
        )
    else:
        report = _align_raster(composite, inventory_path, out_path, window_px)
    check_same_grid(composite, "the composite", out_path)
    if report.covered_fraction < 1.0 and report.kind == "raster":
        warnings.warn(
            f"{inventory_path}: inventory covers only {report.covered_fraction:.1%} of the "
            "composite; uncovered pixels become background (0) after binarization",
            PartialCoverageWarning,
            stacklevel=2,
        )
    return report


def _align_raster(
    composite: Grid, inventory_path: PathLike, out_path: PathLike, window_px: int
) -> AlignReport:
    with open_raster(inventory_path) as src:
        if src.crs is None:
            raise InputError(inventory_path, "inventory raster has no CRS")
        if src.count != 1:
            raise InputError(inventory_path, f"inventory raster must have 1 band, has {src.count}")
        footprint = transform_bounds(src.crs, composite.crs, *src.bounds, densify_pts=21)
        covered = overlap_fraction(composite, footprint)
        if covered == 0.0:
            raise InputError(
                inventory_path,
                f"inventory does not overlap the composite at all (inventory bounds {footprint} "
                f"vs composite bounds {composite.bounds}, in the composite's CRS)",
            )
        fill = src.nodata if src.nodata is not None else 0
        profile = geotiff_profile(composite, 1, src.dtypes[0], nodata=src.nodata)
        with (
            WarpedVRT(
                src,
                crs=composite.crs,
                transform=composite.transform,
                width=composite.width,
                height=composite.height,
                resampling=Resampling.nearest,
                nodata=fill,
            ) as vrt,
            atomic_path(out_path) as tmp,
            rasterio.open(tmp, "w", **profile) as dst,
        ):
            for window in iter_windows(composite.width, composite.height, window_px):
                try:
                    dst.write(read_raster(vrt, 1, window=window), 1, window=window)
                except RasterioIOError as exc:
                    raise InputError(inventory_path, f"read failed ({exc})") from exc
    return AlignReport("raster", covered)


def _read_vector(
    composite: Grid, inventory_path: PathLike, class_column: str | None, class_value: object
):
    import geopandas as gpd  # deferred: heavy, only vector inventories need it

    path = Path(inventory_path)
    if not path.exists():
        raise InputError(path, "file not found")
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises several types for corrupt/unknown files
        raise InputError(path, f"not a readable vector file ({exc})") from exc
    if len(gdf) == 0:
        raise InputError(path, "inventory has no features")
    if gdf.crs is None:
        raise InputError(path, "inventory has no CRS")
    if class_column is not None:
        if class_column not in gdf.columns:
            raise InputError(path, f"no column {class_column!r} (columns: {list(gdf.columns)})")
        gdf = gdf[gdf[class_column] == class_value]
        if len(gdf) == 0:
            raise InputError(path, f"no feature has {class_column} == {class_value!r}")
    gdf = repair_invalid(gdf[gdf.geometry.notna() & ~gdf.geometry.is_empty], path)
    try:
        return gdf.to_crs(composite.crs)
    except Exception as exc:  # pyproj.ProjError, e.g. Earth CRS -> Mars CRS
        raise InputError(
            path,
            f"cannot reproject from the inventory's CRS ({gdf.crs}) to the composite's "
            f"({composite.crs}): {exc}. Note that GeoJSON can only hold EPSG:4326; store Mars "
            "polygons as GeoPackage or Shapefile",
        ) from exc


class InvalidGeometryWarning(UserWarning):
    """Inventory polygons that are not valid (self-intersecting, ...) were repaired."""


def repair_invalid(gdf: Any, path: PathLike, show: int = 3) -> Any:
    """``gdf`` with its invalid geometries repaired by ``make_valid``, warning with their count
    and the first few feature ids.

    Repaired, not refused: a self-intersecting outline (a bow-tie where a digitiser's line
    crossed itself) is a slip that is common in hand-made inventories, and it would block the
    whole inventory over one feature. Burnt as it is, the result follows GDAL's even-odd fill
    rule, so a part of an outline that winds over itself twice is left out as a hole;
    ``make_valid`` (method ``structure``) turns the outline into valid polygons first, and GEOS
    operations downstream (overlap tests, reprojection) get valid input.
    """
    invalid = ~gdf.geometry.is_valid
    if not invalid.any():
        return gdf
    ids = [str(i) for i in gdf.index[invalid][:show]]
    more = ", ..." if int(invalid.sum()) > show else ""
    reasons = is_valid_reason(gdf.geometry[invalid].iloc[0])
    warnings.warn(
        f"{path}: {int(invalid.sum())} invalid polygon(s) repaired with make_valid (feature ids "
        f"{', '.join(ids)}{more}; first: {reasons})",
        InvalidGeometryWarning,
        stacklevel=3,
    )
    gdf = gdf.copy()
    repaired = make_valid(
        gdf.geometry[invalid].to_numpy(), method="structure", keep_collapsed=False
    )
    gdf.loc[invalid, gdf.geometry.name] = repaired
    return gdf


def _align_vector(
    composite: Grid,
    inventory_path: PathLike,
    out_path: PathLike,
    window_px: int,
    burn_value: int,
    class_column: str | None,
    class_value: object,
) -> AlignReport:
    from shapely.geometry import box

    if not 0 < burn_value < 255:
        raise InputError("params.yaml", f"binarize.landslide_class={burn_value} must be in 1..254")
    gdf = _read_vector(composite, inventory_path, class_column, class_value)
    if not gdf.intersects(box(*composite.bounds)).any():
        raise InputError(
            inventory_path,
            f"no inventory feature overlaps the composite (features' bounds "
            f"{tuple(gdf.total_bounds)} vs composite bounds {composite.bounds}, composite CRS)",
        )
    covered = overlap_fraction(composite, tuple(gdf.total_bounds))
    geoms = gdf.geometry.to_numpy()
    index = gdf.sindex
    profile = geotiff_profile(composite, 1, "uint8", nodata=None)
    with atomic_path(out_path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        for window in iter_windows(composite.width, composite.height, window_px):
            w_transform = window_transform(window, composite.transform)
            hits = np.sort(index.query(box(*window_bounds(window, composite.transform))))
            shape = (int(window.height), int(window.width))
            if len(hits):
                burnt = rasterize(
                    ((geoms[i], burn_value) for i in hits),
                    out_shape=shape,
                    transform=w_transform,
                    fill=0,
                    dtype="uint8",
                )
            else:
                burnt = np.zeros(shape, dtype="uint8")
            dst.write(burnt, 1, window=window)
    return AlignReport("vector", covered, n_features=len(gdf))


def binarize_mask(
    composite: Grid,
    aligned_path: PathLike,
    out_path: PathLike,
    *,
    landslide_class: int = 1,
    window_px: int = 1024,
) -> tuple[int, int]:
    """Landslide class -> 1, every other value incl. nodata -> 0, as uint8 (Sec. 2.2).

    Returns (foreground pixels, total pixels).
    """
    check_same_grid(composite, "the composite", aligned_path)
    fg = 0
    with open_raster(aligned_path) as src:
        if src.nodata is not None and src.nodata == landslide_class:
            raise InputError(aligned_path, f"nodata value {src.nodata} equals the landslide class")
        profile = geotiff_profile(composite, 1, "uint8", nodata=None)
        with atomic_path(out_path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
            for window in iter_windows(composite.width, composite.height, window_px):
                binary = (read_raster(src, 1, window=window) == landslide_class).astype(np.uint8)
                fg += int(binary.sum())
                dst.write(binary, 1, window=window)
    return fg, composite.width * composite.height
