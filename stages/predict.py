"""DVC stage predict: map landslides over a whole scene (or one holdout region) with the
`model` (its first seed): sliding 128-px windows with blended overlaps -> predictions/scene/
{probability,mask}.tif and landslides.gpkg, scored against the aligned inventory
(metrics/predict.json; mmls/inference/scene.py)."""

from mmls.core import paths
from mmls.core.config import load_params, read_seeds, section, value
from mmls.core.io import atomic_dir, read_json, run_stage, write_json
from mmls.data.bands import read_bands
from mmls.geo.align import BinarizeConfig
from mmls.geo.raster import SceneConfig, check_composite
from mmls.inference.engine import row_source
from mmls.inference.predictor import Predictor
from mmls.inference.scene import PredictConfig, predict_scene
from mmls.inference.windows import region_window
from mmls.nn.device import resolve_device, set_threads


def main() -> None:
    params = load_params()
    cfg = section(params, "predict", PredictConfig)
    scene = section(params, "scene", SceneConfig)
    model, seed = value(params, "model", str), read_seeds(params)[0]
    set_threads(cfg.threads)
    device = resolve_device(cfg.device, "params.yaml:predict.device")
    bands = read_bands(params)
    grid = check_composite(scene.composite, bands)
    checkpoint = paths.model_dir(model, seed) / paths.CHECKPOINT_NAME
    predictor = Predictor.load(checkpoint, device)
    regions = read_json(paths.REGIONS_JSON) if cfg.region != "all" else None
    window = region_window(regions, cfg.region, grid)
    # Scored against the aligned inventory where it maps anything; a scene without inventory
    # (scene.inventory: null, a new region) is mapped and not scored.
    truth = paths.ALIGNED_INVENTORY if scene.inventory is not None else None
    with atomic_dir(paths.SCENE_PREDICTIONS) as tmp:
        result = predict_scene(
            predictor,
            scene.composite,
            tmp,
            band_idx=predictor.band_indices(bands),
            cfg=cfg,
            region=window,
            truth_path=truth,
            landslide_class=section(params, "binarize", BinarizeConfig).landslide_class,
            rows=row_source(str(checkpoint), str(device), cfg),
        )
    result.extra.update(
        model=model,
        seed=seed,
        region=cfg.region,
        threshold=cfg.threshold,
        overlap_px=cfg.overlap_px,
        object_match_rule=cfg.match_rule(),
        device=str(device),
        scheduler=cfg.scheduler,
        workers=cfg.workers if cfg.scheduler != "single" else 1,
    )
    record = result.record()
    write_json(paths.PREDICT_METRICS, record)
    scored = "not scored: scene.inventory is null (no inventory for this scene)"
    if record["miou"] is not None:
        scored = f"miou={record['miou']:.4f} obj_recall={record['obj_recall']:.3f}"
    print(
        f"predict {model} on {cfg.region}: {result.n_polygons} polygons, {scored}, "
        f"{record['mpx_per_s']} Mpx/s -> {paths.SCENE_PREDICTIONS}"
    )


if __name__ == "__main__":
    run_stage(main)
