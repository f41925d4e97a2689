"""Training (MMLSv2 Sec. 4.1): it learns, selects on val, reloads exactly, resumes bitwise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from mmls.errors import InputError
from mmls.evaluation import EvalConfig, dataset_for, evaluate, evaluate_checkpoint
from mmls.metrics import Confusion, scores
from mmls.models import build_model, load_checkpoint
from mmls.store import load_split, write_synthetic_store
from mmls.training import HISTORY_COLUMNS, TrainConfig, train_model

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
# PSPNet is the fastest of the six and has dropout, so a resume must restore the global torch
# RNG as well as the shuffle/augmentation generator to be bitwise identical.
PSPNET = {"arch": "PSPNet", "encoder_name": "resnet34", "encoder_weights": None}
UNET = {"arch": "Unet", "encoder_name": "resnet34", "encoder_weights": None}
DEEPLABV3 = {"arch": "DeepLabV3", "encoder_name": "resnet34", "encoder_weights": None}


class Killed(Exception):
    """Stands in for a kill arriving right after an epoch's state was saved."""


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("store") / "store"
    write_synthetic_store(path, {"train": 10, "val": 4, "test": 4}, size=32, seed=1)
    return path


def cfg(**kw: object) -> TrainConfig:
    base = {"epochs": 3, "batch_size": 4, "threads": 1, "lr_step_size": 2}
    return TrainConfig(**{**base, **kw})


def weights(path: Path, key: str = "state_dict") -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)[key]


def assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def without_seconds(path: Path) -> list[str]:
    rows = path.read_text().splitlines()
    return [",".join(r.split(",")[:-1]) for r in rows]  # `seconds` is the last column


@pytest.fixture(scope="module")
def uninterrupted(tiny_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("a")
    torch.set_num_threads(1)
    train_model("pspnet", PSPNET, cfg(), tiny_store, out, progress=False)
    return out


def test_outputs_and_history(uninterrupted: Path) -> None:
    header, *rows = (uninterrupted / "history.csv").read_text().splitlines()
    assert header.split(",") == list(HISTORY_COLUMNS)
    assert len(rows) == 3
    lrs = [float(r.split(",")[5]) for r in rows]
    assert lrs == pytest.approx([1e-3, 1e-3, 1e-4])  # StepLR, step 2, gamma 0.1
    payload = torch.load(uninterrupted / "best.pt", weights_only=True)
    assert payload["bands"] == list(payload["train_config"]["bands"])
    assert payload["model_name"] == "pspnet" and payload["model_config"] == PSPNET
    best_row = rows[payload["epoch"] - 1].split(",")
    assert float(best_row[3]) == payload["val_miou"] == max(float(r.split(",")[3]) for r in rows)


def test_resume_after_kill_is_bitwise_identical(
    tiny_store: Path, uninterrupted: Path, tmp_path: Path
) -> None:
    def kill_after_first(epoch: int) -> None:
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train_model("pspnet", PSPNET, cfg(), tiny_store, tmp_path, on_epoch_end=kill_after_first,
                    progress=False)  # fmt: skip
    assert torch.load(tmp_path / "resume.pt", weights_only=True)["epoch"] == 1
    record = train_model("pspnet", PSPNET, cfg(), tiny_store, tmp_path, progress=False)
    assert record["resumed_from_epoch"] == 1
    assert_bitwise_equal(weights(tmp_path / "resume.pt", "model"),
                         weights(uninterrupted / "resume.pt", "model"))  # fmt: skip
    assert_bitwise_equal(weights(tmp_path / "best.pt"), weights(uninterrupted / "best.pt"))
    a = torch.load(tmp_path / "resume.pt", weights_only=True)["optimizer"]["state"]
    b = torch.load(uninterrupted / "resume.pt", weights_only=True)["optimizer"]["state"]
    for k in a:
        assert_bitwise_equal(a[k], b[k])
    assert without_seconds(tmp_path / "history.csv") == without_seconds(
        uninterrupted / "history.csv"
    )


def test_raising_epochs_extends_a_finished_run(
    tiny_store: Path, uninterrupted: Path, tmp_path: Path
) -> None:
    train_model("pspnet", PSPNET, cfg(epochs=2), tiny_store, tmp_path, progress=False)
    record = train_model("pspnet", PSPNET, cfg(epochs=3), tiny_store, tmp_path, progress=False)
    assert record["resumed_from_epoch"] == 2
    assert_bitwise_equal(weights(tmp_path / "best.pt"), weights(uninterrupted / "best.pt"))


def test_stale_state_is_ignored(tiny_store: Path, tmp_path: Path) -> None:
    train_model("pspnet", PSPNET, cfg(epochs=1), tiny_store, tmp_path, progress=False)
    record = train_model("pspnet", PSPNET, cfg(epochs=1, lr=0.01), tiny_store, tmp_path,
                         progress=False)  # fmt: skip
    assert record["resumed_from_epoch"] == 0
    # A finished run whose outputs were deleted (as DVC does) rebuilds them from the state.
    (tmp_path / "best.pt").unlink()
    record = train_model("pspnet", PSPNET, cfg(epochs=1, lr=0.01), tiny_store, tmp_path,
                         progress=False)  # fmt: skip
    assert record["resumed_from_epoch"] == 1 and (tmp_path / "best.pt").is_file()


def test_reloaded_checkpoint_reproduces_its_numbers(tiny_store: Path, uninterrupted: Path) -> None:
    model, meta = load_checkpoint(uninterrupted / "best.pt", CPU)
    val = evaluate(model, dataset_for(load_split(tiny_store, "val"), meta), CPU, batch_size=3)
    assert scores(val.confusion)["miou"] == meta["val_miou"]  # exactly: same pixel counts
    ecfg = EvalConfig(threads=1, latency_warmup=1, latency_repeats=2)
    first = evaluate_checkpoint(uninterrupted / "best.pt", tiny_store, "test", CPU, ecfg, 0.1)
    again = evaluate_checkpoint(uninterrupted / "best.pt", tiny_store, "test", CPU, ecfg, 0.1)
    for key in ("tp", "fp", "fn", "tn", "miou", "iou_fg", "precision", "recall", "f1"):
        assert first[key] == again[key]
    assert first["tp"] + first["fp"] + first["fn"] + first["tn"] == 4 * 32 * 32
    assert first["n_images"] == 4 and first["latency_s"] > 0 and first["train_time_h"] == 0.1


def test_empty_split_is_input_error(tiny_store: Path, uninterrupted: Path) -> None:
    ecfg = EvalConfig(threads=1)
    with pytest.raises(InputError, match="no tiles"):
        evaluate_checkpoint(uninterrupted / "best.pt", tiny_store, "isolated_test", CPU, ecfg, 0)


def test_deeplabv3_survives_a_last_batch_of_one(tmp_path: Path) -> None:
    model = build_model("deeplabv3", DEEPLABV3, in_channels=7).train()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        model(torch.randn(1, 7, 32, 32))  # the failure the trainer must avoid
    write_synthetic_store(tmp_path / "s", {"train": 5, "val": 2}, size=32)
    # 5 tiles in batches of 2 would leave a batch of one: it joins the previous batch.
    record = train_model("deeplabv3", DEEPLABV3, cfg(epochs=1, batch_size=2), tmp_path / "s",
                         tmp_path / "m", progress=False)  # fmt: skip
    assert record["n_train"] == 5 and (tmp_path / "m" / "best.pt").is_file()


def test_train_config_validation() -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["seed"] = 7
    c = TrainConfig.from_params(params)
    assert c.seed == 7 and c.bands == ("red", "green", "blue", "dem", "slope",
                                       "thermal_inertia", "grayscale")  # fmt: skip
    assert TrainConfig.from_params(params, bands=["red", "dem"]).bands == ("red", "dem")
    as_text = {**params, "train": {**params["train"], "lr": "1e-3"}}  # YAML: `1e-3` is a str
    assert TrainConfig.from_params(as_text).lr == 0.001
    with pytest.raises(InputError, match="unknown band"):
        TrainConfig.from_params(params, bands=["red", "ndvi"])
    with pytest.raises(InputError, match="batch_size"):
        TrainConfig.from_params({**params, "train": {**params["train"], "batch_size": 1}})
    with pytest.raises(InputError, match="unknown train key"):
        TrainConfig.from_params({**params, "train": {**params["train"], "epoch": 3}})


def test_band_ablation_rejects_unknown_band_set(tmp_path: Path) -> None:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["model"] = "unet"
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    proc = subprocess.run(
        [sys.executable, str(ROOT / "stages" / "band_ablation.py"), "--band-set", "ndvi_only"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "unknown band set 'ndvi_only'" in proc.stderr


@pytest.mark.slow
def test_short_training_learns(tmp_path: Path) -> None:
    """U-Net, 8 epochs on 24 learnable 64x64 tiles (15-30 s on one shared thread).

    Landslide pixels carry +1.5 sigma in two of seven bands (DEM, slope). Landslide discs cover
    about 20-25% of the pixels, so the all-background predictor scores IoU_FG = 0 and
    IoU_BG ~ 0.78, mIoU ~ 0.39; an untrained network is no better (we measure ~0.2). A
    pixel-wise linear threshold on the two informative bands alone would err on
    Phi(-1.5 * sqrt(2) / 2) ~ 14% of pixels (mIoU ~ 0.7); a CNN pools the neighbourhood and
    does better. Requiring mIoU > 0.7 AND a margin of 0.25 over both baselines therefore
    demands real learning while leaving room for seed-to-seed noise (we measure 0.94-0.95).
    """
    store = tmp_path / "store"
    write_synthetic_store(store, {"train": 24, "val": 8, "test": 16}, size=64, seed=3)
    c = cfg(epochs=8, batch_size=8, lr_step_size=30)
    train_model("unet", UNET, c, store, tmp_path / "m", progress=False)
    ecfg = EvalConfig(threads=1, latency_warmup=0, latency_repeats=1)
    learned = evaluate_checkpoint(tmp_path / "m" / "best.pt", store, "test", CPU, ecfg, None)

    test = load_split(store, "test")
    fg = int(test.masks.sum())
    all_background = scores(Confusion(tp=0, fp=0, fn=fg, tn=test.masks.size - fg))["miou"]
    torch.manual_seed(c.seed)
    _, meta = load_checkpoint(tmp_path / "m" / "best.pt", CPU)
    untrained = build_model("unet", UNET, in_channels=7)
    random_w = scores(evaluate(untrained, dataset_for(test, meta), CPU, 8).confusion)["miou"]

    summary = json.dumps({"learned": learned["miou"], "bg": all_background, "random": random_w})
    assert learned["miou"] > 0.7, summary
    assert learned["miou"] > all_background + 0.25, summary
    assert learned["miou"] > random_w + 0.25, summary
