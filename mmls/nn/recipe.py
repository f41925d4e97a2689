"""How a model is trained and applied beyond its architecture: loss, optimizer, schedule, weight
averaging, test-time augmentation, decision threshold, input context.

The paper keeps one configuration for every model (Sec. 4.1: Adam, cross entropy, StepLR) and
calls it a reference baseline (Sec. 5); ``recipe: paper`` values reproduce it exactly. The other
choices are what the 2026 Mars landslide challenge teams used, minus pretrained weights:

- ``loss``: ``ce`` (paper), ``ce_dice`` (CE + ``dice_weight`` x soft Dice of the landslide
  class; smp's Dice is 0 on a batch without landslide pixels, where CE alone acts),
  ``ce_lovasz`` (CE + the Lovasz-softmax loss, a surrogate of the mean IoU);
- ``optimizer``: ``adam`` (paper) or ``adamw`` (decoupled ``weight_decay``);
- ``schedule``: ``step`` (paper: StepLR by ``train.lr_step_size`` / ``train.lr_gamma``, per
  epoch) or ``cosine`` (linear warm-up over ``warmup_epochs``, then cosine decay towards 0,
  reached just after the last step; per step);
- ``ema_decay``: null, or the decay of an exponential moving average of the weights; the EMA
  weights are validated, selected and saved instead of the raw ones;
- ``tta``: average the landslide probability over the 8 flips/rotations at evaluation and
  prediction (probabilities, not logits);
- ``threshold``: a fixed probability threshold (0.5 = the paper's argmax), or ``calibrate``:
  the threshold maximising validation mIoU (grid :data:`THRESHOLDS`), chosen on the split that
  selects the checkpoint and never on the scored one;
- ``context_px``: extra pixels on each side of the 128-px patch that the model sees
  (:mod:`mmls.data.context`); losses and scores are on the central patch only.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import segmentation_models_pytorch as smp
import torch
from torch import nn

from mmls.core.config import ParamError, Section
from mmls.data.dataset import IGNORE


class RecipeConfig(Section):
    """The ``recipe`` params section (a model entry may override any key)."""

    loss: Literal["ce", "ce_dice", "ce_lovasz"]
    dice_weight: float  # weight of the Dice (or Lovasz) term beside cross entropy
    optimizer: Literal["adam", "adamw"]
    weight_decay: float
    schedule: Literal["step", "cosine"]
    warmup_epochs: float
    ema_decay: float | None
    tta: bool
    threshold: float | Literal["calibrate"]
    context_px: int

    def check(self) -> None:
        if self.dice_weight < 0:
            raise ParamError("dice_weight", "must be >= 0")
        if self.weight_decay < 0:
            raise ParamError("weight_decay", "must be >= 0")
        if self.warmup_epochs < 0:
            raise ParamError("warmup_epochs", "must be >= 0")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ParamError("ema_decay", "must be null or in (0, 1)")
        if not isinstance(self.threshold, str) and not 0 < self.threshold < 1:
            raise ParamError("threshold", "must be in (0, 1) or 'calibrate'")
        if self.context_px < 0 or self.context_px % 16:
            raise ParamError("context_px", "must be >= 0 and a multiple of 16")


class SegLoss(nn.Module):
    """Cross entropy, plus a Dice or Lovasz term on the landslide class."""

    def __init__(self, kind: str, weight: float) -> None:
        super().__init__()
        self.ce = nn.CrossEntropyLoss(ignore_index=IGNORE)
        self.extra: nn.Module | None = None
        if kind == "ce_dice":
            self.extra = smp.losses.DiceLoss(
                "multiclass", classes=[1], from_logits=True, ignore_index=IGNORE
            )
        elif kind == "ce_lovasz":  # the Lovasz extension of the Jaccard loss, over both classes
            self.extra = smp.losses.LovaszLoss("multiclass", from_logits=True, ignore_index=IGNORE)
        self.weight = weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = self.ce(logits, target)
        if self.extra is not None:
            loss = loss + self.weight * self.extra(logits, target)
        return loss


def make_loss(recipe: RecipeConfig) -> nn.Module:
    """The training loss; ``ce`` is exactly ``nn.CrossEntropyLoss`` (the paper's)."""
    if recipe.loss == "ce":
        return nn.CrossEntropyLoss()
    return SegLoss(recipe.loss, recipe.dice_weight)


def make_optimizer(recipe: RecipeConfig, params, lr: float) -> torch.optim.Optimizer:
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=recipe.weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=recipe.weight_decay)


def cosine_warmup(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """LR factor at step s: linear from 1/(w+1) up to 1 over w steps, then cosine to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        span = max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup_steps) / span)))

    return factor


def make_scheduler(
    recipe: RecipeConfig,
    optimizer: torch.optim.Optimizer,
    *,
    epochs: int,
    steps_per_epoch: int,
    step_size: int,
    gamma: float,
) -> tuple[torch.optim.lr_scheduler.LRScheduler, bool]:
    """(scheduler, steps per batch?): StepLR stepped per epoch, or warm-up + cosine per batch."""
    if recipe.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step_size, gamma=gamma), False
    total = epochs * steps_per_epoch
    warmup = round(recipe.warmup_epochs * steps_per_epoch)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_warmup(total, warmup)), True


def make_ema(recipe: RecipeConfig, model: nn.Module) -> torch.optim.swa_utils.AveragedModel | None:
    """An exponential moving average of ``model``'s weights (and buffers), or None."""
    if recipe.ema_decay is None:
        return None
    avg = torch.optim.swa_utils.get_ema_multi_avg_fn(recipe.ema_decay)
    return torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=avg, use_buffers=True)
