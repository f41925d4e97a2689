"""DVC stage predict: map landslides over a whole scene (or one holdout region) with the `model`.

Sliding 128-px windows with blended overlaps -> predictions/scene/{probability,mask}.tif and
landslides.gpkg; scored against data/aligned/mask.tif -> metrics/predict.json (mmls/predict.py).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from mmls.bands import band_indices  # noqa: E402
from mmls.io import atomic_dir, load_params, read_json, run_stage, write_json  # noqa: E402
from mmls.models import load_checkpoint, resolve_device  # noqa: E402
from mmls.predict import PredictConfig, predict_scene, region_window  # noqa: E402
from mmls.raster import check_composite  # noqa: E402

OUT = Path("predictions/scene")
METRICS = Path("metrics/predict.json")
REGIONS = Path("data/holdout/regions.json")
TRUTH = Path("data/aligned/mask.tif")


def main() -> None:
    params = load_params()
    cfg = PredictConfig.from_params(params)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    composite = params["scene"]["composite"]
    grid = check_composite(composite, params["bands"])
    checkpoint = Path("models") / params["model"] / "best.pt"
    model, meta = load_checkpoint(checkpoint, device)
    channels_last = bool(meta.get("train_config", {}).get("channels_last", False))
    if channels_last:
        model.to(memory_format=torch.channels_last)
    norm = meta["normalization"]
    band_idx = band_indices(meta["bands"], params["bands"], source=str(checkpoint))
    regions = read_json(REGIONS) if cfg.region != "all" else None
    window = region_window(regions, cfg.region, grid)
    with atomic_dir(OUT) as tmp:
        result = predict_scene(
            model,
            composite,
            tmp,
            band_idx=band_idx,
            mean=norm["mean"],
            std=norm["std"],
            cfg=cfg,
            device=device,
            region=window,
            truth_path=TRUTH if TRUTH.exists() else None,
            size=int(meta.get("tile_size", 128)),
            channels_last=channels_last,
        )
    result.extra.update(
        model=params["model"],
        region=cfg.region,
        threshold=cfg.threshold,
        overlap_px=cfg.overlap_px,
        object_match_rule=cfg.match_rule(),
        device=str(device),
    )
    record = result.record()
    write_json(METRICS, record)
    scored = "unscored (no inventory mask)"
    if record["miou"] is not None:
        scored = f"miou={record['miou']:.4f} obj_recall={record['obj_recall']:.3f}"
    print(
        f"predict {params['model']} on {cfg.region}: {result.n_polygons} polygons, {scored}, "
        f"{record['mpx_per_s']} Mpx/s -> {OUT}"
    )


if __name__ == "__main__":
    run_stage(main)
