"""DVC stage predict_tiles: for every unlabelled split of the release (images without masks),
one predicted mask per released tile, uint8 {0, 1} GeoTIFF under the released file name with
the tile's georeferencing: the form the MMLSv2 challenge takes. The `model`'s bundle with its own
decision, through the code of `mmls predict-tiles` (mmls/inference/tile_folder.py)."""

from mmls.core import paths
from mmls.core.config import load_params, section, value
from mmls.core.io import atomic_dir, run_stage, write_json
from mmls.data.releases import IngestConfig, unlabelled_folders
from mmls.inference.bundle import bundle_predictor, read_bundle
from mmls.inference.tile_folder import predict_tile_folder
from mmls.nn.device import resolve_device


def main() -> None:
    params = load_params()
    cfg = section(params, "ingest", IngestConfig)
    model = value(params, "model", str)
    bundle = read_bundle(paths.bundle_path(model))
    predictor = bundle_predictor(bundle, resolve_device("cpu"), str(paths.bundle_path(model)))
    folders = unlabelled_folders(cfg)
    counts = {}
    with atomic_dir(paths.TILE_PREDICTIONS) as tmp:
        for split, folder in folders.items():
            s = predict_tile_folder(
                predictor, bundle, folder, tmp / split, layout=cfg.layout, progress=False
            )
            counts[split] = {"n_tiles": s["n_tiles"], "fg_pixels": s["fg_pixels"]}
        (tmp / "README.txt").write_text(
            f"Predicted masks of {model} for the unlabelled splits "
            f"{sorted(folders) or 'none: every split of this release has masks'}; one uint8 "
            "GeoTIFF per released tile, under its released name.\n"
        )
    flat = {f"{s}_{k}": v for s, c in counts.items() for k, v in c.items()}
    write_json(paths.TILE_PREDICTIONS_METRICS, {"model": model, **flat, "n_splits": len(counts)})
    print(f"predict_tiles: {counts or 'no unlabelled split'} -> {paths.TILE_PREDICTIONS}")


if __name__ == "__main__":
    run_stage(main)
