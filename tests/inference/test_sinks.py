"""The row sink: rows of any sizes are written in chunks aligned to the output's block grid,
with nodata where they are not valid, scored against the inventory where it is mapped."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.windows import Window

from mmls.inference.components import ObjectTracker
from mmls.inference.sinks import MASK_NODATA, PROB_NODATA, RowSink
from mmls.metrics.confusion import confusion_from_labels


class Band:
    """A one-band raster in memory that records the windows written to it."""

    def __init__(self, data: np.ndarray, nodata: float | None = None) -> None:
        self.data, self.nodata = data, nodata
        self.windows: list[Window] = []

    def write(self, arr: np.ndarray, band: int, window: Window) -> None:
        assert band == 1
        self.windows.append(window)
        self.data[window.toslices()] = arr

    def read(self, band: int, window: Window) -> np.ndarray:
        assert band == 1
        return self.data[window.toslices()]


@pytest.mark.parametrize("chunk_rows", [16, 256])
def test_rows_are_written_block_aligned_with_nodata_and_scored(chunk_rows: int) -> None:
    height, width = 300, 90
    region = Window(10, 37, 70, 250)
    rng = np.random.default_rng(0)
    prob = rng.random((region.height, region.width)).astype(np.float32)
    valid = rng.random(prob.shape) > 0.1
    classes = (rng.random((height, width)) > 0.7).astype(np.uint8)
    classes[:, :20] = 255  # unmapped
    prob_ds = Band(np.full((height, width), 7.0, np.float32))
    mask_ds = Band(np.full((height, width), 7, np.uint8))
    truth_ds = Band(classes, nodata=255)
    tracker = ObjectTracker(region.width, polygons=False)
    sink = RowSink(prob_ds, mask_ds, region, 0.5, truth_ds, tracker, chunk_rows)  # type: ignore[arg-type]
    row = 0
    for h in (5, 40, 1, 96, 3, 105):  # odd sizes, not aligned to anything
        sink.push(prob[row : row + h], valid[row : row + h])
        row += h
    sink.close()
    assert row == region.height
    for ds in (prob_ds, mask_ds):
        starts = [int(w.row_off) for w in ds.windows]
        ends = [int(w.row_off + w.height) for w in ds.windows]
        assert starts[0] == region.row_off and ends[-1] == region.row_off + region.height
        assert starts[1:] == ends[:-1]  # contiguous, each row written once
        assert all(s % chunk_rows == 0 for s in starts[1:])  # chunks on the block grid
        assert all(w.col_off == region.col_off and w.width == region.width for w in ds.windows)
    sl = region.toslices()
    np.testing.assert_array_equal(prob_ds.data[sl], np.where(valid, prob, PROB_NODATA))
    np.testing.assert_array_equal(mask_ds.data[sl], np.where(valid, prob > 0.5, MASK_NODATA))
    outside = np.ones((height, width), bool)
    outside[sl] = False
    assert (prob_ds.data[outside] == 7.0).all() and (mask_ds.data[outside] == 7).all()
    mapped = valid & (classes[sl] != 255)
    expected = confusion_from_labels((prob > 0.5)[mapped], (classes[sl] == 1)[mapped])
    assert sink.confusion == expected
    assert sink.n_valid == int(valid.sum()) and sink.n_mapped == int(mapped.sum())
    assert sink.written == region.height and sink.buffered == 0


def test_without_inventory_nothing_is_scored() -> None:
    region = Window(0, 0, 8, 20)
    prob_ds, mask_ds = Band(np.zeros((20, 8), np.float32)), Band(np.zeros((20, 8), np.uint8))
    sink = RowSink(prob_ds, mask_ds, region, 0.5, None, ObjectTracker(8), 16)  # type: ignore[arg-type]
    sink.push(np.full((20, 8), 0.9, np.float32), np.ones((20, 8), bool))
    sink.close()
    assert sink.confusion is None and sink.n_mapped == 0 and sink.n_valid == 160
    assert (mask_ds.data == 1).all()
    components, stats = sink.tracker.finish()
    assert stats is None and [c.n_pixels for c in components] == [160]
