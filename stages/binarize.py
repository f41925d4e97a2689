"""DVC stage binarize: landslide class -> 1, everything else (incl. nodata) -> 0 (Sec. 2.2)."""

from mmls import layout
from mmls.align import AlignConfig, BinarizeConfig, binarize_mask
from mmls.bands import read_bands
from mmls.config import load_params, section
from mmls.io import run_stage
from mmls.raster import SceneConfig, check_composite


def main() -> None:
    params = load_params()
    scene = section(params, "scene", SceneConfig)
    composite = check_composite(scene.composite, read_bands(params))
    fg, total = binarize_mask(
        composite,
        layout.ALIGNED_INVENTORY,
        layout.MASK,
        landslide_class=section(params, "binarize", BinarizeConfig).landslide_class,
        window_px=section(params, "align", AlignConfig).window_px,
    )
    print(f"binarize: {fg} landslide pixels of {total} ({fg / total:.2%}) -> {layout.MASK}")


if __name__ == "__main__":
    run_stage(main)
