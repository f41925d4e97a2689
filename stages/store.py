"""DVC stage store: pack the tiles of every split into one memory-mappable array (Sec. 4.1)."""

from mmls.core import paths
from mmls.core.config import load_params, section
from mmls.core.io import run_stage
from mmls.data.bands import read_bands
from mmls.data.store import DatasetConfig, build_store
from mmls.geo.tiling import TileConfig


def main() -> None:
    params = load_params()
    dataset = section(params, "dataset", DatasetConfig)
    size = section(params, "tile", TileConfig).size_px
    meta = build_store(dataset.splits, dataset.tiles, paths.STORE, read_bands(params), size)
    print(f"store: {meta['counts']} tiles of {len(meta['bands'])} x {size}^2 -> {paths.STORE}")


if __name__ == "__main__":
    run_stage(main)
