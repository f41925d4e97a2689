"""DVC stage plot_splits: Fig. 2 as a PNG from metrics/fg_intervals.csv."""

from mmls.core import paths
from mmls.core.io import read_csv, run_stage
from mmls.report.figures import plot_fg_intervals


def main() -> None:
    plot_fg_intervals(read_csv(paths.FG_INTERVALS, ("interval",)), paths.FIG2_PNG)
    print(f"plot_splits: -> {paths.FIG2_PNG}")


if __name__ == "__main__":
    run_stage(main)
