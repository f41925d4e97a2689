"""DVC stage verify_rebuild: the raster route on the rebuilt scene (align_mask .. tile with the
paper's boundary) must regenerate every labelled released tile bit for bit, with the same name,
CRS and transform (metrics/rebuild_check.json: n_identical == n_released_labelled)."""

from mmls.core import paths
from mmls.core.errors import InputError
from mmls.core.io import read_csv, run_stage, write_json
from mmls.data.store import read_splits
from mmls.geo.rebuild import compare_tiles


def main() -> None:
    released = read_splits(paths.RELEASED_SPLITS)
    regenerated = read_csv(paths.TILE_INDEX, ("region", "col", "row"))
    check = compare_tiles(released, paths.RELEASED_TILES, regenerated, paths.TILES)
    differing = check.pop("differing")
    if differing or check["n_identical"] != check["n_released_labelled"]:
        raise InputError(
            paths.TILES,
            f"the raster route does not regenerate the release: {check}; differing tiles "
            f"(first 5): {differing[:5]}",
        )
    write_json(paths.REBUILD_CHECK, check)
    print(f"verify_rebuild: {check}")


if __name__ == "__main__":
    run_stage(main)
