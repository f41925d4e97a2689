"""Context windows assembled from the store: the right pixels, and only allowed imagery."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from mmls.data.bands import BAND_NAMES
from mmls.data.context import ContextIndex, center
from mmls.data.dataset import IGNORE, DeviceTileSet, TileDataset, epoch_plan, make_loader
from mmls.data.normalization import FILL_VALUE, Standardizer
from mmls.data.store import load_store
from mmls.evaluation.config import EvalConfig
from mmls.evaluation.scoring import calibrate
from mmls.inference.predictor import Predictor
from tests.configs import config
from tests.stores import write_synthetic_store

S, C = 8, 4


def grid_store(cols: int = 3, rows: int = 2, terminal: int = 3):
    """A scene cut into patches (last column a terminal origin ``terminal`` px back)."""
    w = cols * S - terminal
    scene = np.arange(2 * rows * S * w, dtype=np.float32).reshape(2, rows * S, w)
    recs, images = [], []
    for c in range(cols):
        x = c * S if c < cols - 1 else w - S
        for r in range(rows):
            recs.append({"region": "base", "col": c, "row": r, "x_off": x, "y_off": r * S})
            images.append(scene[:, r * S : r * S + S, x : x + S])
    return scene, pd.DataFrame(recs), np.stack(images)


def test_window_is_the_scene_around_the_patch_nan_outside() -> None:
    scene, patches, images = grid_store()
    index = ContextIndex(patches, S, C)
    i = int(np.flatnonzero((patches["col"] == 1) & (patches["row"] == 0))[0])
    window = index.assemble(images, i, slice(None), None)
    x, y = patches.loc[i, "x_off"], patches.loc[i, "y_off"]
    assert np.isnan(window[:, :C]).all()  # above the scene
    np.testing.assert_array_equal(window[:, C:, :], scene[:, : S + C, x - C : x + S + C])
    np.testing.assert_array_equal(center(window, C), images[i])
    assert (y, x) == (0, S)


def test_disallowed_patches_leave_holes_but_the_patch_itself_stays() -> None:
    _, patches, images = grid_store()
    index = ContextIndex(patches, S, C)
    allowed = np.zeros(len(patches), bool)  # nothing but the patch itself
    window = index.assemble(images, 2, slice(None), allowed)
    assert np.isnan(window).sum() == 2 * ((S + 2 * C) ** 2 - S * S)
    np.testing.assert_array_equal(center(window, C), images[2])


def test_dataset_targets_ignore_the_margin_and_device_batches_match_the_loader() -> None:
    _, patches, images = grid_store()
    masks = (images[:, 0] % 3 == 0).astype(np.uint8)
    std = Standardizer([0.0, 0.0], [1.0, 1.0], None)
    data = TileDataset(images, masks, range(len(images)), [0, 1], std, ContextIndex(patches, S, C))
    x, y = data[0]
    assert x.shape == (2, S + 2 * C, S + 2 * C) and not torch.isnan(x).any()  # NaN -> fill
    assert (y[:C] == IGNORE).all() and torch.equal(y[C:-C, C:-C], torch.from_numpy(masks[0]).long())
    plan = epoch_plan(len(data), 4, torch.Generator().manual_seed(0), augment=True)
    on_device = DeviceTileSet(data, torch.device("cpu"))
    for keys, (lx, ly) in zip(plan, make_loader(data, plan), strict=True):
        dx, dy = on_device.batch(keys)
        assert torch.equal(dx, lx) and torch.equal(dy, ly)


class Spy(torch.nn.Module):
    """A model that records its inputs and predicts background everywhere."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.inputs.append(x.clone())
        return torch.zeros(len(x), 2, *x.shape[-2:])


def test_calibration_windows_see_training_and_selection_imagery_never_the_held_out(tmp_path):
    # the store's train patches lie in grid row 0, val in row 1, test in row 2: a val window's
    # upper margin is training imagery, its lower margin held-out (test) imagery
    size = 16
    write_synthetic_store(tmp_path, {"train": 3, "val": 3, "test": 3}, size=size, nodata=None)
    store = load_store(tmp_path)
    spy = Spy()
    predictor = Predictor(
        spy,
        BAND_NAMES,
        [0.0] * 7,
        [1.0] * 7,
        None,
        torch.device("cpu"),
        False,
        size,
        {},
        "spy",
        context_px=size,
    )
    cfg = config("eval", EvalConfig)
    calibrate(predictor, store, store.rows("val"), cfg, False, store.rows("train"))
    x = torch.cat(spy.inputs)
    above, below = x[:, :, :size, size:-size], x[:, :, -size:, size:-size]
    assert (above != FILL_VALUE).all() and (below == FILL_VALUE).all()
