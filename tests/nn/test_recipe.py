"""The recipe beyond the paper: losses, AdamW + warm-up + cosine, EMA, TTA, threshold, context,
fusion; each resumes bitwise and the paper's recipe stays exactly the paper's."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mmls.data.store import Store
from mmls.data.symmetry import symmetric
from mmls.evaluation.config import EvalConfig
from mmls.evaluation.scoring import calibrate, decide, score
from mmls.inference.predictor import Predictor
from mmls.metrics.threshold import calibrate_threshold
from mmls.nn.models import build_model
from mmls.nn.probability import landslide_probability
from mmls.nn.recipe import RecipeConfig, SegLoss, cosine_warmup, make_loss
from mmls.nn.tracking import read_history
from mmls.nn.training import Run
from mmls.nn.validation import evaluate
from tests.configs import config
from tests.tiny_training import fit_in, recipe, tiny_store, train_config

CPU = torch.device("cpu")
PSPNET = {"arch": "PSPNet", "encoder_name": "resnet34", "encoder_weights": None}
FUSION = {
    "arch": "FusionUnet",
    "encoder_name": "resnet18",
    "encoder_weights": None,
    "branches": [["red", "green", "blue", "grayscale"], ["dem", "slope", "thermal_inertia"]],
}


class Killed(Exception):
    pass


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    return tiny_store(tmp_path_factory.mktemp("store") / "store")


def run(store: Store, out: Path, rec: RecipeConfig, model: dict = PSPNET, hook=None, **kw) -> dict:
    r = Run(str(model["arch"]).lower(), model, train_config(**kw), rec, 42)
    return fit_in(out, store, r, hook)


def test_the_paper_recipe_is_plain_cross_entropy_adam_steplr() -> None:
    rec = recipe()
    assert (rec.loss, rec.optimizer, rec.schedule, rec.ema_decay) == ("ce", "adam", "step", None)
    assert (rec.tta, rec.threshold, rec.context_px) == (False, 0.5, 0)
    assert type(make_loss(rec)) is nn.CrossEntropyLoss


def test_dice_and_lovasz_terms_add_to_cross_entropy() -> None:
    logits = torch.randn(2, 2, 8, 8)
    target = torch.randint(0, 2, (2, 8, 8))
    ce = nn.functional.cross_entropy(logits, target)
    for kind in ("ce_dice", "ce_lovasz"):
        loss = SegLoss(kind, 0.5)(logits, target)
        assert loss > ce and torch.isfinite(loss)
    perfect = torch.where(
        target.bool()[:, None],
        torch.tensor([-9.0, 9.0])[None, :, None, None],
        torch.tensor([9.0, -9.0])[None, :, None, None],
    )
    assert SegLoss("ce_dice", 1.0)(perfect, target) < 0.01


def test_cosine_warmup_factor() -> None:
    f = cosine_warmup(total_steps=100, warmup_steps=10)
    assert f(0) == pytest.approx(1 / 11) and f(9) == pytest.approx(10 / 11)
    assert (
        f(10) == pytest.approx(1.0) and f(55) == pytest.approx(0.5) and f(100) == pytest.approx(0.0)
    )
    assert all(f(s) >= f(s + 1) for s in range(10, 100))


def _keep_last(out: Path, last: int):
    def hook(epoch: int) -> None:
        if epoch == last:
            shutil.copy(out / "resume.pt", out / "final_state.pt")

    return hook


@pytest.mark.parametrize(
    "rec",
    [
        {"optimizer": "adamw", "weight_decay": 0.01, "schedule": "cosine", "warmup_epochs": 1.0},
        {"ema_decay": 0.9, "loss": "ce_dice"},
    ],
    ids=["adamw-cosine", "ema-dice"],
)
def test_recipes_resume_bitwise(store: Store, tmp_path: Path, rec: dict) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    run(store, a, recipe(**rec), hook=_keep_last(a, 3))

    def kill(epoch: int) -> None:
        if epoch == 2:
            raise Killed

    with pytest.raises(Killed):
        run(store, b, recipe(**rec), hook=kill)
    summary = run(store, b, recipe(**rec), hook=_keep_last(b, 3))
    assert summary["resumed_from_epoch"] == 2
    for key in ("model", "ema", "optimizer"):
        sa = torch.load(a / "final_state.pt", weights_only=True)[key]
        sb = torch.load(b / "final_state.pt", weights_only=True)[key]
        if sa is None:
            assert sb is None
            continue
        flat_a = sa["state"] if key == "optimizer" else sa
        flat_b = sb["state"] if key == "optimizer" else sb
        for k in flat_a:
            va, vb = flat_a[k], flat_b[k]
            items = va.items() if isinstance(va, dict) else [(k, va)]
            for name, t in items:
                other = vb[name] if isinstance(vb, dict) else vb
                assert torch.equal(t, other), (key, k, name)
    best_a = torch.load(a / "best.pt", weights_only=True)["state_dict"]
    best_b = torch.load(b / "best.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(best_a[k], best_b[k]) for k in best_a)


def test_cosine_schedule_steps_per_batch(store: Store, tmp_path: Path) -> None:
    run(store, tmp_path, recipe(schedule="cosine", warmup_epochs=1.0), epochs=3)
    lrs = list(read_history(tmp_path / "log")["lr"])  # lr at the start of each epoch
    steps = math.ceil(10 / 4) - 0  # 10 train tiles, batch 4: batches of 4, 4, 2
    f = cosine_warmup(3 * steps, steps)
    assert lrs == pytest.approx([1e-3 * f(0), 1e-3 * f(steps), 1e-3 * f(2 * steps)])


def test_ema_weights_are_what_is_validated_and_saved(store: Store, tmp_path: Path) -> None:
    run(store, tmp_path, recipe(ema_decay=0.5), epochs=2, hook=_keep_last(tmp_path, 2))
    state = torch.load(tmp_path / "final_state.pt", weights_only=True)
    raw, ema = state["model"], state["ema"]
    assert ema is not None and any(
        not torch.equal(raw[k], ema[f"module.{k}"]) for k in raw if raw[k].is_floating_point()
    )


def test_tta_averages_the_eight_symmetries_and_is_exact_for_pointwise_models() -> None:
    x = torch.randn(3, 7, 16, 16)
    for op in range(8):
        assert torch.equal(symmetric(symmetric(x, op), op, inverse=True), x)
    pointwise = nn.Conv2d(7, 2, 1)
    plain = landslide_probability(pointwise, x, tta=False)
    assert torch.allclose(landslide_probability(pointwise, x, tta=True), plain, atol=1e-6)
    context = nn.Conv2d(7, 2, 3, padding=1)  # not equivariant: TTA changes the answer
    assert not torch.allclose(
        landslide_probability(context, x, True), landslide_probability(context, x, False), atol=1e-4
    )


def test_calibrated_threshold_known_answer() -> None:
    truth = np.zeros((1, 4, 4), np.uint8)
    truth[0, :2] = 1
    probs = np.where(truth, 0.3, 0.1).astype(np.float32)  # landslide scored 0.3, background 0.1
    threshold, miou = calibrate_threshold(probs, truth)
    assert 0.1 <= threshold <= 0.3 and miou == 1.0  # the one nearest 0.5 that separates them
    assert calibrate_threshold(np.where(truth, 0.9, 0.1), truth)[0] == 0.5  # ties: nearest 0.5


def test_calibration_uses_the_selection_rows_and_scoring_applies_it(store: Store, tmp_path) -> None:
    run(store, tmp_path, recipe(), epochs=1)
    predictor = Predictor.load(tmp_path / "best.pt", CPU)
    cfg = config(
        "eval",
        EvalConfig,
        threads=1,
        latency_warmup=0,
        latency_repeats=1,
    )
    decision = decide(
        recipe(threshold="calibrate", tta=True), predictor, store, store.rows("val"), cfg
    )
    assert decision.tta and decision.threshold is not None and "4 patches" in decision.source
    assert decision == calibrate(predictor, store, store.rows("val"), cfg, tta=True)
    scored = score(predictor, store, store.rows("test"), cfg, None, decision)
    assert scored.record["threshold"] == decision.threshold and scored.record["tta"] is True
    plain = evaluate(predictor.model, predictor.dataset(store, store.rows("test")), CPU, 4)
    default = score(predictor, store, store.rows("test"), cfg, None)
    assert (
        default.record["tp"] == int(plain.counts[:, 0].sum()) and "threshold" not in default.record
    )


def test_calibrating_on_the_scored_val_split_is_refused(store: Store, tmp_path) -> None:
    from mmls.core.errors import InputError
    from mmls.evaluation.config import EvalConfig
    from mmls.evaluation.scoring import decide_on_val

    run(store, tmp_path, recipe(), epochs=1)
    predictor = Predictor.load(tmp_path / "best.pt", CPU)
    cfg = config("eval", EvalConfig, splits=["val"], threads=1, latency_warmup=0)
    with pytest.raises(InputError, match=r"eval\.splits.*lists val"):
        decide_on_val(recipe(threshold="calibrate"), predictor, store, cfg)
    test_only = config("eval", EvalConfig, splits=["test"], threads=1, latency_warmup=0)
    assert decide_on_val(recipe(threshold="calibrate"), predictor, store, test_only).threshold


def test_context_windows_train_and_score_on_the_central_patch(store: Store, tmp_path) -> None:
    summary = run(
        store,
        tmp_path,
        recipe(context_px=16),
        epochs=1,
        model={"arch": "Unet", "encoder_name": "resnet18", "encoder_weights": None},
    )
    assert summary["n_train"] == 10
    predictor = Predictor.load(tmp_path / "best.pt", CPU)
    assert predictor.context_px == 16
    data = predictor.dataset(store, store.rows("test"))
    x, y = data[0]
    assert x.shape[-1] == 32 + 32 and (y[:16] == -100).all() and (y[16:-16, 16:-16] >= 0).all()
    result = evaluate(predictor.model, data, CPU, 4, keep_labels=True)
    assert result.labels.shape == (4, 32, 32) and result.counts.sum() == 4 * 32 * 32


def test_fusion_model_trains_and_reloads(store: Store, tmp_path: Path) -> None:
    run(store, tmp_path, recipe(), model=FUSION, epochs=1)
    predictor = Predictor.load(tmp_path / "best.pt", CPU)
    assert type(predictor.model).__name__ == "FusionUnet"
    bands = list(store.bands)
    with pytest.raises(Exception, match="split the input bands"):
        build_model("f", {**FUSION, "branches": [["red"], ["dem"]]}, 7, bands=bands)


def test_fusion_decoder_and_head_get_smp_initialisation() -> None:
    bands = ["red", "green", "blue", "dem", "slope", "thermal_inertia", "grayscale"]
    torch.manual_seed(0)
    model = build_model("f", FUSION, 7, bands=bands)
    head_conv = next(m for m in model.head.modules() if isinstance(m, nn.Conv2d))
    assert float(head_conv.bias.abs().max()) == 0.0  # smp's initialize_head zeroes biases
    fuse_conv = next(m for m in model.fuse.modules() if isinstance(m, nn.Conv2d))
    fan_in = fuse_conv.weight[0].numel()  # PyTorch's default bound is 1/sqrt(fan_in),
    assert float(fuse_conv.weight.abs().max()) > 1 / math.sqrt(fan_in)  # smp's sqrt(6/fan_in)
