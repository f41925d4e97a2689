"""Threshold calibration: the probability threshold that maximises pooled mIoU on a selection
split (``recipe.threshold: calibrate``; never fitted on the scored split)."""

from __future__ import annotations

import numpy as np

from mmls.metrics.confusion import patch_counts, scores_array

#: Candidate thresholds of ``threshold: calibrate``.
THRESHOLDS: tuple[float, ...] = tuple(np.round(np.arange(0.05, 0.951, 0.025), 3))


def calibrate_threshold(probabilities: np.ndarray, masks: np.ndarray) -> tuple[float, float]:
    """(threshold, mIoU) of :data:`THRESHOLDS` maximising pooled mIoU on (probs, masks);
    ties keep the threshold closest to 0.5."""
    truth = masks.astype(bool)
    best = (0.5, -1.0)
    for t in sorted(THRESHOLDS, key=lambda v: abs(v - 0.5)):
        miou = float(scores_array(patch_counts(probabilities > t, truth).sum(0))["miou"])
        if miou > best[1]:
            best = (float(t), miou)
    return best
