"""DVC stage plot_splits: Fig. 2 as a PNG from metrics/fg_intervals.csv."""

from mmls import layout
from mmls.figures import plot_fg_intervals
from mmls.io import read_csv, run_stage


def main() -> None:
    plot_fg_intervals(read_csv(layout.FG_INTERVALS, ("interval",)), layout.FIG2_PNG)
    print(f"plot_splits: -> {layout.FIG2_PNG}")


if __name__ == "__main__":
    run_stage(main)
