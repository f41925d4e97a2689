"""DVC stage plot_splits: Fig. 2 as a PNG from metrics/fg_intervals.csv."""

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmls.figures import plot_fg_intervals  # noqa: E402
from mmls.io import run_stage  # noqa: E402

OUT = Path("metrics/fig2_fg_intervals.png")


def main() -> None:
    plot_fg_intervals(pd.read_csv("metrics/fg_intervals.csv"), OUT)
    print(f"plot_splits: -> {OUT}")


if __name__ == "__main__":
    run_stage(main)
