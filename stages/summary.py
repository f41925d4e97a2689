"""DVC stage summary: the studied model's test and isolated-test mIoU (MMLSv2 Tables 2-3)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmls.evaluation import summarize  # noqa: E402
from mmls.io import load_params, run_stage, write_json  # noqa: E402


def main() -> None:
    params = load_params()
    summary = summarize(params["model"], Path("metrics/eval"))
    write_json("metrics/summary.json", summary)
    print(f"summary: {summary}")


if __name__ == "__main__":
    run_stage(main)
