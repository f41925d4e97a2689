"""Every name and path of the pipeline, in one place (dvc.yaml spells the same paths out;
``tests/test_pipeline_shape.py`` holds the two against each other).

Paths are relative to the pipeline's working directory (the folder holding its ``dvc.yaml``
and ``params.yaml``), so the same stage scripts serve every pipeline of the repository.
"""

from __future__ import annotations

import re
from pathlib import Path

#: The splits of the paper (Sec. 2.3-2.4): three base-region splits and the isolated test.
BASE_SPLITS: tuple[str, ...] = ("train", "val", "test")
SPLITS: tuple[str, ...] = (*BASE_SPLITS, "isolated_test")
REGIONS: tuple[str, ...] = ("base", "isolated")

# ------------------------------------------------------------------------------ data chain
SYNTHETIC_COMPOSITE = Path("data/synthetic/composite.tif")
SYNTHETIC_INVENTORY = Path("data/synthetic/inventory.tif")
ALIGNED_INVENTORY = Path("data/aligned/inventory.tif")
MASK = Path("data/aligned/mask.tif")
REGIONS_JSON = Path("data/holdout/regions.json")
TILES = Path("data/tiles")
TILE_INDEX = TILES / "index.csv"
SPLITS_CSV = Path("data/splits.csv")
STORE = Path("data/store")
#: A published release, ingested (stage `ingest`): its tiles and its own split table.
RELEASED_TILES = Path("data/released/tiles")
RELEASED_SPLITS = Path("data/released/splits.csv")
#: The scene rebuilt from georeferenced released tiles (stage `rebuild_scene`).
REBUILT_COMPOSITE = Path("data/scene/composite.tif")
REBUILT_INVENTORY = Path("data/scene/inventory.tif")
#: Cross-validation folds of the labelled patches (stage `cv_folds`).
FOLDS_CSV = Path("data/folds.csv")

# ------------------------------------------------------------------------------ metrics
METRICS = Path("metrics")
TILES_METRICS = METRICS / "tiles.json"
TABLE1 = METRICS / "table1.json"
FG_INTERVALS = METRICS / "fg_intervals.csv"
FIG2_PNG = METRICS / "fig2_fg_intervals.png"
LEAKAGE = METRICS / "leakage.json"
SUMMARY = METRICS / "summary.json"
STATISTICS = METRICS / "statistics.json"
INGEST_METRICS = METRICS / "ingest.json"
REBUILD_METRICS = METRICS / "rebuild.json"
REBUILD_CHECK = METRICS / "rebuild_check.json"
CV_FOLDS_METRICS = METRICS / "cv_folds.json"
CV_TABLE = METRICS / "cv_table"
TILE_PREDICTIONS_METRICS = METRICS / "tile_predictions.json"
#: Table 4 (band sets) as the statistics stage writes it: one JSON per band set.
TABLE4 = METRICS / "table4"
#: The paper's tables of model scores, by split (other scored splits: ``table_<split>``).
SPLIT_TABLES: dict[str, str] = {"test": "table2", "isolated_test": "table3"}

# ------------------------------------------------------------------------------ outputs
MODELS = Path("models")
PREDICTIONS = Path("predictions")
#: One predicted mask per released tile of each unlabelled split, under the released name.
TILE_PREDICTIONS = PREDICTIONS / "tiles"
REPORTS = Path("reports")
#: Trained models as self-describing bundles (mmls/inference/bundle.py), one per `models` entry.
BUNDLES = Path("bundles")
BUNDLE_SUFFIX = ".mmls.pt"
BUNDLE_METRICS = METRICS / "bundles"
#: Scene maps of the `map` stage, one folder per `map.scenes` entry, and their scores.
MAPS = Path("maps")
MAP_SCORES = METRICS / "map_scores"
#: The paper's tables: a file of the repository, whichever pipeline folder runs.
REFERENCE = Path(__file__).resolve().parents[2] / "reference" / "mmlsv2_tables.json"
#: Resumable training state: scratch outside every DVC output (git- and dvc-ignored), so that
#: stages keep DVC's run-cache and a killed run continues where it stopped.
RESUME = Path(".resume")

CHECKPOINT_NAME = "best.pt"
HELD_OUT = "heldout"  # file stem of a CV fold's held-out scores
ENSEMBLE = "ensemble"  # the seed folder name of a seed ensemble's results
PATCHES_SUFFIX = ".patches.csv"
MASKS_SUFFIX = ".npz"


def table_dir(split: str) -> Path:
    """One JSON per model of its scores on ``split`` (Table 2 = test, Table 3 = isolated)."""
    return METRICS / SPLIT_TABLES.get(split, f"table_{split}")


def seed_dir(seed: int) -> str:
    return f"seed{int(seed)}"


def run_name(model: str, seed: int, ablation: str | None = None) -> str:
    """The DVC stage key of one training: ``unet-42`` or ``ablation-rgb-42``."""
    return f"ablation-{ablation}-{int(seed)}" if ablation else f"{model}-{int(seed)}"


def model_dir(model: str, seed: int) -> Path:
    return MODELS / model / seed_dir(seed)


def ablation_dir(band_set: str, seed: int) -> Path:
    return MODELS / "ablation" / band_set / seed_dir(seed)


def train_log_dir(model: str, seed: int) -> Path:
    """DVCLive folder of one training (``metrics.json`` + ``plots/metrics/*.tsv``)."""
    return METRICS / "train" / model / seed_dir(seed)


def ablation_log_dir(band_set: str, seed: int) -> Path:
    return METRICS / "ablation_train" / band_set / seed_dir(seed)


def eval_metrics_dir(model: str, seed: int) -> Path:
    """``<split>.json`` per scored split of one trained model."""
    return METRICS / "eval" / model / seed_dir(seed)


def eval_predictions_dir(model: str, seed: int) -> Path:
    """``<split>.patches.csv`` (per-patch counts) and ``<split>.npz`` (masks) of one model."""
    return PREDICTIONS / "eval" / model / seed_dir(seed)


def ablation_metrics(band_set: str, seed: int) -> Path:
    return METRICS / "ablation" / band_set / f"{seed_dir(seed)}.json"


def ablation_predictions_dir(band_set: str, seed: int) -> Path:
    return PREDICTIONS / "ablation" / band_set / seed_dir(seed)


def cv_dir(model: str, fold: int, seed: int) -> Path:
    return MODELS / "cv" / model / f"fold{int(fold)}" / seed_dir(seed)


def cv_log_dir(model: str, fold: int, seed: int) -> Path:
    return METRICS / "cv_train" / model / f"fold{int(fold)}" / seed_dir(seed)


def cv_metrics(model: str, fold: int, seed: int) -> Path:
    """The held-out fold's scores of one fold training."""
    return METRICS / "cv" / model / f"fold{int(fold)}" / f"{seed_dir(seed)}.json"


def cv_predictions_dir(model: str, fold: int, seed: int) -> Path:
    """``heldout.patches.csv`` / ``heldout.npz`` of one fold training."""
    return PREDICTIONS / "cv" / model / f"fold{int(fold)}" / seed_dir(seed)


def cv_ensemble_metrics(name: str, fold: int) -> Path:
    """The held-out fold's scores of a seed ensemble (one per fold)."""
    return METRICS / "cv" / name / f"fold{int(fold)}" / f"{ENSEMBLE}.json"


def cv_ensemble_predictions_dir(name: str, fold: int) -> Path:
    return PREDICTIONS / "cv" / name / f"fold{int(fold)}" / ENSEMBLE


def cv_run_name(model: str, fold: int, seed: int) -> str:
    return f"cv-{model}-{int(fold)}-{int(seed)}"


def resume_path(run: str) -> Path:
    return RESUME / f"{run}.pt"


# ------------------------------------------------------------------------------ tile names
TILE_NAME = re.compile(r"^col(?P<col>\d{5})_row(?P<row>\d{5})\.tif$")


def tile_name(col: int, row: int) -> str:
    """File name of the patch (col, row) of a region's grid (Sec. 2.3), as MMLSv2 names its
    released tiles: ``col00012_row00003.tif``."""
    return f"col{int(col):05d}_row{int(row):05d}.tif"


def parse_tile_name(name: str) -> tuple[int, int]:
    """(col, row) of a :func:`tile_name`."""
    m = TILE_NAME.match(name)
    if m is None:
        raise ValueError(f"{name!r} is not a tile name like {tile_name(0, 0)!r}")
    return int(m.group("col")), int(m.group("row"))


def tile_paths(tiles_dir: Path | str, region: str, col: int, row: int) -> tuple[Path, Path]:
    """Image and mask GeoTIFF of one patch: ``<tiles>/<region>/{images,masks}/<name>``."""
    base = Path(tiles_dir) / str(region)
    name = tile_name(col, row)
    return base / "images" / name, base / "masks" / name


def patch_key(region: str, col: int, row: int) -> str:
    """Key of one patch's mask in a predictions ``.npz``: ``c<col>_r<row>_<region>``."""
    return f"c{int(col)}_r{int(row)}_{region}"


def bundle_path(model: str) -> Path:
    """The bundle of ``models.<model>`` (its first seed): ``bundles/<model>.mmls.pt``."""
    return BUNDLES / f"{model}{BUNDLE_SUFFIX}"


def map_dir(scene: str) -> Path:
    """``probability.tif``, ``mask.tif``, ``landslides.gpkg``, ``summary.json``, quick look."""
    return MAPS / scene
