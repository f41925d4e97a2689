"""Landslide objects of a streamed mask: 4-connected components, their outlines, their matches.

A predicted mask (and an inventory mask) arrives as consecutive chunks of rows; components and
pixel counts are streamed too (:class:`ObjectTracker`), so memory is bounded by the scene's
width, except for the component outlines themselves, which are the output.

Components
    One object per 4-connected component of the mask (4-connectivity is also what
    ``rasterio.features.shapes`` uses, so components and polygons agree). Each chunk is labelled
    on its own and components touching across a chunk border are joined (:class:`_Labeler`).

Outlines
    Built *windowed*: each chunk of rows is polygonised with ``rasterio.features.shapes`` in pixel
    coordinates (integers, exact), pieces of a component cut by chunk borders are merged with a
    union (exact on integer coordinates, the pieces share edges), and only then (by
    :func:`mmls.inference.polygons.write_polygons`) transformed to CRS units. Windowed because a
    whole-mask polygonisation would hold the whole mask (and GDAL's label raster) in memory; the
    cost is one union per component that crosses a chunk border. Components smaller than
    ``min_area_m2`` (in pixels: ``min_pixels`` of :meth:`ObjectTracker.finish`) are dropped.

Object metrics (against an inventory on the same grid)
    A predicted polygon (after the min-area filter) and an inventory landslide *match* when they
    share at least ``match_min_overlap_px`` pixels AND their pixel IoU is at least
    ``match_min_iou`` (defaults 1 px and 0: any overlap). ``obj_recall`` = share of inventory
    landslides matched by some polygon (detected), ``obj_precision`` = share of polygons matching
    some inventory landslide (real), over the polygons with at least one mapped pixel (a polygon
    wholly in unmapped land is unscored), ``obj_f1`` their harmonic mean; an empty denominator
    gives 1.0 (as in :mod:`mmls.metrics.confusion`). Inventory pixels where the composite is
    nodata are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from affine import Affine
from rasterio.features import shapes
from scipy import ndimage
from shapely.geometry import shape

from mmls.metrics.confusion import safe_ratio


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
        pred_matched = np.zeros(k, bool)
        stats = None
        if self.has_truth:
            pred_matched, stats = self._match(pmap, psizes, keep, min_overlap_px, min_iou)
        components = [
            Component(
                n_pixels=int(psizes[fid]),
                prob_sum=float(prob_sum[fid]),
                prob_max=float(prob_max[fid]),
                geometry=geometry,
                matched=bool(pred_matched[fid]) if self.has_truth else None,
            )
            for fid, geometry in self._outlines(pmap, keep)
        ]
        return components, stats

    def _match(
        self,
        pmap: np.ndarray,
        psizes: np.ndarray,
        keep: np.ndarray,
        min_overlap_px: int,
        min_iou: float,
    ) -> tuple[np.ndarray, ObjectStats]:
        """Which kept predicted components match an inventory component (the rule of the module
        docstring), and the object stats; ``pmap``/``psizes`` as :meth:`_Labeler.resolve`."""
        k = len(psizes)
        mapped = np.bincount(pmap, weights=np.concatenate(self.mapped_px), minlength=k) > 0
        pred_matched = np.zeros(k, bool)
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
        return pred_matched, stats

    def _outlines(self, pmap: np.ndarray, keep: np.ndarray) -> list[tuple[int, Any]]:
        """(final id, outline) of every kept component in id order: its chunk pieces merged by
        a union, None when the outlines were not collected (``polygons=False``)."""
        geoms: dict[int, list[Any]] = {}
        for prov, geom in self.pieces:
            fid = int(pmap[prov])
            if keep[fid]:
                geoms.setdefault(fid, []).append(geom)
        outlines = []
        for fid in np.flatnonzero(keep).tolist():
            pieces = geoms.get(fid, [])
            geometry = None
            if pieces:
                geometry = pieces[0] if len(pieces) == 1 else shapely.union_all(pieces)
            outlines.append((fid, geometry))
        return outlines


def object_metrics(
    pred: np.ndarray, truth: np.ndarray, min_overlap_px: int = 1, min_iou: float = 0.0
) -> ObjectStats:
    """Object-level stats of two whole binary masks (see the module docstring for the rule)."""
    tracker = ObjectTracker(pred.shape[1], polygons=False)
    tracker.feed(pred.astype(bool), None, truth.astype(bool))
    _, stats = tracker.finish(0, min_overlap_px, min_iou)
    assert stats is not None
    return stats
