"""A map scored against an inventory: pixel metrics and object metrics, streamed in strips.

The inventory (raster classes or polygons, any CRS) is first aligned to the map's grid as the
pipeline aligns its own (:func:`mmls.geo.align.align_inventory`). Then, strip by strip: a pixel
is scored where the map is valid (not nodata) and the inventory says anything (not its nodata);
landslide = the inventory's ``landslide_class``. Pixel metrics pool TP/FP/FN/TN over those pixels
(:mod:`mmls.metrics.confusion`); object metrics match 4-connected components under the rule of
:mod:`mmls.inference.components`. Scoring the map afterwards gives the same numbers as scoring it
while it is written (the counts and the component matches do not depend on the strips).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from rasterio.windows import Window

from mmls.core.io import PathLike, open_raster, read_raster
from mmls.geo.align import align_inventory
from mmls.geo.raster import Grid
from mmls.inference.components import ObjectTracker
from mmls.inference.scene import PredictConfig
from mmls.inference.sinks import MASK_NAME, MASK_NODATA
from mmls.metrics.confusion import Confusion, confusion_from_labels, scores


def score_map(
    map_dir: PathLike,
    inventory: PathLike,
    landslide_class: int,
    cfg: PredictConfig,
    strip_rows: int = 256,
) -> dict[str, Any]:
    """Pixel and object scores of ``<map_dir>/mask.tif`` against ``inventory``."""
    mask_path = Path(map_dir) / MASK_NAME
    with open_raster(mask_path) as src:
        grid = Grid.of(src)
    with tempfile.TemporaryDirectory(dir=Path(map_dir).parent) as tmp:
        aligned = Path(tmp) / "inventory.tif"
        align_inventory(grid, inventory, aligned, window_px=1024, burn_value=landslide_class)
        confusion, tracker, n_scored = _stream(
            mask_path, aligned, landslide_class, grid, strip_rows
        )
    pixel_area = abs(grid.transform.a * grid.transform.e)
    _, objects = tracker.finish(
        min_pixels=cfg.min_area_m2 / pixel_area if cfg.min_area_m2 else 0.0,
        min_overlap_px=cfg.match_min_overlap_px,
        min_iou=cfg.match_min_iou,
    )
    c = confusion
    record: dict[str, Any] = {"inventory": str(inventory), "n_scored_pixels": n_scored}
    record.update(scores(c), tp=c.tp, fp=c.fp, fn=c.fn, tn=c.tn)
    record.update(objects.record() if objects is not None else {})
    record["object_match_rule"] = cfg.match_rule()
    return record


def _stream(
    mask_path: Path, truth_path: Path, landslide_class: int, grid: Grid, strip_rows: int
) -> tuple[Confusion, ObjectTracker, int]:
    confusion = Confusion()
    tracker = ObjectTracker(grid.width, polygons=False)
    n_scored = 0
    with open_raster(mask_path) as mask_ds, open_raster(truth_path) as truth_ds:
        for row in range(0, grid.height, strip_rows):
            w = Window(0, row, grid.width, min(strip_rows, grid.height - row))
            mask = read_raster(mask_ds, 1, window=w)
            classes = read_raster(truth_ds, 1, window=w)
            valid = mask != MASK_NODATA
            fg = valid & (mask == 1)
            mapped = valid if truth_ds.nodata is None else valid & (classes != truth_ds.nodata)
            true_fg = (classes == landslide_class) & mapped
            confusion += confusion_from_labels(fg[mapped], true_fg[mapped])
            tracker.feed(fg, None, true_fg, mapped)
            n_scored += int(mapped.sum())
    return confusion, tracker, n_scored
