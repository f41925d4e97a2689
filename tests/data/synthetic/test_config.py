"""The ``synthetic`` params section: the repository's parses, bad values name their key."""

from __future__ import annotations

import pytest

from mmls.core.config import section
from mmls.core.errors import InputError
from mmls.data.synthetic.config import SyntheticConfig
from tests.configs import PARAMS
from tests.data.synthetic.tiny import tiny


def test_repo_params_parse() -> None:
    cfg = section(PARAMS, "synthetic", SyntheticConfig)
    assert (cfg.width, cfg.height) == (PARAMS["synthetic"]["width"], PARAMS["synthetic"]["height"])
    assert cfg.inventory_shift_px == tuple(PARAMS["synthetic"]["inventory_shift_px"])


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("width", 0),
        ("height", -5),
        ("width", 12.5),
        ("width", True),
        ("pixel_size_m", 0.0),
        ("pixel_size_m", "100"),
        ("nodata_fraction", 1.0),
        ("nodata_fraction", -0.1),
        ("n_landslides", -1),
        ("inventory_shift_px", [37]),
        ("inventory_shift_px", [-1, 3]),
        ("inventory_pad_px", -3),
        ("crs", "not a crs"),
        ("dem_max_m", -7000.0),
        ("no_such_key", 1),
    ],
)
def test_section_rejects_bad_values_naming_the_key(key: str, value: object) -> None:
    with pytest.raises(InputError) as err:
        tiny(**{key: value})
    assert err.value.source.startswith(f"params.yaml:synthetic.{key}")


def test_section_rejects_missing_section_and_key() -> None:
    with pytest.raises(InputError, match="params.yaml:synthetic: missing section"):
        section({}, "synthetic", SyntheticConfig)
    incomplete = {k: v for k, v in PARAMS["synthetic"].items() if k != "seed"}
    with pytest.raises(InputError, match="params.yaml:synthetic.seed: missing key"):
        section({"synthetic": incomplete}, "synthetic", SyntheticConfig)
