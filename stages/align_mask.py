"""DVC stage align_mask: the inventory (raster or vector) onto the composite grid (Sec. 2.2)."""

from mmls.core import paths
from mmls.core.config import load_params, section
from mmls.core.errors import InputError
from mmls.core.io import run_stage
from mmls.data.bands import read_bands
from mmls.geo.align import AlignConfig, BinarizeConfig, align_inventory
from mmls.geo.raster import SceneConfig, check_composite


def main() -> None:
    params = load_params()
    scene = section(params, "scene", SceneConfig)
    align = section(params, "align", AlignConfig)
    if scene.inventory is None:
        raise InputError("params.yaml:scene.inventory", "is null: there is no inventory to align")
    composite = check_composite(scene.composite, read_bands(params))
    report = align_inventory(  # a partial coverage is reported as a warning on stderr
        composite,
        scene.inventory,
        paths.ALIGNED_INVENTORY,
        window_px=align.window_px,
        burn_value=section(params, "binarize", BinarizeConfig).landslide_class,
        class_column=align.class_column,
        class_value=align.class_value,
    )
    print(
        f"align_mask: {report.kind} inventory -> {paths.ALIGNED_INVENTORY} "
        f"({report.covered_fraction:.1%} covered)"
    )


if __name__ == "__main__":
    run_stage(main)
