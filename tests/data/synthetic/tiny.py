"""The small scene the synthetic-scene tests share (a module, so that tests can import it)."""

from __future__ import annotations

from mmls.data.synthetic.config import SyntheticConfig
from tests.configs import config


def tiny(**overrides: object) -> SyntheticConfig:
    """A small scene (512 x 384 px, one trough) that generates in well under a second."""
    small = {"width": 512, "height": 384, "n_landslides": 10, "n_troughs": 1}
    more = {"inventory_pad_px": 40, "unmapped_patch_px": 24}
    return config("synthetic", SyntheticConfig, **{**small, **more, **overrides})


TINY = tiny()
