"""Band names of the 7-band composite (MMLSv2 Sec. 1/2.1) and band-set selection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mmls.core.config import entry, value
from mmls.core.errors import InputError

#: The composite's band order, as published (Fig. 3 caption): red, green, blue, DEM, slope,
#: thermal inertia, grayscale.
BAND_NAMES: tuple[str, ...] = (
    "red",
    "green",
    "blue",
    "dem",
    "slope",
    "thermal_inertia",
    "grayscale",
)

#: What a raw (unscaled) value of each band measures: the challenge package's convention
#: (:mod:`mmls.data.releases`), named in the messages that refuse another convention.
RAW_UNITS: dict[str, str] = {
    "red": "8-bit digital numbers",
    "green": "8-bit digital numbers",
    "blue": "8-bit digital numbers",
    "dem": "metres",
    "slope": "degrees",
    "thermal_inertia": "thermal inertia units (8-bit-like)",
    "grayscale": "8-bit digital numbers",
}


def band_indices(
    selected: Sequence[str], available: Sequence[str] = BAND_NAMES, source: str = "params.yaml"
) -> list[int]:
    """0-based indices of ``selected`` band names within ``available``.

    Unknown or repeated names are an :class:`InputError` naming ``source``.
    """
    if len(selected) == 0:
        raise InputError(source, "band selection is empty")
    if len(set(selected)) != len(selected):
        raise InputError(source, f"band selection repeats a band: {list(selected)}")
    unknown = [name for name in selected if name not in available]
    if unknown:
        raise InputError(
            source, f"unknown band name(s) {unknown}; known bands are {list(available)}"
        )
    return [list(available).index(name) for name in selected]


def read_bands(params: Mapping[str, Any]) -> list[str]:
    """The ``bands`` param: the composite's band order, each of :data:`BAND_NAMES` once."""
    bands = value(params, "bands", list[str])
    if sorted(bands) != sorted(BAND_NAMES):
        raise InputError("params.yaml:bands", f"must name each of {list(BAND_NAMES)} once")
    return bands


def read_band_set(params: Mapping[str, Any], name: str) -> list[str]:
    """``band_sets.<name>``: known band names, none repeated."""
    bands = entry(params, "band_sets", name, list[str])
    band_indices(bands, source=f"params.yaml:band_sets.{name}")
    return bands
