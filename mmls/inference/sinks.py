"""Where the blended rows of a whole-scene map go: two GeoTIFFs, pixel scores, the objects.

Outputs (on the composite's own grid: CRS, transform, width and height; tiled, DEFLATE)
    - probability GeoTIFF, float32, nodata :data:`PROB_NODATA` = -1 (outside [0, 1], so it never
      collides with a probability; NaN was avoided because ``nan == nan`` is false in most tools);
    - binary mask GeoTIFF, uint8, 1 = landslide (probability **strictly greater** than
      ``threshold``, so 0.5 reproduces the argmax of the two logits used by evaluation), 0 =
      background, :data:`MASK_NODATA` = 255.

    A pixel is nodata in the outputs when any of the model's input bands is nodata (or not
    finite) there, or when it lies outside the mapped region (never written: sparse blocks).

Finished rows are written in chunks aligned to the output's 256-row block grid (:data:`BLOCK`),
so every compressed block is written once, and each chunk's mask is fed to the
:class:`mmls.inference.components.ObjectTracker` (objects, polygons, object metrics).

Pixel metrics (against an inventory on the same grid): TP/FP/FN/TN pooled over the mapped pixels
(valid pixels of the region where the inventory is not nodata) ->
:func:`mmls.metrics.confusion.scores`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.windows import Window

from mmls.core.io import PathLike, open_raster, read_raster
from mmls.geo.raster import Grid, geotiff_profile
from mmls.inference.components import ObjectTracker
from mmls.metrics.confusion import Confusion, confusion_from_labels

PROB_NODATA = -1.0
MASK_NODATA = 255
BLOCK = 256  # output block size (mmls.geo.raster.geotiff_profile default) = row chunk of the stream
PROB_NAME = "probability.tif"
MASK_NAME = "mask.tif"


class RowSink:
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
        """Buffer the next rows (probability, validity); write every whole chunk buffered."""
        self.buf_prob.append(prob)
        self.buf_valid.append(valid)
        self.buffered += prob.shape[0]
        # Flush up to the last chunk boundary (absolute output row multiple of chunk_rows).
        end_abs = self.row_off + self.written + self.buffered
        boundary = (end_abs // self.chunk_rows) * self.chunk_rows - self.row_off - self.written
        if boundary > 0:
            self._flush(boundary)

    def close(self) -> None:
        """Write what is still buffered (the region's last, partial chunk)."""
        if self.buffered:
            self._flush(self.buffered)

    def _flush(self, n: int) -> None:
        """Write the first ``n`` buffered rows, score them and feed them to the tracker."""
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
            classes = read_raster(self.truth_ds, 1, window=w)
            mapped = (
                valid if self.truth_ds.nodata is None else valid & (classes != self.truth_ds.nodata)
            )
            true_fg = (classes == self.landslide_class) & mapped
            self.confusion += confusion_from_labels(fg[mapped], true_fg[mapped])
            self.n_mapped += int(mapped.sum())
        self.tracker.feed(fg, np.where(fg, prob, 0.0), true_fg, mapped)
        self.written += n


def _output_profile(grid: Grid, dtype: str, nodata: float) -> dict[str, Any]:
    """One output band on ``grid``: tiled in :data:`BLOCK` blocks, BigTIFF when it may need it,
    sparse (a block never written, outside the region, reads as ``nodata``)."""
    profile = geotiff_profile(grid, 1, dtype, nodata=nodata, blocksize=BLOCK)
    profile.update(BIGTIFF="IF_SAFER", sparse_ok=True)
    return profile


@contextmanager
def open_sink(
    out_dir: Path,
    grid: Grid,
    region: Window,
    threshold: float,
    truth_path: PathLike | None,
    tracker: ObjectTracker,
    chunk_rows: int,
    landslide_class: int = 1,
) -> Iterator[RowSink]:
    """A :class:`RowSink` over :data:`PROB_NAME` and :data:`MASK_NAME` of ``out_dir`` (opened
    for writing) and the inventory ``truth_path`` (None: not scored); the files close on leaving,
    after the caller's :meth:`RowSink.close`."""
    with (
        open_raster(truth_path) if truth_path is not None else nullcontext() as truth_ds,
        rasterio.open(
            out_dir / PROB_NAME, "w", **_output_profile(grid, "float32", PROB_NODATA)
        ) as prob_ds,
        rasterio.open(
            out_dir / MASK_NAME, "w", **_output_profile(grid, "uint8", MASK_NODATA)
        ) as mask_ds,
    ):
        prob_ds.set_band_description(1, "landslide_probability")
        mask_ds.set_band_description(1, "landslide_mask")
        yield RowSink(
            prob_ds, mask_ds, region, threshold, truth_ds, tracker, chunk_rows, landslide_class
        )
