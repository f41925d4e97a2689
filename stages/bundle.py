"""DVC stage bundle@<model>: `models.<model>` (its first seed) as a self-describing model bundle,
bundles/<model>.mmls.pt: weights, input bands, value convention, decision, pixel size, scores
and provenance (mmls/evaluation/bundling.py, mmls/inference/bundle.py). `mmls info` prints it;
`mmls map` applies it to any scene."""

import argparse

from mmls.core import paths
from mmls.core.config import entries, load_params, read_seeds, section, value
from mmls.core.errors import InputError
from mmls.core.io import run_stage, write_json
from mmls.data.store import DatasetConfig, load_store
from mmls.evaluation.bundling import build_bundle, bundle_metrics
from mmls.evaluation.config import EvalConfig
from mmls.inference.bundle import write_bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True, help="a key of the `models` params section")
    model = parser.parse_args().model
    params = load_params()
    if model not in entries(params, "models"):
        raise InputError("params.yaml:models", f"has no entry {model!r}")
    bundle = build_bundle(
        params,
        model,
        read_seeds(params)[0],
        load_store(paths.STORE),
        section(params, "dataset", DatasetConfig).tiles,
        section(params, "eval", EvalConfig).splits,
        recommended=value(params, "model", str) == model,
    )
    write_bundle(paths.bundle_path(model), bundle)
    write_json(paths.BUNDLE_METRICS / f"{model}.json", bundle_metrics(bundle))
    print(f"bundle {model}: {len(bundle.scores)} scores -> {paths.bundle_path(model)}")


if __name__ == "__main__":
    run_stage(main)
