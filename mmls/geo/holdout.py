"""Raster-level geographic holdout at a fixed east-west boundary (MMLSv2 Sec. 2.3)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Literal

from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds

from mmls.core.config import ParamError, Section
from mmls.core.errors import InputError
from mmls.geo.raster import Grid

REGIONS = ("base", "isolated")
SIDES = ("east", "west")


class HoldoutConfig(Section):
    """The ``holdout`` params section (Sec. 2.3)."""

    boundary_x: float  # east-west boundary, CRS units (snapped to the nearest pixel edge)
    isolated_side: Literal["east", "west"]
    gap_px: int  # not in the paper (0): a strip on the base side belongs to neither region

    def check(self) -> None:
        if self.gap_px < 0:
            raise ParamError("gap_px", "must be >= 0")


@dataclass(frozen=True)
class Holdout:
    boundary_x: float  # requested, CRS units
    boundary_col: int  # pixel column of the boundary edge (snapped)
    isolated_side: str
    gap_px: int  # strip left out on the base side of the boundary
    windows: dict[str, Window]  # region -> pixel window in the composite

    def to_json(self, grid: Grid) -> dict[str, Any]:
        regions = {}
        for name, w in self.windows.items():
            regions[name] = {
                "col_off": int(w.col_off),
                "row_off": int(w.row_off),
                "width": int(w.width),
                "height": int(w.height),
                "bounds": list(window_bounds(w, grid.transform)),
            }
        return {
            "boundary_x": self.boundary_x,
            "boundary_x_snapped": grid.transform.c + self.boundary_col * grid.transform.a,
            "boundary_col": self.boundary_col,
            "isolated_side": self.isolated_side,
            "gap_px": self.gap_px,
            "regions": regions,
        }


def split_regions(grid: Grid, boundary_x: float, isolated_side: str, gap_px: int = 0) -> Holdout:
    """Split the grid at ``boundary_x`` (CRS units) into base and isolated pixel windows.

    The boundary is snapped to the nearest pixel edge (with a warning when it moves); a
    boundary outside the raster, or one that leaves the base region empty, is an error.
    ``gap_px`` (not in the paper, which uses 0) leaves a strip of that width on the base side
    of the boundary out of both regions, so that no base patch touches an isolated one.

    A boundary ON the raster's edge leaves the isolated region empty (width 0), with a warning:
    a scene rebuilt from MMLSv2's train+val tiles starts exactly at the paper's boundary, the
    isolated region lying west of it. The data chain then goes on with the base region alone
    and ``isolated_test`` stays empty.
    """
    if isolated_side not in SIDES:
        raise InputError(
            "params.yaml:holdout.isolated_side", f"{isolated_side!r} must be one of {SIDES}"
        )
    left, _, right, _ = grid.bounds
    tolerance = 1e-6 * abs(grid.transform.a)
    if not left - tolerance <= boundary_x <= right + tolerance:
        raise InputError(
            "params.yaml:holdout.boundary_x",
            f"{boundary_x} lies outside the composite's x range ({left}, {right})",
        )
    exact_col = (boundary_x - grid.transform.c) / grid.transform.a
    col = round(exact_col)
    if abs(exact_col - col) > 1e-6:
        warnings.warn(
            f"holdout.boundary_x={boundary_x} is not on a pixel edge; snapped to column {col} "
            f"(x={grid.transform.c + col * grid.transform.a})",
            stacklevel=2,
        )
    if gap_px < 0:
        raise InputError("params.yaml:holdout.gap_px", f"{gap_px} must be >= 0")
    if isolated_side == "east":
        base = Window(0, 0, col - gap_px, grid.height)
        isolated = Window(col, 0, grid.width - col, grid.height)
    else:
        base = Window(col + gap_px, 0, grid.width - col - gap_px, grid.height)
        isolated = Window(0, 0, col, grid.height)
    if base.width <= 0:
        raise InputError(
            "params.yaml:holdout",
            f"boundary {boundary_x} and gap {gap_px} px leave the base region without pixels",
        )
    if isolated.width == 0:
        warnings.warn(
            f"holdout.boundary_x={boundary_x} lies on the composite's {isolated_side} edge: "
            "the isolated region is empty, isolated_test will hold no patch",
            stacklevel=2,
        )
    windows = {"base": base, "isolated": isolated}
    return Holdout(float(boundary_x), col, isolated_side, gap_px, windows)


def windows_from_json(doc: dict[str, Any]) -> dict[str, Window]:
    return {
        name: Window(r["col_off"], r["row_off"], r["width"], r["height"])
        for name, r in doc["regions"].items()
    }
