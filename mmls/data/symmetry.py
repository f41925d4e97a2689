"""The 8 symmetries of the square (identity, 3 rotations by 90 degrees, and their mirrors):
training augmentation (Sec. 4.1, "random flips and rotations") and test-time augmentation use
the same ones, in numpy (:func:`apply_symmetry`) and in torch (:func:`symmetric`)."""

from __future__ import annotations

import numpy as np
import torch

N_SYMMETRIES = 8


def apply_symmetry(arr: np.ndarray, op: int) -> np.ndarray:
    """One of the 8 symmetries of the square (last two axes): op // 4 mirrors, op % 4 rotates."""
    if not 0 <= op < N_SYMMETRIES:
        raise ValueError(f"symmetry op must be in 0..7, got {op}")
    if op >= 4:
        arr = arr[..., ::-1]
    return np.rot90(arr, k=op % 4, axes=(-2, -1))


def invert_symmetry(arr: np.ndarray, op: int) -> np.ndarray:
    """The inverse of :func:`apply_symmetry` (maps a prediction back to the input's frame)."""
    arr = np.rot90(arr, k=-(op % 4), axes=(-2, -1))
    return arr[..., ::-1] if op >= 4 else arr


def symmetric(x: torch.Tensor, op: int, inverse: bool = False) -> torch.Tensor:
    """One of the 8 symmetries of the square on the last two axes (mmls.data.dataset's, in torch):
    op // 4 mirrors, op % 4 rotates by 90 degrees; ``inverse`` undoes it."""
    if inverse:
        x = torch.rot90(x, k=-(op % 4), dims=(-2, -1))
        return torch.flip(x, dims=(-1,)) if op >= 4 else x
    if op >= 4:
        x = torch.flip(x, dims=(-1,))
    return torch.rot90(x, k=op % 4, dims=(-2, -1))
