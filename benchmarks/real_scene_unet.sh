#!/usr/bin/env bash
# U-Net on a real scene (default: ../shared/data/mmlsv1-west): the data chain, store, train@unet
# and its test / isolated_test evaluation, in a scratch clone of this repository (not a test).
#   bash benchmarks/real_scene_unet.sh [EPOCHS=10] [LR_STEP=8]
set -euo pipefail
EPOCHS=${1:-10}
LR_STEP=${2:-8}
REPO=$(cd "$(dirname "$0")/.." && pwd)
SCENE=${MMLS_REAL_SCENE:-$(cd "$REPO/.." && pwd)/shared/data/mmlsv1-west}
PY="$REPO/.venv/bin/python"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/real_unet.XXXXXX")
git clone -q "$REPO" "$WORK" && cd "$WORK"
SCENE="$SCENE" EPOCHS="$EPOCHS" LR_STEP="$LR_STEP" "$PY" - <<'PYEOF'
import os
import yaml
p = yaml.safe_load(open("params.yaml"))
scene = os.environ["SCENE"]
p["scene"] = {"composite": f"{scene}/composite.tif", "inventory": f"{scene}/inventory.tif"}
p["holdout"].update(boundary_x=-4332375.801864497, isolated_side="east", gap_px=0)
p["train"].update(epochs=int(os.environ["EPOCHS"]), lr_step_size=int(os.environ["LR_STEP"]))
yaml.safe_dump(p, open("params.yaml", "w"), sort_keys=False)
PYEOF
for stage in align_mask binarize geo_holdout tile block_split store; do "$PY" "stages/$stage.py"; done
"$PY" stages/train.py --model unet 2>/dev/null
"$PY" - <<'PYEOF'
import json
from pathlib import Path
from mmls.evaluation import EvalConfig, evaluate_checkpoint
from mmls.io import load_params, read_json
cfg = EvalConfig.from_params(load_params())
device = cfg.setup()
train = read_json("metrics/train/unet.json")
print("train:", json.dumps(train))
for split in ("test", "isolated_test"):
    record = evaluate_checkpoint(
        Path("models/unet/best.pt"), Path("data/store"), split, device, cfg, train["train_time_h"]
    )
    print(split, json.dumps(record))
PYEOF
echo "scratch clone: $WORK"
