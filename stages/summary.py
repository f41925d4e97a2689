"""DVC stage summary: the studied model's test and isolated-test mIoU (Tables 2-3), one small
file for `dvc exp show`."""

from mmls.core import paths
from mmls.core.config import load_params, value
from mmls.core.io import read_json, run_stage, write_json


def main() -> None:
    model = value(load_params(), "model", str)
    summary: dict = {"model": model}
    for split in ("test", "isolated_test"):
        row = read_json(paths.table_dir(split) / f"{model}.json")
        summary[f"{split}_miou"] = row["miou"]
        summary[f"{split}_iou_fg"] = row["iou_fg"]
    summary["miou_drop"] = summary["test_miou"] - summary["isolated_test_miou"]
    write_json(paths.SUMMARY, summary)
    print(f"summary: {summary}")


if __name__ == "__main__":
    run_stage(main)
