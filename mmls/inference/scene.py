"""Whole-scene landslide mapping with a trained model (sliding windows, blended, streamed).

MMLSv2 trains and scores on 128 x 128 patches; mapping a whole composite needs more care. This
module applies a model to a composite GeoTIFF of any size (or to one region window of it):

Windows
    Square windows of ``size`` px (the training tile size) at a stride of ``size - overlap_px``
    along each axis, plus a terminal window flush with the far edge (:func:`window_origins`, the
    overlapping analogue of :func:`mmls.geo.tiling.grid_origins`): nothing is padded beyond the
    raster, and every pixel of the region is covered. Windows whose pixels are all nodata are
    skipped; inside the other windows nodata pixels are set to 0 after standardisation, exactly as
    :class:`mmls.data.store.TileDataset` does in training.

Blending
    Each window's landslide probability (``softmax(logits)[:, 1]``) is accumulated with a
    separable weight ``w(i) * w(j)`` where ``w`` is a linear ramp over ``overlap_px`` pixels from
    each window edge (``w(i) = min(1, (i + 0.5) / o, (size - i - 0.5) / o)``, all ones when
    ``o = 0``), and the sum is divided by the accumulated weight. Two neighbours at the regular
    stride have weights summing to 1 across their overlap, so the map fades from one window into
    the next instead of jumping (no seam); terminal windows overlap more and are normalised the
    same way. Every weight is > 0, so a pixel covered by one window only gets that window's value.

Memory
    The scene is processed one row of windows (a strip of ``size`` rows) at a time. The
    accumulators hold one strip (2 x ``size`` x width float32); inputs are read per batch of
    windows; finished rows are written in chunks aligned to the output's 256-row block grid (so
    every compressed block is written once); components and pixel counts are streamed too. Memory
    is therefore bounded by the scene's *width*, never its area -- except for the landslide
    polygons themselves, which are the output.

Outputs (all on the composite's own grid: CRS, transform, width and height; tiled, DEFLATE)
    - probability GeoTIFF, float32, nodata :data:`PROB_NODATA` = -1 (outside [0, 1], so it never
      collides with a probability; NaN was avoided because ``nan == nan`` is false in most tools);
    - binary mask GeoTIFF, uint8, 1 = landslide (probability **strictly greater** than
      ``threshold``, so 0.5 reproduces the argmax of the two logits used by evaluation), 0 =
      background, :data:`MASK_NODATA` = 255;
    - GeoPackage of landslide polygons (see :class:`ObjectTracker`).

    A pixel is nodata in the outputs when any of the model's input bands is nodata (or not
    finite) there, or when it lies outside the mapped region.

Polygons
    One polygon per 4-connected component of the mask (4-connectivity is also what
    ``rasterio.features.shapes`` uses, so components and polygons agree). They are built
    *windowed*: each chunk of rows is polygonised with ``rasterio.features.shapes`` in pixel
    coordinates (integers, exact), pieces of a component cut by chunk borders are merged with a
    union (exact on integer coordinates, the pieces share edges), and only then transformed to CRS
    units. Windowed because a whole-mask polygonisation would hold the whole mask (and GDAL's
    label raster) in memory; the cost is one union per component that crosses a chunk border.
    Attributes: ``area_m2`` (pixel count x pixel area, i.e. the raster object's area, independent
    of simplification), ``n_pixels``, ``mean_prob``, ``max_prob`` and, when an inventory is given,
    ``matched``. Components smaller than ``min_area_m2`` are dropped; the rest are simplified with
    ``simplify_m`` (CRS units, topology preserved; 0 = exact pixel outlines, which rasterise back
    to the mask exactly).

Scoring against an inventory on the same grid (the aligned inventory's classes: the landslide
class is foreground, its nodata is UNMAPPED and not scored; only valid pixels of the region
count). Without an inventory (a new region) the map is written and not scored.
    - pixel metrics: TP/FP/FN/TN pooled over the mapped pixels -> :func:`mmls.metrics.confusion.scores`;
    - object metrics on 4-connected components: a predicted polygon (after the min-area filter)
      and an inventory landslide *match* when they share at least ``match_min_overlap_px`` pixels
      AND their pixel IoU is at least ``match_min_iou`` (defaults 1 px and 0: any overlap).
      ``obj_recall`` = share of inventory landslides matched by some polygon (detected),
      ``obj_precision`` = share of polygons matching some inventory landslide (real), over the
      polygons with at least one mapped pixel (a polygon wholly in unmapped land is unscored),
      ``obj_f1`` their harmonic mean; an empty denominator gives 1.0 (as in :mod:`mmls.metrics.confusion`).
      Inventory pixels where the composite is nodata are not counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.features import shapes
from rasterio.windows import Window
from rasterio.windows import transform as window_transform
from scipy import ndimage
from shapely import affinity
from shapely.geometry import shape
from tqdm import tqdm

from mmls.core.config import ParamError, Section
from mmls.core.errors import InputError
from mmls.core.io import PathLike, open_raster
from mmls.core.paths import REGIONS_JSON
from mmls.geo.raster import Grid, check_north_up, check_same_grid, geotiff_profile
from mmls.inference.predictor import Predictor
from mmls.metrics.confusion import Confusion, confusion_from_labels, safe_ratio, scores

PROB_NODATA = -1.0
MASK_NODATA = 255
REGIONS = ("isolated", "base", "all")
BLOCK = 256  # output block size (mmls.geo.raster.geotiff_profile default) = row chunk of the stream
GDAL_CACHE_MB = 256  # caps GDAL's block cache (default: 5 % of RAM) so RSS stays bounded
PROB_NAME = "probability.tif"
MASK_NAME = "mask.tif"
POLYGONS_NAME = "landslides.gpkg"
POLYGONS_LAYER = "landslides"


# ------------------------------------------------------------------------------------ config
class PredictConfig(Section):
    """The ``predict`` params section (whole-scene mapping; every choice is the project's)."""

    overlap_px: int  # overlap of neighbouring windows (stride = size - overlap); 0 = tile by tile
    batch_size: int  # windows per forward pass
    threshold: float  # mask = probability > threshold (0.5 = the argmax used by eval)
    region: Literal["isolated", "base", "all"]  # window from regions.json, or everything
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
        if not 0.0 <= self.threshold < 1.0:
            raise ParamError("threshold", f"{self.threshold} must be in [0, 1)")
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


def region_window(regions_doc: Mapping[str, Any] | None, region: str, grid: Grid) -> Window:
    """Pixel window of ``region`` (``all`` = the whole composite) from ``regions.json``."""
    if region == "all":
        return Window(0, 0, grid.width, grid.height)
    if regions_doc is None or region not in (regions_doc.get("regions") or {}):
        raise InputError(REGIONS_JSON, f"has no region {region!r}")
    r = regions_doc["regions"][region]
    w = Window(int(r["col_off"]), int(r["row_off"]), int(r["width"]), int(r["height"]))
    if (
        w.col_off < 0
        or w.row_off < 0
        or w.col_off + w.width > grid.width
        or w.row_off + w.height > grid.height
    ):
        raise InputError(REGIONS_JSON, f"region {region!r} lies outside the grid")
    return w


# ------------------------------------------------------------------------- windows, weights
def window_origins(extent: int, size: int, overlap: int = 0) -> list[int]:
    """Window origins along one axis: 0, stride, 2 stride, ... plus a terminal ``extent - size``.

    ``stride = size - overlap``. The terminal origin is added only when the regular ones do not
    reach the far edge. Empty when ``extent < size`` (no padding). With ``overlap = 0`` this is
    :func:`mmls.geo.tiling.grid_origins`.
    """
    if size <= 0 or not 0 <= overlap < size:
        raise ValueError(f"need size > 0 and 0 <= overlap < size, got {size}, {overlap}")
    if extent < size:
        return []
    origins = list(range(0, extent - size + 1, size - overlap))
    if origins[-1] + size < extent:
        origins.append(extent - size)
    return origins


def ramp(size: int, overlap: int) -> np.ndarray:
    """1-D blending weight: linear ramp over ``overlap`` px from both ends, 1 in between."""
    if overlap == 0:
        return np.ones(size, np.float32)
    i = np.arange(size, dtype=np.float64) + 0.5
    return np.minimum(1.0, np.minimum(i, size - i) / overlap).astype(np.float32)


def blend_weights(size: int, overlap: int) -> np.ndarray:
    """Separable 2-D weight window (size x size, all > 0)."""
    w = ramp(size, overlap)
    return np.outer(w, w)


# ------------------------------------------------------------------ streamed connected parts
@dataclass
class ObjectStats:
    """Object-level comparison of predicted components with inventory components."""

    n_true: int
    n_pred: int
    true_detected: int
    pred_matched: int

    @property
    def recall(self) -> float:
        return safe_ratio(self.true_detected, self.n_true)

    @property
    def precision(self) -> float:
        return safe_ratio(self.pred_matched, self.n_pred)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 0.0 if p + r == 0 else 2 * p * r / (p + r)

    def record(self) -> dict[str, float | int]:
        return {
            "obj_n_true": self.n_true,
            "obj_n_pred": self.n_pred,
            "obj_true_detected": self.true_detected,
            "obj_pred_matched": self.pred_matched,
            "obj_recall": self.recall,
            "obj_precision": self.precision,
            "obj_f1": self.f1,
        }


@dataclass
class Component:
    """One predicted component: pixel count, probability sum/max, outline in pixel coords."""

    n_pixels: int
    prob_sum: float
    prob_max: float
    geometry: Any  # shapely Polygon in region pixel coordinates (x = col, y = row)
    matched: bool | None = None


class _Labeler:
    """4-connected component labelling of a binary map fed as consecutive row chunks.

    Each chunk is labelled on its own (``scipy.ndimage.label``, provisional ids offset to be
    unique); components touching across a chunk border are joined in a union-find.
    """

    def __init__(self) -> None:
        self.parent: list[int] = [0]
        self.sizes: list[np.ndarray] = [np.zeros(1, np.int64)]
        self.n = 0
        self.last_row: np.ndarray | None = None

    def _find(self, a: int) -> int:
        parent = self.parent
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def feed(self, fg: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
        """Label a chunk; returns (global ids, local ids, offset) with 0 = background."""
        local, n = ndimage.label(fg)  # default structure: 4-connectivity
        offset = self.n
        glob = np.where(local > 0, local.astype(np.int64) + offset, 0)
        self.parent.extend(range(offset + 1, offset + n + 1))
        self.sizes.append(np.bincount(local.ravel(), minlength=n + 1)[1:].astype(np.int64))
        if self.last_row is not None and glob.shape[0]:
            touch = (self.last_row > 0) & (glob[0] > 0)
            if touch.any():
                pairs = np.unique(np.stack([self.last_row[touch], glob[0][touch]], 1), axis=0)
                for a, b in pairs.tolist():
                    ra, rb = self._find(a), self._find(b)
                    if ra != rb:
                        self.parent[max(ra, rb)] = min(ra, rb)
        if glob.shape[0]:
            self.last_row = glob[-1].copy()
        self.n += n
        return glob, local, offset

    def resolve(self) -> tuple[np.ndarray, np.ndarray]:
        """(final id 1..K of every provisional id 0..n, pixel count per final id 0..K)."""
        parent = np.asarray(self.parent, dtype=np.int64)
        while True:  # pointer jumping to the roots
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                break
            parent = nxt
        roots, final = np.unique(parent, return_inverse=True)  # root 0 -> final 0
        sizes = np.bincount(final, weights=np.concatenate(self.sizes), minlength=len(roots))
        return final.astype(np.int64), sizes.astype(np.int64)


class ObjectTracker:
    """Streams a predicted mask (and optionally an inventory mask) in row chunks.

    Collects per predicted component its pixel count, probability sum/max and outline (when
    ``polygons``), and the pixel overlap of every (predicted, inventory) component pair, so that
    :meth:`finish` can apply the min-area filter and the match rule of the module docstring.
    """

    def __init__(self, width: int, polygons: bool = True) -> None:
        self.width = width
        self.polygons = polygons
        self.pred = _Labeler()
        self.true = _Labeler()
        self.has_truth = False
        self.rows = 0
        self.prob_sum: list[np.ndarray] = [np.zeros(1)]
        self.prob_max: list[np.ndarray] = [np.zeros(1)]
        self.mapped_px: list[np.ndarray] = [np.zeros(1)]
        self.pieces: list[tuple[int, Any]] = []
        self.pairs: list[tuple[np.ndarray, np.ndarray]] = []

    def feed(
        self,
        pred_fg: np.ndarray,
        prob: np.ndarray | None = None,
        true_fg: np.ndarray | None = None,
        mapped: np.ndarray | None = None,
    ) -> None:
        """Add the next ``h x width`` rows (booleans; ``prob`` float in [0, 1] or None;
        ``mapped``: where the inventory says anything, None = everywhere)."""
        if pred_fg.ndim != 2 or pred_fg.shape[1] != self.width:
            raise ValueError(f"expected h x {self.width} rows, got {pred_fg.shape}")
        glob, local, offset = self.pred.feed(pred_fg)
        n = self.pred.n - offset
        flat = local.ravel()
        if prob is None:
            prob = pred_fg.astype(np.float64)
        self.prob_sum.append(np.bincount(flat, weights=prob.ravel(), minlength=n + 1)[1:])
        pmax = np.zeros(n + 1)
        np.maximum.at(pmax, flat, prob.ravel())
        self.prob_max.append(pmax[1:])
        in_map = np.ones_like(pred_fg) if mapped is None else mapped
        self.mapped_px.append(np.bincount(flat, weights=in_map.ravel(), minlength=n + 1)[1:])
        if self.polygons and n:
            to_pixels = Affine.translation(0, self.rows)
            for geom, value in shapes(
                local.astype(np.int32), mask=local > 0, connectivity=4, transform=to_pixels
            ):
                self.pieces.append((int(value) + offset, shape(geom)))
        if true_fg is not None:
            self.has_truth = True
            tglob, _, _ = self.true.feed(true_fg)
            both = (glob > 0) & (tglob > 0)
            if both.any():
                code = (glob[both] << 32) | tglob[both]
                uniq, counts = np.unique(code, return_counts=True)
                self.pairs.append((uniq, counts))
        self.rows += pred_fg.shape[0]

    def finish(
        self, min_pixels: float = 0.0, min_overlap_px: int = 1, min_iou: float = 0.0
    ) -> tuple[list[Component], ObjectStats | None]:
        """Kept components (pixel count >= ``min_pixels``) and the object stats (None without
        an inventory)."""
        pmap, psizes = self.pred.resolve()
        k = len(psizes)
        prob_sum = np.bincount(pmap, weights=np.concatenate(self.prob_sum), minlength=k)
        prob_max = np.zeros(k)
        np.maximum.at(prob_max, pmap, np.concatenate(self.prob_max))
        keep = psizes >= min_pixels
        keep[0] = False
        mapped = np.bincount(pmap, weights=np.concatenate(self.mapped_px), minlength=k) > 0
        pred_matched = np.zeros(k, bool)
        stats = None
        if self.has_truth:
            tmap, tsizes = self.true.resolve()
            true_detected = np.zeros(len(tsizes), bool)
            if self.pairs:
                code = np.concatenate([p[0] for p in self.pairs])
                counts = np.concatenate([p[1] for p in self.pairs])
                a = pmap[code >> 32]
                b = tmap[code & 0xFFFFFFFF]
                final = (a << 32) | b
                uniq, inv = np.unique(final, return_inverse=True)
                overlap = np.bincount(inv, weights=counts).astype(np.int64)
                a, b = uniq >> 32, uniq & 0xFFFFFFFF
                iou = overlap / (psizes[a] + tsizes[b] - overlap)
                ok = (overlap >= min_overlap_px) & (iou >= min_iou) & keep[a]
                pred_matched[a[ok]] = True
                true_detected[b[ok]] = True
            stats = ObjectStats(
                n_true=len(tsizes) - 1,
                n_pred=int((keep & mapped).sum()),  # objects wholly outside the map: unscored
                true_detected=int(true_detected[1:].sum()),
                pred_matched=int(pred_matched.sum()),
            )
        geoms: dict[int, list[Any]] = {}
        for prov, geom in self.pieces:
            fid = int(pmap[prov])
            if keep[fid]:
                geoms.setdefault(fid, []).append(geom)
        components = []
        for fid in np.flatnonzero(keep).tolist():
            pieces = geoms.get(fid, [])
            geometry = None
            if pieces:
                geometry = pieces[0] if len(pieces) == 1 else shapely.union_all(pieces)
            components.append(
                Component(
                    n_pixels=int(psizes[fid]),
                    prob_sum=float(prob_sum[fid]),
                    prob_max=float(prob_max[fid]),
                    geometry=geometry,
                    matched=bool(pred_matched[fid]) if self.has_truth else None,
                )
            )
        return components, stats


def object_metrics(
    pred: np.ndarray, truth: np.ndarray, min_overlap_px: int = 1, min_iou: float = 0.0
) -> ObjectStats:
    """Object-level stats of two whole binary masks (see the module docstring for the rule)."""
    tracker = ObjectTracker(pred.shape[1], polygons=False)
    tracker.feed(pred.astype(bool), None, truth.astype(bool))
    _, stats = tracker.finish(0, min_overlap_px, min_iou)
    assert stats is not None
    return stats


# ------------------------------------------------------------------------------ the predictor
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


class _RowSink:
    """Receives finished rows of the region, writes them in block-aligned chunks, scores them."""

    def __init__(
        self,
        prob_ds: rasterio.io.DatasetWriter,
        mask_ds: rasterio.io.DatasetWriter,
        region: Window,
        threshold: float,
        truth_ds: rasterio.io.DatasetReader | None,
        tracker: ObjectTracker,
        chunk_rows: int,
        landslide_class: int = 1,
    ) -> None:
        self.prob_ds, self.mask_ds, self.truth_ds = prob_ds, mask_ds, truth_ds
        self.col_off, self.row_off = int(region.col_off), int(region.row_off)
        self.width = int(region.width)
        self.threshold = threshold
        self.tracker = tracker
        self.chunk_rows = chunk_rows
        self.buf_prob: list[np.ndarray] = []
        self.buf_valid: list[np.ndarray] = []
        self.buffered = 0
        self.written = 0  # region rows written so far
        self.confusion = Confusion() if truth_ds is not None else None
        self.landslide_class = landslide_class
        self.n_mapped = 0
        self.n_valid = 0

    def push(self, prob: np.ndarray, valid: np.ndarray) -> None:
        self.buf_prob.append(prob)
        self.buf_valid.append(valid)
        self.buffered += prob.shape[0]
        # Flush up to the last chunk boundary (absolute output row multiple of chunk_rows).
        end_abs = self.row_off + self.written + self.buffered
        boundary = (end_abs // self.chunk_rows) * self.chunk_rows - self.row_off - self.written
        if boundary > 0:
            self._flush(boundary)

    def close(self) -> None:
        if self.buffered:
            self._flush(self.buffered)

    def _flush(self, n: int) -> None:
        prob = np.concatenate(self.buf_prob)
        valid = np.concatenate(self.buf_valid)
        rest_p, rest_v = prob[n:], valid[n:]
        prob, valid = prob[:n], valid[:n]
        self.buf_prob = [rest_p] if len(rest_p) else []
        self.buf_valid = [rest_v] if len(rest_v) else []
        self.buffered -= n
        w = Window(self.col_off, self.row_off + self.written, self.width, n)
        fg = valid & (prob > self.threshold)
        mask = np.where(valid, fg, MASK_NODATA).astype(np.uint8)
        self.prob_ds.write(np.where(valid, prob, PROB_NODATA).astype(np.float32), 1, window=w)
        self.mask_ds.write(mask, 1, window=w)
        self.n_valid += int(valid.sum())
        true_fg = mapped = None
        if self.truth_ds is not None and self.confusion is not None:
            classes = self.truth_ds.read(1, window=w)
            mapped = (
                valid if self.truth_ds.nodata is None else valid & (classes != self.truth_ds.nodata)
            )
            true_fg = (classes == self.landslide_class) & mapped
            self.confusion += confusion_from_labels(fg[mapped], true_fg[mapped])
            self.n_mapped += int(mapped.sum())
        self.tracker.feed(fg, np.where(fg, prob, 0.0), true_fg, mapped)
        self.written += n


def _output_profile(grid: Grid, dtype: str, nodata: float) -> dict[str, Any]:
    profile = geotiff_profile(grid, 1, dtype, nodata=nodata, blocksize=BLOCK)
    profile.update(BIGTIFF="IF_SAFER", sparse_ok=True)
    return profile


@dataclass(frozen=True)
class RowPlan:
    """The windows of a region: origins along x and y, window size, blending weights."""

    col_off: int
    row_off: int
    width: int
    height: int
    xs: tuple[int, ...]
    ys: tuple[int, ...]
    size: int
    overlap: int

    @classmethod
    def of(cls, region: Window, size: int, overlap: int) -> RowPlan:
        w, h = int(region.width), int(region.height)
        xs, ys = window_origins(w, size, overlap), window_origins(h, size, overlap)
        return cls(
            int(region.col_off), int(region.row_off), w, h, tuple(xs), tuple(ys), size, overlap
        )

    def halo(self, a: int) -> int:
        """The first window row whose windows reach the first pixel row of window row ``a``:
        recomputing from there reproduces exactly what row ``a`` inherits from above."""
        h = a
        while h > 0 and self.ys[h - 1] + self.size > self.ys[a]:
            h -= 1
        return h


@dataclass
class Rows:
    """Blended probability (nodata outside valid pixels) and validity of consecutive pixel
    rows of the region, and the windows run / skipped to get them."""

    prob: np.ndarray
    valid: np.ndarray
    n_windows: int = 0
    n_skipped: int = 0


def blended_rows(
    predictor: Predictor,
    src: rasterio.io.DatasetReader,
    bands: Sequence[int],
    plan: RowPlan,
    batch_size: int,
    a: int,
    b: int,
) -> Iterator[Rows]:
    """Window rows ``a .. b-1`` of ``plan``, one :class:`Rows` (its finished pixel rows) each.

    Window rows from :meth:`RowPlan.halo` on are computed first, not yielded, so that every
    yielded pixel is the same sum, in the same order, as in one pass over the whole region:
    any split of the rows into chunks gives a bitwise identical map (with the same thread count).
    """
    size, width = plan.size, plan.width
    standardize = predictor.standardizer(src.nodata)
    weights = blend_weights(size, plan.overlap)
    carry_p = carry_w = None
    for i in range(plan.halo(a), b):
        y = plan.ys[i]
        acc_p = np.zeros((size, width), np.float32)
        acc_w = np.zeros((size, width), np.float32)
        valid = np.zeros((size, width), bool)
        if carry_p is not None and carry_w is not None:
            acc_p[: len(carry_p)] = carry_p
            acc_w[: len(carry_w)] = carry_w
        n_windows = n_skipped = 0
        for j0 in range(0, len(plan.xs), batch_size):
            batch_x = plan.xs[j0 : j0 + batch_size]
            x0, x1 = batch_x[0], batch_x[-1] + size
            raw = src.read(
                list(bands),
                window=Window(plan.col_off + x0, plan.row_off + y, x1 - x0, size),
                out_dtype="float32",
            )
            data, bad = standardize(raw)
            ok = ~bad.any(axis=0)
            valid[:, x0:x1] = ok
            todo = [x for x in batch_x if ok[:, x - x0 : x - x0 + size].any()]
            n_windows += len(batch_x)
            n_skipped += len(batch_x) - len(todo)
            if todo:
                stack = np.stack([data[:, :, x - x0 : x - x0 + size] for x in todo])
                prob = predictor.probabilities(stack)
                for k, x in enumerate(todo):
                    acc_p[:, x : x + size] += prob[k] * weights
                    acc_w[:, x : x + size] += weights
        nxt = plan.ys[i + 1] if i + 1 < len(plan.ys) else plan.height
        done = nxt - y
        if i >= a:
            ok_rows = valid[:done]
            if (acc_w[:done][ok_rows] <= 0).any():  # cannot happen: see the module docstring
                raise AssertionError("a valid pixel is covered by no window")
            with np.errstate(invalid="ignore", divide="ignore"):
                blended = np.where(ok_rows, acc_p[:done] / acc_w[:done], np.float32(PROB_NODATA))
            yield Rows(blended.astype(np.float32), ok_rows, n_windows, n_skipped)
        carry_p, carry_w = acc_p[done:].copy(), acc_w[done:].copy()


#: A source of the region's rows in order: (predictor, open composite, bands, plan, cfg) -> Rows.
RowSource = Callable[..., Iterator[Rows]]


def local_rows(predictor, src, bands, plan: RowPlan, cfg: PredictConfig) -> Iterator[Rows]:
    """Every window row in this process (the default engine)."""
    return blended_rows(predictor, src, bands, plan, cfg.batch_size, 0, len(plan.ys))


def predict_scene(
    predictor: Predictor,
    composite_path: PathLike,
    out_dir: PathLike,
    *,
    band_idx: Sequence[int],
    cfg: PredictConfig,
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
    Dask workers). ``chunk_rows`` (multiple of 256 for block-aligned writes) is for tests only.
    """
    size = predictor.tile_size
    cfg.validate(size)
    out_dir = Path(out_dir)
    bands = [int(b) + 1 for b in band_idx]
    if len(bands) != len(predictor.bands):
        raise ValueError("band_idx must select the model's bands")
    t0 = time.perf_counter()
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), open_raster(composite_path) as src:
        grid = Grid.of(src)
        check_north_up(grid, composite_path)
        if max(bands) > src.count:
            raise InputError(
                composite_path, f"has {src.count} bands, model needs band {max(bands)}"
            )
        region = region or Window(0, 0, grid.width, grid.height)
        plan = RowPlan.of(region, size, cfg.overlap_px)
        if not plan.xs or not plan.ys:
            raise InputError(
                composite_path,
                f"region {plan.width}x{plan.height} px is smaller than one {size}-px window",
            )
        if truth_path is not None:
            check_same_grid(grid, composite_path, truth_path)
        result = SceneResult(region=region, n_pixels=plan.width * plan.height)
        tracker = ObjectTracker(plan.width)
        with (
            open_raster(truth_path) if truth_path is not None else nullcontext() as truth_ctx,
            rasterio.open(
                out_dir / PROB_NAME, "w", **_output_profile(grid, "float32", PROB_NODATA)
            ) as prob_ds,
            rasterio.open(
                out_dir / MASK_NAME, "w", **_output_profile(grid, "uint8", MASK_NODATA)
            ) as mask_ds,
        ):
            prob_ds.set_band_description(1, "landslide_probability")
            mask_ds.set_band_description(1, "landslide_mask")
            sink = _RowSink(
                prob_ds,
                mask_ds,
                region,
                cfg.threshold,
                truth_ctx,
                tracker,
                chunk_rows,
                landslide_class,
            )
            bar = tqdm(
                total=len(plan.ys),
                desc="predict",
                unit="row",
                disable=None if progress else True,
            )
            for r in rows(predictor, src, bands, plan, cfg):
                result.n_windows += r.n_windows
                result.n_windows_skipped += r.n_skipped
                sink.push(r.prob, r.valid)
                bar.update()
            sink.close()
            bar.close()
        result.n_valid = sink.n_valid
        result.n_mapped = sink.n_mapped if truth_ctx is not None else None
        result.confusion = sink.confusion
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
    result.seconds = time.perf_counter() - t0
    return result


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
