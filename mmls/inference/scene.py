"""Whole-scene landslide mapping with a trained model (sliding windows, blended, streamed).

MMLSv2 trains and scores on 128 x 128 patches; mapping a whole composite needs more care. This
module applies a model to a composite GeoTIFF of any size (or to one region window of it), in
steps of one module each:

Windows (:mod:`mmls.inference.windows`)
    Square windows of the training tile size at a stride of ``size - overlap_px``, plus a
    terminal window flush with the far edge: nothing is padded, every pixel of the region is
    covered.

Blending (:mod:`mmls.inference.blending`)
    Each window's landslide probability is weighted by a linear ramp over the overlap and the sum
    normalised by the weights, so the map fades from one window into the next (no seam).
    All-nodata windows are skipped.

Outputs (:mod:`mmls.inference.sinks`, :mod:`mmls.inference.polygons`; on the composite's grid)
    - probability GeoTIFF (float32, nodata -1) and binary mask GeoTIFF (uint8, 1 = probability
      strictly greater than ``threshold``, nodata 255), written by a row sink;
    - GeoPackage of landslide polygons, one per 4-connected component of the mask
      (:mod:`mmls.inference.components` tracks them, :mod:`mmls.inference.polygons` writes them).

Memory
    The scene is processed one row of windows (a strip of ``size`` rows) at a time. The
    accumulators hold one strip (2 x ``size`` x width float32); inputs are read per batch of
    windows; finished rows are written in chunks aligned to the output's 256-row block grid (so
    every compressed block is written once); components and pixel counts are streamed too. Memory
    is therefore bounded by the scene's *width*, never its area -- except for the landslide
    polygons themselves, which are the output.

Scoring against an inventory on the same grid (the aligned inventory's classes: the landslide
class is foreground, its nodata is UNMAPPED and not scored; only valid pixels of the region
count). Without an inventory (a new region) the map is written and not scored.
    - pixel metrics: TP/FP/FN/TN pooled over the mapped pixels (:mod:`mmls.inference.sinks`);
    - object metrics on 4-connected components and their match rule
      (:mod:`mmls.inference.components`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import rasterio
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from tqdm import tqdm

from mmls.core.config import ParamError, Section
from mmls.core.errors import InputError
from mmls.core.io import PathLike, open_raster
from mmls.geo.raster import Grid, check_north_up, check_same_grid
from mmls.inference.blending import Rows, RowSource, local_rows
from mmls.inference.components import ObjectStats, ObjectTracker
from mmls.inference.polygons import POLYGONS_NAME, write_polygons
from mmls.inference.predictor import Predictor
from mmls.inference.sinks import BLOCK, RowSink, open_sink
from mmls.inference.windows import RowPlan
from mmls.metrics.confusion import Confusion, scores

GDAL_CACHE_MB = 256  # caps GDAL's block cache (default: 5 % of RAM) so RSS stays bounded


class PredictConfig(Section):
    """How a scene is mapped (the engine part of the ``map`` params section,
    :class:`mmls.inference.mapping.MapConfig`; every choice is the project's)."""

    overlap_px: int  # overlap of neighbouring windows (stride = size - overlap); 0 = tile by tile
    batch_size: int  # windows per forward pass
    simplify_m: float  # polygon simplification tolerance, CRS units (0 = exact pixel outlines)
    min_area_m2: float  # drop polygons (and predicted objects) smaller than this
    match_min_overlap_px: int  # object match: >= this many shared pixels ...
    match_min_iou: float  # ... and pixel IoU >= this
    device: str  # auto = cuda when available, else cpu
    threads: int | None  # torch.set_num_threads (of every worker); null = torch default
    # Engine (mmls/inference/engine.py): single | threads | processes | distributed (address from
    # $DASK_SCHEDULER_ADDRESS); workers and window rows per task for the Dask ones.
    scheduler: Literal["single", "threads", "processes", "distributed"]
    workers: int
    chunk_window_rows: int

    def check(self) -> None:
        self.validate()
        if self.workers < 1 or self.chunk_window_rows < 1:
            raise ParamError("workers", "workers and chunk_window_rows must be >= 1")

    def validate(self, size: int = 128) -> None:
        if not 0 <= self.overlap_px < size:
            raise ParamError("overlap_px", f"{self.overlap_px} must be in [0, {size})")
        if self.batch_size < 1:
            raise ParamError("batch_size", "must be >= 1")
        if self.simplify_m < 0 or self.min_area_m2 < 0:
            raise ParamError("simplify_m", "simplify_m and min_area_m2 must be >= 0")
        if self.match_min_overlap_px < 1 or not 0.0 <= self.match_min_iou <= 1.0:
            raise ParamError("match_min_overlap_px", "must be >= 1, and match_min_iou in [0, 1]")
        if self.threads is not None and self.threads < 1:
            raise ParamError("threads", "must be null or >= 1")

    def match_rule(self) -> str:
        return (
            f"4-connected components match when they share >= {self.match_min_overlap_px} px "
            f"and their IoU >= {self.match_min_iou}"
        )


@dataclass
class SceneResult:
    """What :func:`predict_scene` did and measured."""

    region: Window
    n_windows: int = 0
    n_windows_skipped: int = 0
    n_pixels: int = 0
    n_valid: int = 0
    n_mapped: int | None = None  # valid pixels where the inventory says anything (scored)
    n_polygons: int = 0
    seconds: float = 0.0
    confusion: Confusion | None = None
    objects: ObjectStats | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def record(self) -> dict[str, Any]:
        """Flat metrics JSON: pixel scores (None without inventory), object scores, counts."""
        rec: dict[str, Any] = {
            "region_col_off": int(self.region.col_off),
            "region_row_off": int(self.region.row_off),
            "region_width": int(self.region.width),
            "region_height": int(self.region.height),
            "n_pixels": self.n_pixels,
            "n_valid_pixels": self.n_valid,
            "n_scored_pixels": self.n_mapped,
            "n_windows": self.n_windows,
            "n_windows_skipped": self.n_windows_skipped,
            "n_polygons": self.n_polygons,
            "seconds": round(self.seconds, 3),
            "mpx_per_s": round(self.n_pixels / 1e6 / self.seconds, 4) if self.seconds else None,
        }
        for key in ("precision", "recall", "f1", "iou_fg", "iou_bg", "miou"):
            rec[key] = None
        for key in ("tp", "fp", "fn", "tn"):
            rec[key] = None
        if self.confusion is not None:
            rec.update(scores(self.confusion))
            c = self.confusion
            rec.update(tp=c.tp, fp=c.fp, fn=c.fn, tn=c.tn)
        if self.objects is not None:
            rec.update(self.objects.record())
        rec.update(self.extra)
        return rec


def predict_scene(
    predictor: Predictor,
    composite_path: PathLike,
    out_dir: PathLike,
    *,
    band_idx: Sequence[int],
    cfg: PredictConfig,
    threshold: float = 0.5,
    tta: bool = False,
    region: Window | None = None,
    truth_path: PathLike | None = None,
    landslide_class: int = 1,
    chunk_rows: int = BLOCK,
    progress: bool = True,
    rows: RowSource = local_rows,
) -> SceneResult:
    """Map ``region`` (default: the whole composite) with ``predictor``; write the three outputs.

    ``band_idx`` are 0-based composite band indices fed to the model in that order, standardised
    with the checkpoint's training statistics. Writes ``probability.tif``, ``mask.tif`` and
    ``landslides.gpkg`` into ``out_dir`` (which must exist) and, when ``truth_path`` (an
    inventory class raster on the composite grid: ``landslide_class`` = landslide, its nodata =
    unmapped, not scored) is given, scores the map against it where it is mapped. ``rows``
    computes the blended rows (this process by default; mmls/inference/engine.py spreads them over
    Dask workers). The mask is ``probability > threshold`` (0.5: the argmax of the two logits);
    ``tta`` averages the 8 flips/rotations. ``chunk_rows`` (multiple of 256 for block-aligned
    writes) is for tests only.
    """
    size = predictor.tile_size
    try:
        cfg.validate(size)
    except ParamError as exc:  # a setting that does not fit this model's tile size
        where = f"{exc.key} (map.{exc.key}, --{exc.key.replace('_', '-')})"
        raise InputError(where, f"{exc.problem}: the model's tiles are {size} px") from exc
    if not 0.0 <= threshold < 1.0:
        raise InputError("threshold (--threshold)", f"{threshold} must be in [0, 1)")
    out_dir = Path(out_dir)
    bands = [int(b) + 1 for b in band_idx]
    if len(bands) != len(predictor.bands):
        raise ValueError("band_idx must select the model's bands")
    t0 = time.perf_counter()
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), open_raster(composite_path) as src:
        grid, region, plan = _plan(src, composite_path, bands, region, size, cfg.overlap_px)
        if truth_path is not None:
            check_same_grid(grid, composite_path, truth_path)
        result = SceneResult(region=region, n_pixels=plan.width * plan.height)
        tracker = ObjectTracker(plan.width)
        with open_sink(
            out_dir, grid, region, threshold, truth_path, tracker, chunk_rows, landslide_class
        ) as sink:
            stream = rows(predictor, src, bands, plan, cfg, tta=tta)
            _stream(stream, sink, result, len(plan.ys), progress)
        result.n_valid = sink.n_valid
        result.n_mapped = sink.n_mapped if truth_path is not None else None
        result.confusion = sink.confusion
    _write_objects(tracker, out_dir, grid, region, cfg, result)
    result.seconds = time.perf_counter() - t0
    return result


def _plan(
    src: rasterio.io.DatasetReader,
    composite_path: PathLike,
    bands: Sequence[int],
    region: Window | None,
    size: int,
    overlap: int,
) -> tuple[Grid, Window, RowPlan]:
    """The open composite's grid, the region (None: everything) and its windows, after checking
    that the composite is north-up, has the model's ``bands`` (1-based) and holds one window."""
    grid = Grid.of(src)
    check_north_up(grid, composite_path)
    if max(bands) > src.count:
        raise InputError(composite_path, f"has {src.count} bands, model needs band {max(bands)}")
    region = region or Window(0, 0, grid.width, grid.height)
    plan = RowPlan.of(region, size, overlap)
    if not plan.xs or not plan.ys:
        raise InputError(
            composite_path,
            f"region {plan.width}x{plan.height} px is smaller than one {size}-px window",
        )
    return grid, region, plan


def _stream(
    rows: Iterable[Rows], sink: RowSink, result: SceneResult, n_rows: int, progress: bool
) -> None:
    """Every row of ``rows`` (``n_rows`` window rows) into ``sink``, in order; counts the
    windows run and skipped into ``result``."""
    bar = tqdm(total=n_rows, desc="predict", unit="row", disable=None if progress else True)
    for r in rows:
        result.n_windows += r.n_windows
        result.n_windows_skipped += r.n_skipped
        sink.push(r.prob, r.valid)
        bar.update()
    sink.close()
    bar.close()


def _write_objects(
    tracker: ObjectTracker,
    out_dir: Path,
    grid: Grid,
    region: Window,
    cfg: PredictConfig,
    result: SceneResult,
) -> None:
    """Finish the streamed components (min-area filter, object matches into ``result``) and
    write their polygons, in the composite's CRS, to ``out_dir``."""
    pixel_area = abs(grid.transform.a * grid.transform.e)
    components, stats = tracker.finish(
        min_pixels=cfg.min_area_m2 / pixel_area if cfg.min_area_m2 else 0.0,
        min_overlap_px=cfg.match_min_overlap_px,
        min_iou=cfg.match_min_iou,
    )
    result.objects = stats
    to_crs = window_transform(region, grid.transform)
    write_polygons(out_dir / POLYGONS_NAME, components, to_crs, grid, cfg.simplify_m)
    result.n_polygons = len(components)
