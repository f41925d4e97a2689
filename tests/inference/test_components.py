"""Streamed 4-connected components: the same components and outlines for any split of the
rows, and object-level metrics (the match rule, the min-area filter) on known answers."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.features import rasterize
from scipy import ndimage

from mmls.inference.components import ObjectTracker, object_metrics

TRICKY = np.array(
    [
        [1, 1, 1, 1, 0, 0, 1, 0, 1],
        [1, 0, 0, 1, 0, 1, 0, 0, 1],  # a ring with a hole; diagonal-only neighbours
        [1, 1, 1, 1, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 1, 1, 0, 1],
        [1, 0, 1, 0, 0, 1, 0, 0, 1],  # a U whose arms meet only in a later chunk
        [1, 0, 1, 0, 0, 0, 0, 1, 1],
        [1, 1, 1, 0, 1, 0, 0, 0, 0],
    ],
    bool,
)


@pytest.mark.parametrize("splits", [[7], [1] * 7, [2, 3, 2], [4, 3]])
def test_streamed_components_match_the_whole_mask(splits) -> None:
    tracker = ObjectTracker(TRICKY.shape[1])
    row = 0
    for h in splits:
        tracker.feed(TRICKY[row : row + h], None, TRICKY[row : row + h])
        row += h
    comps, stats = tracker.finish()
    labels, n = ndimage.label(TRICKY)
    assert len(comps) == n == 7
    assert sorted(c.n_pixels for c in comps) == sorted(np.bincount(labels.ravel())[1:].tolist())
    assert stats is not None and stats.n_true == stats.n_pred == stats.true_detected == n
    burnt = rasterize([(c.geometry, 1) for c in comps], out_shape=TRICKY.shape, fill=0)
    np.testing.assert_array_equal(burnt.astype(bool), TRICKY)


# ---------------------------------------------------------------------- object-level metrics
def hand_made_masks() -> tuple[np.ndarray, np.ndarray]:
    truth = np.zeros((20, 20), bool)
    pred = np.zeros((20, 20), bool)
    truth[0:4, 0:4] = True  # A (16 px)
    truth[0:2, 10:12] = True  # B (4 px)
    truth[8:10, 0:10] = True  # C (20 px): missed
    truth[12:14, 0:2] = True  # D (4 px)
    truth[12:14, 4:6] = True  # E (4 px)
    pred[3:6, 3:6] = True  # P1 (9 px): overlaps A by exactly one pixel, (3, 3)
    pred[0:2, 10:12] = True  # P2 (4 px) = B
    pred[6, 12:15] = True  # P3 (3 px): false positive
    pred[14:16, 0:6] = True  # P4 (14 px): overlaps D at (13, 1) and E at (13, 4)
    pred[13, 1] = pred[13, 4] = True
    pred[17, 8] = pred[18, 9] = True  # P5, P6: diagonal neighbours = two 4-components
    return pred, truth


def test_object_metrics_known_answer() -> None:
    pred, truth = hand_made_masks()
    s = object_metrics(pred, truth)
    assert (s.n_true, s.n_pred, s.true_detected, s.pred_matched) == (5, 6, 4, 3)
    assert s.recall == pytest.approx(4 / 5)
    assert s.precision == pytest.approx(3 / 6)
    assert s.f1 == pytest.approx(2 * 0.8 * 0.5 / 1.3)
    # P1/A, P4/D and P4/E share 1 px each: a 2-px overlap rule keeps only P2/B (4 px).
    s2 = object_metrics(pred, truth, min_overlap_px=2)
    assert (s2.true_detected, s2.pred_matched) == (1, 1)
    pred[13, 0] = True  # now P4 shares 2 px with D
    s2 = object_metrics(pred, truth, min_overlap_px=2)
    assert (s2.true_detected, s2.pred_matched) == (2, 2)
    pred[13, 0] = False
    # IoU rule: P2/B IoU = 1, P1/A = 1/24, P4/D = 1/17: only B/P2 survives 0.5.
    s3 = object_metrics(pred, truth, min_iou=0.5)
    assert (s3.true_detected, s3.pred_matched) == (1, 1)
    # Min-area filter (pixels): P3 (3 px), P5, P6 (1 px) are dropped.
    tracker = ObjectTracker(20, polygons=False)
    tracker.feed(pred, None, truth)
    comps, s4 = tracker.finish(min_pixels=4)
    assert s4 is not None
    assert (s4.n_pred, s4.pred_matched, s4.true_detected) == (3, 3, 4)
    assert sorted(c.n_pixels for c in comps) == [4, 9, 14]


def test_object_metrics_empty_cases() -> None:
    empty = np.zeros((5, 5), bool)
    s = object_metrics(empty, empty)
    assert (s.recall, s.precision, s.f1) == (1.0, 1.0, 1.0)
    full = np.ones((5, 5), bool)
    s = object_metrics(full, empty)
    assert (s.n_pred, s.precision, s.recall, s.f1) == (1, 0.0, 1.0, 0.0)
