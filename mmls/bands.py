"""Band names of the 7-band composite (MMLSv2 Sec. 1/2.1) and band-set selection."""

from __future__ import annotations

from collections.abc import Sequence

from mmls.errors import InputError

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
