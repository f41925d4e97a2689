"""One pass of a model over a dataset: per-patch counts, loss, labels or probabilities.

Training validates with it (the selection mIoU of every epoch); evaluation scores checkpoints
with it. Counting happens once, per patch (:func:`mmls.metrics.confusion.patch_counts`), so
the scores do not depend on the batch size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from mmls.data.context import center
from mmls.data.dataset import TileDataset, make_loader, sequential_batches
from mmls.metrics.confusion import Confusion, patch_counts
from mmls.nn.device import autocast, to_device
from mmls.nn.probability import landslide_probability


@dataclass(frozen=True)
class EvalResult:
    """One pass over some rows: N x 4 per-patch counts, mean per-pixel cross entropy and (when
    asked for) the predicted labels (N x H x W uint8) and landslide probabilities (float32),
    in row order; all on the scored patch (the centre of a context window)."""

    counts: np.ndarray
    loss: float
    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None

    @property
    def confusion(self) -> Confusion:
        return Confusion.of(self.counts)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    dataset: TileDataset,
    device: torch.device,
    batch_size: int,
    channels_last: bool = False,
    num_workers: int = 0,
    *,
    keep_labels: bool = False,
    keep_probabilities: bool = False,
    tta: bool = False,
    threshold: float | None = None,
    amp: str = "fp32",
) -> EvalResult:
    """Per-patch counts and mean cross entropy of ``model`` (eval mode) over ``dataset``.

    Labels are the argmax of the two logits (the paper's) unless ``tta`` or a ``threshold`` is
    given: then landslide where the (test-time-augmented) probability exceeds ``threshold``
    (0.5 when None). The loss (the training's validation figure) comes with argmax labels only;
    when probabilities are asked for it is NaN, which saves a forward pass per batch.
    """
    model.eval()
    loader = make_loader(
        dataset, sequential_batches(len(dataset), batch_size), num_workers, device.type == "cuda"
    )
    c = dataset.context_px
    counts: list[np.ndarray] = [np.zeros((0, 4), np.int64)]
    kept: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    loss_sum = 0.0
    for x, y in loader:
        y = y.to(device, non_blocking=True)
        x = to_device(x, device, channels_last)
        with autocast(device, amp):
            if tta or threshold is not None or keep_probabilities:
                logits, prob = None, center(landslide_probability(model, x, tta), c)
            else:
                logits, prob = model(x), None
        if logits is not None:
            loss_sum += float(nn.functional.cross_entropy(logits.float(), y, reduction="sum"))
        y = center(y, c)
        if int(y.min()) < 0 or int(y.max()) > 1:
            raise ValueError("scored targets must be 0/1: an unlabelled or margin pixel is scored")
        if logits is not None:
            labels = center(logits, c).argmax(1).to(torch.uint8).cpu().numpy()
        else:
            labels = (
                (prob > (0.5 if threshold is None else threshold)).to(torch.uint8).cpu().numpy()
            )
        counts.append(patch_counts(labels, y.cpu().numpy()))
        if keep_labels:
            kept.append(labels)
        if keep_probabilities and prob is not None:
            probs.append(prob.cpu().numpy())
    all_counts = np.concatenate(counts)
    n_pixels = int(all_counts.sum())
    with_loss = not (tta or threshold is not None or keep_probabilities)
    return EvalResult(
        all_counts,
        loss_sum / n_pixels if n_pixels and with_loss else float("nan"),
        np.concatenate(kept) if keep_labels and kept else None,
        np.concatenate(probs) if keep_probabilities and probs else None,
    )
