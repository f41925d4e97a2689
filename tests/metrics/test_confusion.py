"""Pooled metrics (MMLSv2 Sec. 4.1) against hand-computed confusion counts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmls.metrics.confusion import (
    METRIC_KEYS,
    Confusion,
    confusion_from_labels,
    metrics_record,
    patch_counts,
    safe_ratio,
    scores,
)


def test_confusion_counts_by_hand() -> None:
    target = np.array([[1, 1, 0], [0, 0, 1]])
    pred = np.array([[1, 0, 1], [0, 0, 1]])
    # TP: (0,0), (1,2) ; FN: (0,1) ; FP: (0,2) ; TN: (1,0), (1,1)
    assert confusion_from_labels(pred, target) == Confusion(tp=2, fp=1, fn=1, tn=2)


def test_patch_counts_known_answer_and_pooled_identity() -> None:
    pred = np.array([[[1, 1], [0, 0]], [[0, 0], [0, 1]]], np.uint8)
    target = np.array([[[1, 0], [1, 0]], [[0, 0], [0, 0]]], np.uint8)
    counts = patch_counts(pred, target)
    assert counts.tolist() == [[1, 1, 1, 1], [0, 1, 0, 3]]  # per patch: tp, fp, fn, tn
    rng = np.random.default_rng(0)
    p, t = rng.integers(0, 2, (5, 8, 8)), rng.integers(0, 2, (5, 8, 8))
    assert Confusion.of(patch_counts(p, t)) == confusion_from_labels(p, t)  # pooled = sum
    assert patch_counts(p[0], t[0]).tolist() == patch_counts(p, t)[:1].tolist()
    with pytest.raises(ValueError):
        patch_counts(p, t[:2])


def test_scores_by_hand() -> None:
    c = Confusion(tp=6, fp=2, fn=4, tn=8)
    s = scores(c)
    p, r = 6 / 8, 6 / 10
    assert s["precision"] == pytest.approx(p)
    assert s["recall"] == pytest.approx(r)
    assert s["f1"] == pytest.approx(2 * p * r / (p + r))
    assert s["iou_fg"] == pytest.approx(6 / 12)
    assert s["iou_bg"] == pytest.approx(8 / 14)
    assert s["miou"] == pytest.approx((6 / 12 + 8 / 14) / 2)


def test_pooling_is_over_pixels_not_images() -> None:
    # Image A: perfect on 1 fg pixel; image B: misses 3 fg pixels. Per-image IoU_FG would average
    # to 0.5, pooled IoU_FG is 1 / 4.
    a = confusion_from_labels(np.array([1, 0, 0, 0]), np.array([1, 0, 0, 0]))
    b = confusion_from_labels(np.array([0, 0, 0, 0]), np.array([1, 1, 1, 0]))
    assert scores(a + b)["iou_fg"] == pytest.approx(1 / 4)


def test_empty_foreground_and_empty_prediction_is_perfect() -> None:
    s = scores(Confusion(tp=0, fp=0, fn=0, tn=100))
    assert s == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "iou_fg": 1.0,
        "iou_bg": 1.0,
        "miou": 1.0,
    }


def test_empty_foreground_with_false_alarms() -> None:
    s = scores(Confusion(tp=0, fp=5, fn=0, tn=95))
    assert s["recall"] == 1.0  # nothing to miss
    assert s["precision"] == 0.0
    assert s["f1"] == 0.0
    assert s["iou_fg"] == 0.0
    assert s["iou_bg"] == pytest.approx(95 / 100)
    assert s["miou"] == pytest.approx(0.475)


def test_empty_prediction_with_foreground_present() -> None:
    s = scores(Confusion(tp=0, fp=0, fn=10, tn=90))
    assert s["precision"] == 1.0  # no false alarm raised
    assert s["recall"] == 0.0
    assert s["f1"] == 0.0
    assert s["iou_fg"] == 0.0
    assert s["iou_bg"] == pytest.approx(0.9)


def test_all_foreground_everywhere() -> None:
    s = scores(Confusion(tp=50, fp=0, fn=0, tn=0))
    assert s["iou_bg"] == 1.0  # background absent in truth and prediction
    assert s["miou"] == 1.0


def test_safe_ratio_policy() -> None:
    assert safe_ratio(0, 0) == 1.0
    assert safe_ratio(1, 4) == 0.25


@given(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6), st.integers(0, 10**6))
def test_iou_f1_identity_and_bounds(tp: int, fp: int, fn: int, tn: int) -> None:
    s = scores(Confusion(tp, fp, fn, tn))
    assert math.isclose(s["iou_fg"], s["f1"] / (2 - s["f1"]), rel_tol=1e-9, abs_tol=1e-12)
    for key in ("precision", "recall", "f1", "iou_fg", "iou_bg", "miou"):
        assert 0.0 <= s[key] <= 1.0


def test_record_has_design_keys_in_order() -> None:
    rec = metrics_record(Confusion(1, 1, 1, 1), 1, 0.01, "cpu (1 threads)", 0.5)
    assert tuple(rec) == METRIC_KEYS
    assert rec["tp"] == 1 and rec["n_images"] == 1 and rec["train_time_h"] == 0.5
