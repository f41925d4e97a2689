"""The landslide polygons of a whole-scene map: a GeoPackage layer in the composite's CRS.

One polygon per kept 4-connected component of the mask (:mod:`mmls.inference.components`
builds the outlines in pixel coordinates and drops components smaller than ``min_area_m2``);
here they are transformed to CRS units. Attributes: ``area_m2`` (pixel count x pixel area,
i.e. the raster object's area, independent of simplification), ``n_pixels``, ``mean_prob``,
``max_prob`` and, when an inventory is given, ``matched``. The polygons are simplified with
``simplify_m`` (CRS units, topology preserved; 0 = exact pixel outlines, which rasterise back to
the mask exactly).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import geopandas as gpd
import shapely
from affine import Affine
from shapely import affinity

from mmls.core.errors import InputError
from mmls.core.io import PathLike
from mmls.geo.raster import Grid
from mmls.inference.components import Component

POLYGONS_NAME = "landslides.gpkg"
POLYGONS_LAYER = "landslides"


def write_polygons(
    path: PathLike,
    components: Sequence[Component],
    to_crs: Affine,
    grid: Grid,
    simplify_m: float = 0.0,
) -> gpd.GeoDataFrame:
    """GeoPackage layer ``landslides``: one polygon per kept component, in the composite's CRS.

    ``to_crs`` maps region pixel coordinates (x = col, y = row) to CRS coordinates.
    """
    if grid.crs is not None and not grid.crs.is_projected:
        raise InputError(path, "areas in m^2 need a projected CRS (the composite's is not)")
    pixel_area = abs(grid.transform.a * grid.transform.e)
    matrix = [to_crs.a, to_crs.b, to_crs.d, to_crs.e, to_crs.c, to_crs.f]
    geoms = []
    for comp in components:
        g = affinity.affine_transform(comp.geometry, matrix)
        if simplify_m > 0:
            g = g.simplify(simplify_m, preserve_topology=True)
        geoms.append(g)
    data: dict[str, Any] = {
        "area_m2": [c.n_pixels * pixel_area for c in components],
        "n_pixels": [c.n_pixels for c in components],
        "mean_prob": [c.prob_sum / c.n_pixels for c in components],
        "max_prob": [c.prob_max for c in components],
    }
    if components and components[0].matched is not None:
        data["matched"] = [bool(c.matched) for c in components]
    gdf = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=grid.crs), crs=grid.crs)
    if any(g.geom_type == "MultiPolygon" for g in geoms):
        gdf["geometry"] = [
            shapely.MultiPolygon([g]) if g.geom_type == "Polygon" else g for g in geoms
        ]
    gdf.to_file(path, driver="GPKG", layer=POLYGONS_LAYER)
    return gdf
