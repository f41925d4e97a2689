"""DVC stage binarize: landslide class -> 1, everything else (incl. nodata) -> 0 (Sec. 2.2)."""

from mmls.core import paths
from mmls.core.config import load_params, section
from mmls.core.io import run_stage
from mmls.data.bands import read_bands
from mmls.geo.align import AlignConfig, BinarizeConfig, binarize_mask
from mmls.geo.raster import SceneConfig, check_composite


def main() -> None:
    params = load_params()
    scene = section(params, "scene", SceneConfig)
    composite = check_composite(scene.composite, read_bands(params))
    fg, total = binarize_mask(
        composite,
        paths.ALIGNED_INVENTORY,
        paths.MASK,
        landslide_class=section(params, "binarize", BinarizeConfig).landslide_class,
        window_px=section(params, "align", AlignConfig).window_px,
    )
    print(f"binarize: {fg} landslide pixels of {total} ({fg / total:.2%}) -> {paths.MASK}")


if __name__ == "__main__":
    run_stage(main)
