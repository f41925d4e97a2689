"""DVC stage verify_rebuild: the raster route on the rebuilt scene (align_mask .. tile with the
paper's boundary) must regenerate every labelled released tile bit for bit, with the same name,
CRS and transform (metrics/rebuild_check.json: n_identical == n_released_labelled)."""

from mmls import layout
from mmls.errors import InputError
from mmls.io import read_csv, run_stage, write_json
from mmls.rebuild import compare_tiles
from mmls.store import read_splits


def main() -> None:
    released = read_splits(layout.RELEASED_SPLITS)
    regenerated = read_csv(layout.TILE_INDEX, ("region", "col", "row"))
    check = compare_tiles(released, layout.RELEASED_TILES, regenerated, layout.TILES)
    differing = check.pop("differing")
    if differing or check["n_identical"] != check["n_released_labelled"]:
        raise InputError(
            layout.TILES,
            f"the raster route does not regenerate the release: {check}; differing tiles "
            f"(first 5): {differing[:5]}",
        )
    write_json(layout.REBUILD_CHECK, check)
    print(f"verify_rebuild: {check}")


if __name__ == "__main__":
    run_stage(main)
