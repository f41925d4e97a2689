"""Pooled binary segmentation metrics (MMLSv2 Sec. 4.1: precision, recall, F1, IoU, mIoU).

Counting happens once: :func:`patch_counts` gives each patch's TP/FP/FN/TN; the split's
confusion is their sum (pooled over *all pixels*, never an average of per-image scores), and
every metric is derived from such counts by :func:`scores_array`. Foreground = landslide = class
1; the prediction of a pixel is the argmax of its two logits (or probability > threshold).

Zero-division policy (documented, tested): a ratio whose denominator is 0 is **1.0**. Such a
denominator is 0 only when the set of pixels the ratio is about is empty, so there is no pixel on
which the metric could have been wrong:

- precision = TP / (TP + FP): no pixel predicted foreground -> 1.0 (no false alarm was raised);
- recall = TP / (TP + FN): no foreground pixel in the ground truth -> 1.0 (nothing was missed);
- IoU_FG = TP / (TP + FP + FN): foreground absent in both truth and prediction -> 1.0;
- IoU_BG = TN / (TN + FP + FN): background absent in both -> 1.0;
- F1 = 2PR / (P + R), and F1 = 0.0 when P + R = 0 (that requires P = R = 0, a real failure).

Under this policy the identity IoU_FG = F1 / (2 - F1) holds in every case, including the empty
ones (e.g. empty truth but some predicted foreground: P = 0, R = 1, F1 = 0, IoU_FG = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COUNT_COLUMNS: tuple[str, ...] = ("tp", "fp", "fn", "tn")
#: Metrics derived from counts (the bootstrap recomputes them per resample).
SCORE_KEYS: tuple[str, ...] = ("precision", "recall", "f1", "iou_fg", "iou_bg", "miou")
#: Keys of the flat metrics JSON (docs/design.md), in a stable order.
METRIC_KEYS: tuple[str, ...] = (
    *SCORE_KEYS,
    *COUNT_COLUMNS,
    "n_images",
    "latency_s",
    "latency_device",
    "train_time_h",
)


@dataclass(frozen=True)
class Confusion:
    """Pixel confusion counts of the foreground (landslide, class 1) against background."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.tp + other.tp, self.fp + other.fp, self.fn + other.fn, self.tn + other.tn
        )

    @classmethod
    def of(cls, counts: np.ndarray) -> Confusion:
        """From ``(4,)`` or ``(N, 4)`` counts [tp, fp, fn, tn] (rows are summed: pooling)."""
        c = np.asarray(counts, dtype=np.int64).reshape(-1, 4).sum(axis=0)
        return cls(*(int(v) for v in c))

    @property
    def total(self) -> int:
        """Number of pixels counted."""
        return self.tp + self.fp + self.fn + self.tn


def patch_counts(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """N x 4 int64 ``[tp, fp, fn, tn]`` of N x H x W label maps (nonzero = foreground).

    A single H x W pair counts as N = 1; CPU torch tensors work too (``np.asarray``).
    """
    p = np.asarray(pred)
    t = np.asarray(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} != target shape {t.shape}")
    if p.ndim == 2:
        p, t = p[None], t[None]
    if p.ndim != 3:
        raise ValueError(f"expected N x H x W label maps, got shape {p.shape}")
    p = p.astype(bool, copy=False).reshape(len(p), -1)
    t = t.astype(bool, copy=False).reshape(len(t), -1)
    tp = np.count_nonzero(p & t, axis=1)
    fp = np.count_nonzero(p & ~t, axis=1)
    fn = np.count_nonzero(~p & t, axis=1)
    tn = p.shape[1] - tp - fp - fn
    return np.stack([tp, fp, fn, tn], axis=1).astype(np.int64)


def confusion_from_labels(pred: np.ndarray, target: np.ndarray) -> Confusion:
    """Pooled confusion of two equally shaped label maps of any shape."""
    p, t = np.asarray(pred), np.asarray(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {p.shape} != target shape {t.shape}")
    return Confusion.of(patch_counts(p.reshape(1, 1, -1), t.reshape(1, 1, -1)))


def safe_ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, or 1.0 when the denominator is 0 (see module docstring)."""
    return 1.0 if denominator == 0 else float(numerator) / float(denominator)


def scores_array(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1, IoU_FG, IoU_BG and mIoU of ``(..., 4)`` pooled counts
    [tp, fp, fn, tn], vectorized over the leading axes (MMLSv2 Sec. 4.1)."""
    counts = np.asarray(counts, dtype=np.float64)
    tp, fp, fn, tn = (counts[..., i] for i in range(4))

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        out = np.ones(np.broadcast(num, den).shape)
        np.divide(num, den, out=out, where=den != 0)
        return out

    precision = ratio(tp, tp + fp)
    recall = ratio(tp, tp + fn)
    pr = precision + recall
    f1 = np.zeros_like(pr)
    np.divide(2 * precision * recall, pr, out=f1, where=pr != 0)
    iou_fg = ratio(tp, tp + fp + fn)
    iou_bg = ratio(tn, tn + fp + fn)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "iou_fg": iou_fg,
        "iou_bg": iou_bg,
        "miou": (iou_bg + iou_fg) / 2,
    }


def scores(c: Confusion) -> dict[str, float]:
    """:func:`scores_array` of one confusion, as Python floats."""
    values = scores_array(np.array([c.tp, c.fp, c.fn, c.tn]))
    return {k: float(v) for k, v in values.items()}


def metrics_record(
    c: Confusion,
    n_images: int,
    latency_s: float | None,
    latency_device: str | None,
    train_time_h: float | None,
) -> dict[str, float | int | str | None]:
    """The flat metrics JSON record of docs/design.md (keys :data:`METRIC_KEYS`)."""
    record: dict[str, float | int | str | None] = dict(scores(c))
    record.update(
        tp=c.tp,
        fp=c.fp,
        fn=c.fn,
        tn=c.tn,
        n_images=n_images,
        latency_s=latency_s,
        latency_device=latency_device,
        train_time_h=train_time_h,
    )
    return {key: record[key] for key in METRIC_KEYS}
