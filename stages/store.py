"""DVC stage store: pack the tiles of every split into memory-mappable .npy arrays (Sec. 4.1)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmls.io import load_params, run_stage  # noqa: E402
from mmls.store import build_store  # noqa: E402

OUT = Path("data/store")


def main() -> None:
    params = load_params()
    dataset = params["dataset"]  # data/tiles + data/splits.csv, or an ingested release
    meta = build_store(
        dataset["splits"], dataset["tiles"], OUT, params["bands"], int(params["tile"]["size"])
    )
    print(f"store: {meta['counts']} tiles of {len(meta['bands'])} x {meta['size']}^2 -> {OUT}")


if __name__ == "__main__":
    run_stage(main)
