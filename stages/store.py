"""DVC stage store: pack the tiles of every split into one memory-mappable array (Sec. 4.1)."""

from mmls import layout
from mmls.bands import read_bands
from mmls.config import load_params, section
from mmls.io import run_stage
from mmls.store import DatasetConfig, build_store
from mmls.tiling import TileConfig


def main() -> None:
    params = load_params()
    dataset = section(params, "dataset", DatasetConfig)
    size = section(params, "tile", TileConfig).size
    meta = build_store(dataset.splits, dataset.tiles, layout.STORE, read_bands(params), size)
    print(f"store: {meta['counts']} tiles of {len(meta['bands'])} x {size}^2 -> {layout.STORE}")


if __name__ == "__main__":
    run_stage(main)
