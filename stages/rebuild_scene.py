"""DVC stage rebuild_scene: the scene of the georeferenced released tiles, every tile at its own
position (composite + inventory GeoTIFFs, streamed by rows of tiles; mmls/geo/rebuild.py), so that
the raster route (align_mask .. tile) can run on the paper's own data."""

import time

from mmls.core import paths
from mmls.core.config import load_params, section
from mmls.core.io import run_stage, write_json
from mmls.data.bands import read_bands
from mmls.data.store import read_splits
from mmls.geo.rebuild import rebuild_scene
from mmls.geo.tiling import TileConfig


def main() -> None:
    params = load_params()
    size = section(params, "tile", TileConfig).size_px
    splits = read_splits(paths.RELEASED_SPLITS)
    t0 = time.perf_counter()
    grid = rebuild_scene(
        splits,
        paths.RELEASED_TILES,
        paths.REBUILT_COMPOSITE,
        paths.REBUILT_INVENTORY,
        bands=read_bands(params),
        size=size,
    )
    record = {
        "width": grid.width,
        "height": grid.height,
        "n_tiles": len(splits),
        "n_labelled": int(splits["labelled"].sum()),
        "left": grid.bounds[0],
        "top": grid.bounds[3],
        "rebuild_seconds": round(time.perf_counter() - t0, 2),
    }
    write_json(paths.REBUILD_METRICS, record)
    print(f"rebuild_scene: {grid.width} x {grid.height} px from {len(splits)} tiles")


if __name__ == "__main__":
    run_stage(main)
