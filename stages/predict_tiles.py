"""DVC stage predict_tiles: for every unlabelled split of the dataset (released without masks),
one predicted mask per released tile, uint8 {0, 1} GeoTIFF under the released file name with
the tile's georeferencing: the form the MMLSv2 challenge takes (mmls/inference/tiles.py). Uses the
`model` under study (its first seed) and its recipe's test-time augmentation and threshold."""

from mmls.core import paths
from mmls.core.config import load_params, read_seeds, section, value
from mmls.core.io import atomic_dir, run_stage, write_json
from mmls.data.store import DatasetConfig, load_store
from mmls.evaluation.config import EvalConfig
from mmls.evaluation.scoring import decide_on_val, open_predictor
from mmls.inference.tiles import write_tile_masks
from mmls.nn.models import model_section
from mmls.nn.recipe import RecipeConfig


def main() -> None:
    params = load_params()
    model, seed = value(params, "model", str), read_seeds(params)[0]
    cfg = section(params, "eval", EvalConfig)
    tiles = section(params, "dataset", DatasetConfig).tiles
    store = load_store(paths.STORE)
    predictor = open_predictor(paths.model_dir(model, seed) / paths.CHECKPOINT_NAME, cfg)
    recipe = model_section(params, model, "recipe", RecipeConfig)
    decision = decide_on_val(recipe, predictor, store, cfg)
    unlabelled = sorted(set(store.patches.loc[~store.patches["labelled"], "split"]))
    counts = {}
    with atomic_dir(paths.TILE_PREDICTIONS) as tmp:
        for split in unlabelled:
            (tmp / split).mkdir()
            written = write_tile_masks(
                predictor, store, store.rows(split), tiles, tmp / split, cfg.batch_size, decision
            )
            counts[split] = {"n_tiles": len(written), "fg_pixels": int(written["fg_pixels"].sum())}
        (tmp / "README.txt").write_text(
            f"Predicted masks of {model} (seed {seed}) for the unlabelled splits "
            f"{unlabelled or 'none: every split of this dataset has masks'}; one uint8 GeoTIFF "
            "per released tile, under its released name.\n"
        )
    write_json(
        paths.TILE_PREDICTIONS_METRICS,
        {
            "model": model,
            "seed": seed,
            **{f"{s}_{k}": v for s, c in counts.items() for k, v in c.items()},
            "n_splits": len(counts),
        },
    )
    print(f"predict_tiles: {counts or 'no unlabelled split'} -> {paths.TILE_PREDICTIONS}")


if __name__ == "__main__":
    run_stage(main)
