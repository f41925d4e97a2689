"""Models and a predictor shared by the whole-scene tests (blending, scene)."""

from __future__ import annotations

import torch
from torch import nn

from mmls.data.bands import BAND_NAMES
from mmls.inference.predictor import Predictor

SIZE = 128


def identity_predictor(model: nn.Module) -> Predictor:
    """A predictor that feeds the composite's 7 bands to ``model`` unstandardised."""
    cpu = torch.device("cpu")
    return Predictor(model, BAND_NAMES, [0.0] * 7, [1.0] * 7, None, cpu, False, SIZE, {}, "test")


def conv_model(seed: int = 0) -> nn.Module:
    """A model with spatial context (3x3 convs, zero padding): its output depends on the window."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(7, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 2, 3, padding=1)
    ).eval()
