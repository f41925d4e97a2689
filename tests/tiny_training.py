"""Tiny trainings shared by the training, recipe and DDP tests: a 32-px store of 10 train,
4 val and 4 test patches, and ``fit`` with its outputs under one folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mmls.data.store import Store, load_store
from mmls.nn.recipe import RecipeConfig
from mmls.nn.training import Run, TrainConfig, fit
from tests.configs import config
from tests.stores import write_synthetic_store

TINY_TRAIN = {"epochs": 3, "batch_size": 4, "threads": 1, "lr_step_size": 2}


def tiny_store(path: Path) -> Store:
    write_synthetic_store(path, {"train": 10, "val": 4, "test": 4}, size=32, seed=1)
    return load_store(path)


def train_config(**kw: object) -> TrainConfig:
    """The params' ``train`` section with :data:`TINY_TRAIN` and ``kw`` on top."""
    return config("train", TrainConfig, **{**TINY_TRAIN, **kw})


def recipe(**kw: object) -> RecipeConfig:
    return config("recipe", RecipeConfig, **kw)


def fit_in(out: Path, store: Store, run: Run, hook=None) -> dict[str, Any]:
    """``fit`` on the store's train rows, selecting on val; every output under ``out``."""
    return fit(
        run,
        store,
        store.rows("train"),
        store.rows("val"),
        out / "best.pt",
        out / "log",
        out / "resume.pt",
        on_epoch_end=hook,
    )
