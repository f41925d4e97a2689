"""Landslide probabilities from a model, optionally with test-time augmentation (TTA): the mean
over the 8 flips/rotations of the input, each prediction mapped back before averaging
(probabilities are averaged, not logits)."""

from __future__ import annotations

import torch
from torch import nn

from mmls.data.symmetry import N_SYMMETRIES, symmetric


def landslide_probability(model: nn.Module, x: torch.Tensor, tta: bool) -> torch.Tensor:
    """N x H x W softmax probability of the landslide class (class 1) of N x C x H x W inputs."""
    if not tta:
        logits = model(x)
        if logits.shape[1] != 2 or logits.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"model output {tuple(logits.shape)} is not N x 2 x H x W logits")
        return torch.softmax(logits.float(), dim=1)[:, 1]
    total = torch.zeros(x.shape[0], *x.shape[-2:], device=x.device)
    for op in range(N_SYMMETRIES):
        p = torch.softmax(model(symmetric(x, op)).float(), dim=1)[:, 1]
        total += symmetric(p, op, inverse=True)
    return total / N_SYMMETRIES
