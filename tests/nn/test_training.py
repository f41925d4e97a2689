"""Training (MMLSv2 Sec. 4.1): it learns, selects on val, reloads exactly, resumes bitwise."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from mmls.core.errors import InputError
from mmls.data.store import Store, load_store
from mmls.evaluation.config import EvalConfig
from mmls.evaluation.scoring import score
from mmls.inference.predictor import Predictor
from mmls.metrics.confusion import Confusion, scores
from mmls.nn.models import build_model
from mmls.nn.tracking import METRICS_FILE, read_history
from mmls.nn.training import Run, _steps_per_epoch, read_run
from mmls.nn.validation import evaluate
from tests.configs import PARAMS, ROOT, config
from tests.stores import write_synthetic_store
from tests.tiny_training import fit_in, recipe, train_config
from tests.tiny_training import tiny_store as make_tiny_store

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
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return make_tiny_store(tmp_path_factory.mktemp("store") / "store")


cfg = train_config


def eval_cfg(**kw: object) -> EvalConfig:
    return config(
        "eval", EvalConfig, **{"threads": 1, "latency_warmup": 1, "latency_repeats": 2, **kw}
    )


def train(store: Store, out: Path, model_cfg: dict = PSPNET, seed: int = 42, **kw: object) -> dict:
    """``fit`` with the outputs under ``out``; ``on_epoch_end`` and ``recipe`` pass through."""
    hook = kw.pop("on_epoch_end", None)
    rec = kw.pop("recipe", None) or recipe()
    run = Run(str(model_cfg["arch"]).lower(), model_cfg, cfg(**kw), rec, seed)
    return fit_in(out, store, run, hook)


def keep_last_state(out: Path, last: int):
    """An epoch hook that copies the resumable state of the last epoch before fit deletes it."""

    def hook(epoch: int) -> None:
        if epoch == last:
            shutil.copy(out / "resume.pt", out / "final_state.pt")

    return hook


def weights(path: Path, key: str = "state_dict") -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)[key]


def assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.fixture(scope="module")
def uninterrupted(tiny_store: Store, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("a")
    torch.set_num_threads(1)
    train(tiny_store, out, on_epoch_end=keep_last_state(out, 3))
    return out


def test_outputs_and_dvclive_history(uninterrupted: Path) -> None:
    history = read_history(uninterrupted / "log")
    assert list(history["epoch"]) == [1, 2, 3]
    assert list(history["lr"]) == pytest.approx([1e-3, 1e-3, 1e-4])  # StepLR, step 2, gamma 0.1
    payload = torch.load(uninterrupted / "best.pt", weights_only=True)
    assert payload["bands"] == list(payload["train_config"]["bands"])
    assert payload["model_name"] == "pspnet" and payload["model_config"] == PSPNET
    assert payload["seed"] == 42
    best = history.loc[history["epoch"] == payload["epoch"], "val_miou"].item()
    assert best == pytest.approx(payload["val_miou"]) and best == history["val_miou"].max()
    summary = json.loads((uninterrupted / "log" / METRICS_FILE).read_text())
    assert summary["best_epoch"] == payload["epoch"] and summary["step"] == 3
    assert summary["train_time_h"] > 0 and summary["resumed_from_epoch"] == 0
    assert not (uninterrupted / "resume.pt").exists()  # scratch, removed once finished


def test_resume_after_kill_is_bitwise_identical(
    tiny_store: Store, uninterrupted: Path, tmp_path: Path
) -> None:
    def kill_after_first(epoch: int) -> None:
        if epoch == 1:
            raise Killed

    with pytest.raises(Killed):
        train(tiny_store, tmp_path, on_epoch_end=kill_after_first)
    assert torch.load(tmp_path / "resume.pt", weights_only=True)["epoch"] == 1
    summary = train(tiny_store, tmp_path, on_epoch_end=keep_last_state(tmp_path, 3))
    assert summary["resumed_from_epoch"] == 1
    a, b = tmp_path / "final_state.pt", uninterrupted / "final_state.pt"
    assert_bitwise_equal(weights(a, "model"), weights(b, "model"))
    assert_bitwise_equal(weights(tmp_path / "best.pt"), weights(uninterrupted / "best.pt"))
    opt_a, opt_b = weights(a, "optimizer")["state"], weights(b, "optimizer")["state"]
    for k in opt_a:
        assert_bitwise_equal(opt_a[k], opt_b[k])
    timing = ["epoch_seconds"]
    pd_a = read_history(tmp_path / "log").drop(columns=timing)
    assert pd_a.equals(read_history(uninterrupted / "log").drop(columns=timing))


def test_stale_state_is_ignored(tiny_store: Store, tmp_path: Path) -> None:
    def kill_after_first(epoch: int) -> None:
        raise Killed

    with pytest.raises(Killed):
        train(tiny_store, tmp_path, epochs=2, on_epoch_end=kill_after_first)
    summary = train(tiny_store, tmp_path, epochs=2, lr=0.01)  # another config: start afresh
    assert summary["resumed_from_epoch"] == 0


def test_reloaded_checkpoint_reproduces_its_numbers(tiny_store: Store, uninterrupted: Path) -> None:
    predictor = Predictor.load(uninterrupted / "best.pt", CPU)
    val = evaluate(predictor.model, predictor.dataset(tiny_store, tiny_store.rows("val")), CPU, 3)
    assert scores(val.confusion)["miou"] == predictor.meta["val_miou"]  # same pixel counts
    first = score(predictor, tiny_store, tiny_store.rows("test"), eval_cfg(), 0.1)
    again = score(predictor, tiny_store, tiny_store.rows("test"), eval_cfg(), 0.1)
    for key in ("tp", "fp", "fn", "tn", "miou", "iou_fg", "precision", "recall", "f1"):
        assert first.record[key] == again.record[key]
    assert first.record["tp"] + first.record["fp"] + first.record["fn"] + first.record["tn"] == (
        4 * 32 * 32
    )
    assert first.record["n_images"] == 4 and first.record["train_time_h"] == 0.1
    counts = first.patches[["tp", "fp", "fn", "tn"]].sum()  # pooled = sum of the patches
    assert [int(counts[k]) for k in ("tp", "fp", "fn", "tn")] == [
        first.record[k] for k in ("tp", "fp", "fn", "tn")
    ]
    assert first.labels.shape == (4, 32, 32)


def test_deeplabv3_survives_a_last_batch_of_one(tmp_path: Path) -> None:
    model = build_model("deeplabv3", DEEPLABV3, in_channels=7).train()
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        model(torch.randn(1, 7, 32, 32))  # the failure the trainer must avoid
    write_synthetic_store(tmp_path / "s", {"train": 5, "val": 2}, size=32)
    # 5 tiles in batches of 2 would leave a batch of one: it joins the previous batch.
    summary = train(load_store(tmp_path / "s"), tmp_path / "m", DEEPLABV3, epochs=1, batch_size=2)
    assert summary["n_train"] == 5 and (tmp_path / "m" / "best.pt").is_file()


def test_steps_per_epoch_merge_a_last_batch_of_one() -> None:
    assert _steps_per_epoch(10, 4) == 3  # 4 + 4 + 2
    assert _steps_per_epoch(8, 4) == 2
    assert _steps_per_epoch(5, 2) == 2  # 2 + 3: the batch of one joins the previous batch
    assert _steps_per_epoch(1, 4) == 1  # a single batch stays a batch


def test_train_section_and_run_validation() -> None:
    run = read_run(PARAMS, "unet", PARAMS["seeds"][0])
    assert run.cfg.bands == ["red", "green", "blue", "dem", "slope", "thermal_inertia", "grayscale"]
    assert read_run(PARAMS, "unet", PARAMS["seeds"][0], ["red", "dem"]).cfg.bands == ["red", "dem"]
    with pytest.raises(InputError, match="seeds"):
        read_run(PARAMS, "unet", 123456)
    with pytest.raises(InputError, match="params.yaml:train.lr"):
        cfg(lr="1e-3")  # YAML 1.1 reads `1e-3` as a string: an error, not a silent cast
    with pytest.raises(InputError, match="params.yaml:train.bands"):
        cfg(bands=["red", "ndvi"])
    with pytest.raises(InputError, match="params.yaml:train.batch_size"):
        cfg(batch_size=1)
    with pytest.raises(InputError, match="params.yaml:train.epoch: unknown key"):
        cfg(epoch=3)
    with pytest.raises(InputError, match="params.yaml:models"):
        read_run(PARAMS, "resnet_unet", PARAMS["seeds"][0])


def test_band_ablation_rejects_unknown_band_set(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(PARAMS))
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "stages" / "band_ablation.py"),
            "--band-set",
            "ndvi_only",
            "--seed",
            str(PARAMS["seeds"][0]),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert "params.yaml:band_sets: has no entry 'ndvi_only'" in proc.stderr


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
    write_synthetic_store(tmp_path / "s", {"train": 24, "val": 8, "test": 16}, size=64, seed=3)
    store = load_store(tmp_path / "s")
    train(store, tmp_path / "m", UNET, epochs=8, batch_size=8, lr_step_size=30)
    predictor = Predictor.load(tmp_path / "m" / "best.pt", CPU)
    test = store.rows("test")
    learned = score(predictor, store, test, eval_cfg(latency_warmup=0), None).record["miou"]

    fg = int(store.masks[test].sum())
    all_background = scores(Confusion(tp=0, fp=0, fn=fg, tn=store.masks[test].size - fg))["miou"]
    torch.manual_seed(0)
    untrained = build_model("unet", UNET, in_channels=7)
    random_w = scores(evaluate(untrained, predictor.dataset(store, test), CPU, 8).confusion)["miou"]

    summary = json.dumps({"learned": learned, "bg": all_background, "random": random_w})
    assert learned > 0.7, summary
    assert learned > all_background + 0.25, summary
    assert learned > random_w + 0.25, summary
