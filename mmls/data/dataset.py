"""The torch side of the store: standardised samples, the 8 symmetries, batches and loaders.

Augmentation (Sec. 4.1, "random flips and rotations"): each training sample gets one of the 8
symmetries of the square (identity, 3 rotations by 90 degrees, and their mirrors), applied
identically to image and mask. Which symmetry and the sample order are drawn per epoch from one
seeded ``torch.Generator`` (:func:`epoch_plan`), whose state is part of the resumable state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mmls.data.context import ContextIndex
from mmls.data.normalization import Standardizer
from mmls.data.store import UNLABELLED
from mmls.data.symmetry import N_SYMMETRIES, apply_symmetry, symmetric

#: Target value of pixels outside the scored patch (context margin): no loss, no score.
IGNORE = -100


class TileDataset(Dataset):
    """Standardised, band-selected samples of some rows of the store.

    Item ``i`` is store row ``rows[i]``; items are addressed by ``i`` or ``(i, op)`` with
    ``op`` a symmetry of :func:`apply_symmetry` (0 = identity) and are ``(image C x H x W
    float32, mask H x W int64)``. With a ``context`` index the image is the wider window around
    the patch (mmls/data/context.py; filled from the ``allowed`` store rows only) and the target is
    :data:`IGNORE` outside the central patch.
    """

    def __init__(
        self,
        images: np.ndarray,
        masks: np.ndarray,
        rows: Sequence[int],
        band_idx: Sequence[int],
        standardize: Standardizer,
        context: ContextIndex | None = None,
        allowed: np.ndarray | None = None,
    ) -> None:
        if len(band_idx) != len(standardize):
            raise ValueError("band_idx and the standardizer must have the same length")
        self.images = images
        self.masks = masks
        self.rows = np.asarray(rows, dtype=np.int64)
        self.band_idx = list(band_idx)
        # A contiguous band range reads as a slice (a view), not a fancy-index copy.
        lo = self.band_idx[0]
        contiguous = self.band_idx == list(range(lo, lo + len(self.band_idx)))
        self._bands: slice | list[int] = (
            slice(lo, lo + len(self.band_idx)) if contiguous else self.band_idx
        )
        self.standardize = standardize
        self.context = context
        self.allowed = allowed
        self.context_px = 0 if context is None else context.c

    def __len__(self) -> int:
        return len(self.rows)

    def image(self, i: int) -> np.ndarray:
        """Standardised image ``i`` (C x H x W float32), missing pixels filled."""
        row = int(self.rows[i])
        if self.context is None:
            raw = self.images[row, self._bands]
        else:
            raw = self.context.assemble(self.images, row, self._bands, self.allowed)
        out, _ = self.standardize(raw)
        return out

    def mask(self, i: int) -> np.ndarray:
        """Target ``i``: 0/1, and :data:`IGNORE` where nothing is known (an unlabelled patch,
        the context margin)."""
        mask = np.asarray(self.masks[self.rows[i]])
        if mask.max(initial=0) == UNLABELLED:
            mask = np.where(mask == UNLABELLED, IGNORE, mask).astype(np.int64)
        if self.context is None:
            return mask
        c = self.context_px
        out = np.full((mask.shape[0] + 2 * c, mask.shape[1] + 2 * c), IGNORE, np.int64)
        out[c:-c, c:-c] = mask
        return out

    def _sample(self, key: int | tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        i, op = (key, 0) if isinstance(key, int | np.integer) else key
        image, mask = self.image(int(i)), self.mask(int(i))
        if op:
            image = apply_symmetry(image, int(op))
            mask = apply_symmetry(mask, int(op))
        return image, mask

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        image, mask = self._sample(key)
        image = np.ascontiguousarray(image)
        mask = np.ascontiguousarray(mask, dtype=np.int64)
        return torch.from_numpy(image), torch.from_numpy(mask)

    def __getitems__(self, keys: Sequence[int | tuple[int, int]]) -> tuple[torch.Tensor, ...]:
        """A whole collated batch, filled in place (one allocation per batch, no stacking)."""
        h, w = (s + 2 * self.context_px for s in self.masks.shape[-2:])
        x = np.empty((len(keys), len(self.band_idx), h, w), dtype=np.float32)
        y = np.empty((len(keys), h, w), dtype=np.int64)
        for j, key in enumerate(keys):
            x[j], y[j] = self._sample(key)
        return torch.from_numpy(x), torch.from_numpy(y)


def _batch_as_is(batch: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """Collate function for :meth:`TileDataset.__getitems__`, which returns collated batches."""
    return batch


def split_batches(order: Sequence[Any], batch_size: int) -> list[list[Any]]:
    """Chunk ``order`` into batches; a trailing batch of ONE item joins the previous batch.

    BatchNorm after global pooling (DeepLabV3's ASPP pooling branch, PSPNet's 1x1 bin) cannot
    train on a single sample, so a last partial batch of size 1 is merged rather than dropped:
    every sample is still seen every epoch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches = [list(order[i : i + batch_size]) for i in range(0, len(order), batch_size)]
    if len(batches) >= 2 and len(batches[-1]) == 1:
        batches[-2].extend(batches.pop())
    return batches


def epoch_plan(
    n: int, batch_size: int, generator: torch.Generator, augment: bool
) -> list[list[tuple[int, int]]]:
    """One epoch of shuffled batches of ``(index, symmetry op)``, drawn from ``generator``."""
    perm = torch.randperm(n, generator=generator).tolist()
    ops = [0] * n
    if augment:
        ops = torch.randint(0, N_SYMMETRIES, (n,), generator=generator).tolist()
    return split_batches([(i, ops[i]) for i in perm], batch_size)


def sequential_batches(n: int, batch_size: int) -> list[list[int]]:
    """Batches ``[0..b), [b..2b), ...`` in order (evaluation)."""
    return [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]


def make_loader(
    dataset: TileDataset, batches: Sequence[Sequence[Any]], num_workers: int = 0, pin: bool = False
) -> DataLoader:
    """A DataLoader over precomputed ``batches`` (keys of ``dataset``), optionally with workers."""
    return DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=num_workers,
        pin_memory=pin,
        collate_fn=_batch_as_is,
        generator=torch.Generator().manual_seed(0),  # keeps the global RNG untouched
    )


class DeviceTileSet:
    """A :class:`TileDataset` standardised once and kept on ``device`` (a GPU): batches are
    gathered and flipped/rotated there, with no host-to-device copy per step. The batches equal
    the loader's, sample for sample (the same standardisation, the same symmetries)."""

    def __init__(self, data: TileDataset, device: torch.device) -> None:
        images = np.stack([data.image(i) for i in range(len(data))])
        masks = np.stack([np.asarray(data.mask(i), dtype=np.int64) for i in range(len(data))])
        self.images = torch.from_numpy(images).to(device)
        self.masks = torch.from_numpy(masks).to(device)

    def batch(self, keys: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.tensor([int(i) for i, _ in keys], device=self.images.device)
        x, y = self.images[idx], self.masks[idx]
        ops = [int(op) for _, op in keys]
        if any(ops):
            x = torch.stack([symmetric(x[j], op) for j, op in enumerate(ops)])
            y = torch.stack([symmetric(y[j], op) for j, op in enumerate(ops)])
        return x, y
