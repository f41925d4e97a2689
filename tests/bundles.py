"""Tiny model bundles for tests: a small smp U-Net with seeded random weights, and the facts a
bundle records about its training data, chosen to fit the scenes of tests/rasters.py (7 bands of
uniform [0, 1) values at 100 m in Mars equirectangular) unless a test says otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mmls.data.bands import BAND_NAMES
from mmls.inference.bundle import Bundle, Inference, Score, ValueConvention, write_bundle
from mmls.nn.models import build_model
from tests.rasters import MARS_EQC, PIXEL_M

TINY_ARCH = {
    "arch": "Unet",
    "encoder_name": "tu-mobilenetv3_small_050",
    "encoder_weights": None,
    "encoder_depth": 3,
    "decoder_channels": [16, 8, 4],
}
UNIFORM = [0.01, 0.5, 0.99]  # p1, p50, p99 of uniform [0, 1) values
RAW_DEM = [-4200.0, -1500.0, 2600.0]


def tiny_bundle(seed: int = 0, **overrides: Any) -> Bundle:
    torch.manual_seed(seed)
    model = build_model("tiny", TINY_ARCH, len(BAND_NAMES), BAND_NAMES).eval()
    fields: dict[str, Any] = {
        "model_name": "tiny",
        "model_config": dict(TINY_ARCH),
        "state_dict": model.state_dict(),
        "bands": list(BAND_NAMES),
        "tile_size_px": 32,
        "context_px": 0,
        "normalization": {"mean": [0.5] * 7, "std": [0.29] * 7, "nodata": -9999.0},
        "convention": ValueConvention(
            "scaled [0, 1]", None, "test", {b: list(UNIFORM) for b in BAND_NAMES}
        ),
        "inference": Inference(False, None, "argmax (paper)"),
        "pixel_size_m": PIXEL_M,
        "crs_wkt": MARS_EQC.to_wkt(),
        "provenance": {"git_revision": "test", "model_key": "tiny", "seed": seed},
        "scores": [Score("paper: test", "test", 0.6, 0.4, 10)],
        "recommended": True,
    }
    fields.update(overrides)
    return Bundle(**fields)


def write_tiny_bundle(path: Path, **overrides: Any) -> Path:
    write_bundle(path, tiny_bundle(**overrides))
    return path
