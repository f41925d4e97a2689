"""Pooled binary segmentation metrics (MMLSv2 Sec. 4.1: precision, recall, F1, IoU, mIoU).

Every metric is derived from one confusion matrix (TP, FP, FN, TN) accumulated over *all pixels*
of a split (pooled, not averaged per image). Foreground = landslide = class 1; the prediction of a
pixel is the argmax of its two logits.

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
import torch

#: Keys of the flat metrics JSON (docs/design.md), in a stable order.
METRIC_KEYS: tuple[str, ...] = (
    "precision",
    "recall",
    "f1",
    "iou_fg",
    "iou_bg",
    "miou",
    "tp",
    "fp",
    "fn",
    "tn",
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

    @property
    def total(self) -> int:
        """Number of pixels counted."""
        return self.tp + self.fp + self.fn + self.tn


def confusion_from_labels(
    pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray
) -> Confusion:
    """Confusion counts of two equally shaped label maps with values in {0, 1}."""
    p = torch.as_tensor(pred)
    t = torch.as_tensor(target)
    if p.shape != t.shape:
        raise ValueError(f"prediction shape {tuple(p.shape)} != target shape {tuple(t.shape)}")
    p = p.to(torch.bool)
    t = t.to(torch.bool)
    tp = int((p & t).sum().item())
    fp = int((p & ~t).sum().item())
    fn = int((~p & t).sum().item())
    tn = int(t.numel() - tp - fp - fn)
    return Confusion(tp, fp, fn, tn)


def confusion_from_logits(logits: torch.Tensor, target: torch.Tensor) -> Confusion:
    """Confusion counts of N x 2 x H x W logits (prediction = argmax) against N x H x W labels."""
    if logits.ndim != 4 or logits.shape[1] != 2:
        raise ValueError(f"expected N x 2 x H x W logits, got {tuple(logits.shape)}")
    return confusion_from_labels(logits.argmax(dim=1), target)


def safe_ratio(numerator: float, denominator: float) -> float:
    """``numerator / denominator``, or 1.0 when the denominator is 0 (see module docstring)."""
    return 1.0 if denominator == 0 else float(numerator) / float(denominator)


def scores_array(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1, IoU_FG, IoU_BG and mIoU of ``(..., 4)`` pooled counts
    [tp, fp, fn, tn], vectorized over the leading axes (MMLSv2 Sec. 4.1).

    Zero division: a ratio whose denominator is 0 is 1.0 (nothing to find, nothing found);
    F1 is 0 when precision + recall is 0.
    """
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


def check_total(c: Confusion, n_images: int, height: int, width: int) -> None:
    """Raise ``AssertionError`` unless TP + FP + FN + TN = n_images * height * width."""
    expected = n_images * height * width
    if c.total != expected:
        raise AssertionError(
            f"confusion counts add up to {c.total} pixels, expected {n_images} x {height} x "
            f"{width} = {expected}"
        )


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
