"""Entry point ingest: released tile folders (MMLSv1 / MMLSv2) -> data/released/{tiles,splits.csv}.

An alternative to the tile + block_split stages that keeps the released split as given, so that
store / train / eval run unchanged on a published dataset (mmls/ingest.py).
"""

from pathlib import Path

from mmls.config import load_params
from mmls.ingest import IngestConfig, ingest_release, summary
from mmls.io import atomic_dir, atomic_path, run_stage, write_json

TILES = Path("data/released/tiles")
SPLITS = Path("data/released/splits.csv")
METRICS = Path("metrics/ingest.json")


def main() -> None:
    params = load_params()
    cfg = IngestConfig.from_params(params.get("ingest"))
    size = int(params.get("tile", {}).get("size", 128))
    with atomic_dir(TILES) as tmp:
        splits = ingest_release(cfg, tmp, bands=params["bands"], size=size)
        with atomic_path(SPLITS) as tmp_csv:
            splits.to_csv(tmp_csv, index=False)
    counts = summary(splits)
    write_json(METRICS, {"layout": cfg.layout, "root": cfg.root, **counts})
    print(
        f"ingest {cfg.layout} from {cfg.root}: "
        + ", ".join(f"{s}: {c['n_images']}" for s, c in counts.items())
        + f" -> {TILES}, {SPLITS}"
    )


if __name__ == "__main__":
    run_stage(main)
