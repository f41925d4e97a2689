"""Ensembles: several checkpoints of one recipe (seeds of a fold) as one model whose landslide
probability is the mean of theirs (probabilities, not logits, are averaged)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import nn

from mmls.inference.predictor import Predictor


class MeanProbability(nn.Module):
    """Outputs ``log`` of the members' mean softmax: its argmax and softmax are those of the
    mean probability, so it scores and predicts like any single model."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.softmax(m(x).float(), dim=1) for m in self.members])
        return torch.log(probs.mean(dim=0).clamp_min(1e-12))


def ensemble(predictors: Sequence[Predictor]) -> Predictor:
    """One predictor of several checkpoints trained on the same data (same bands and
    standardisation, e.g. the seeds of a fold)."""
    first = predictors[0]
    for p in predictors[1:]:
        if (p.bands, p.mean, p.std, p.context_px) != (
            first.bands,
            first.mean,
            first.std,
            first.context_px,
        ):
            raise ValueError(f"{p.source} was not trained like {first.source}: cannot ensemble")
    model = MeanProbability([p.model for p in predictors]).eval()
    sources = ", ".join(p.source for p in predictors)
    return replace(first, model=model, source=f"ensemble of {sources}")
