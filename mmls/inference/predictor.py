"""One predictor built from a checkpoint: model, input bands, standardisation, device, layout.

Evaluation, band ablation and whole-scene prediction all go through :class:`Predictor`, so a
checkpoint is loaded and its inputs prepared in exactly one way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mmls.core.io import PathLike
from mmls.data.bands import band_indices
from mmls.data.context import context_index
from mmls.data.dataset import TileDataset
from mmls.data.normalization import Standardizer
from mmls.data.store import Store
from mmls.nn.device import autocast, to_device
from mmls.nn.models import load_checkpoint
from mmls.nn.probability import landslide_probability


@dataclass
class Predictor:
    """A trained model ready to map standardised N x C x S x S batches to N x 2 x S x S logits."""

    model: nn.Module
    bands: tuple[str, ...]
    mean: list[float]  # training statistics of the bands (mmls.data.normalization)
    std: list[float]
    nodata: float | None  # the training store's declared nodata
    device: torch.device
    channels_last: bool
    tile_size: int
    meta: dict[str, Any]
    source: str
    context_px: int = 0  # extra pixels on each side of the patch the model sees (recipe)
    amp: str = "fp32"  # mixed precision on CUDA (mmls.nn.device.autocast)

    @classmethod
    def load(cls, checkpoint: PathLike, device: torch.device) -> Predictor:
        """The predictor of a training checkpoint (:func:`mmls.nn.models.save_checkpoint`)."""
        model, meta = load_checkpoint(checkpoint, device)
        return cls.of_checkpoint(model, meta, device, str(Path(checkpoint)))

    @classmethod
    def of_checkpoint(
        cls, model: nn.Module, meta: dict[str, Any], device: torch.device, source: str
    ) -> Predictor:
        channels_last = bool(meta.get("train_config", {}).get("channels_last", False))
        if channels_last:
            model.to(memory_format=torch.channels_last)
        norm = meta["normalization"]
        return cls(
            model=model,
            bands=tuple(meta["bands"]),
            mean=list(norm["mean"]),
            std=list(norm["std"]),
            nodata=norm["nodata"],
            device=device,
            channels_last=channels_last,
            tile_size=int(meta.get("tile_size", 128)),
            meta=meta,
            source=source,
            context_px=int(meta.get("recipe", {}).get("context_px", 0)),
            amp=str(meta.get("train_config", {}).get("amp", "fp32")),
        )

    def band_indices(self, available: Sequence[str]) -> list[int]:
        """0-based indices of the model's bands in a raster or store band order."""
        return band_indices(self.bands, available, source=self.source)

    def standardizer(self, nodata: float | None) -> Standardizer:
        """This model's standardisation for inputs whose declared nodata is ``nodata``."""
        return Standardizer(self.mean, self.std, nodata)

    def dataset(
        self, store: Store, rows: Sequence[int], allowed: np.ndarray | None = None
    ) -> TileDataset:
        """The store rows as this model's standardised inputs (with its context windows, filled
        from the ``allowed`` rows' imagery: every row by default, as at test time)."""
        idx = self.band_indices(store.bands)
        context = context_index(store, self.context_px)
        return TileDataset(
            store.images, store.masks, rows, idx, self.standardizer(store.nodata), context, allowed
        )

    @torch.inference_mode()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """N x 2 x H x W logits of a standardised batch (any device)."""
        self.model.eval()
        with autocast(self.device, self.amp):
            return self.model(to_device(x, self.device, self.channels_last)).float()

    def probabilities(self, x: np.ndarray, tta: bool = False) -> np.ndarray:
        """N x H x W landslide probability (softmax of the two logits) of a standardised stack;
        with ``tta`` averaged over the 8 flips/rotations."""
        batch = torch.from_numpy(np.ascontiguousarray(x))
        batch = to_device(batch, self.device, self.channels_last)
        self.model.eval()
        with torch.inference_mode(), autocast(self.device, self.amp):
            return landslide_probability(self.model, batch, tta).cpu().numpy()
