"""The CKA paper's trained-network studies: early layers (Sec. 4.1) and map manipulation (Sec. 4.3),
through `repro run` at a tiny size, plus the pieces with closed forms."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from papers.cka_reliability.manipulation import adapt_alpha, distillation_kl, log_cosh
from papers.cka_reliability.nets import VGG3X3, VGG7, BlockCNN, CifarResNet34

TINY = ["data.limit_train=96", "data.batch_size=32", "data.val_size=64", "data.test_size=64", "model.width_mult=0.25"]


def summary(run_root: Path, experiment: str) -> dict:
    [path] = run_root.glob(f"cka_reliability/{experiment}/*/summary.json")
    return json.loads(path.read_text())


def test_log_cosh_is_stable_and_exact() -> None:
    x = torch.linspace(-20, 20, 401, dtype=torch.float64)
    torch.testing.assert_close(log_cosh(x), torch.log(torch.cosh(x)))
    big = torch.tensor([1e4, -1e4], dtype=torch.float64)
    torch.testing.assert_close(log_cosh(big), big.abs() - math.log(2))  # log cosh x → |x| − log 2


def test_distillation_kl_matches_its_definition() -> None:
    gen = torch.Generator().manual_seed(0)
    s, t = (torch.randn(6, 10, generator=gen, dtype=torch.float64) for _ in range(2))
    p, q = F.softmax(t / 0.1, -1), F.softmax(s / 0.1, -1)
    expected = (p * (p.log() - q.log())).sum(-1).mean()
    torch.testing.assert_close(distillation_kl(s, t, 0.1), expected)
    assert distillation_kl(t, t, 0.1).abs() < 1e-12


def test_alpha_shrinks_only_when_accuracy_falls_more_than_the_tolerance() -> None:
    assert adapt_alpha(500.0, 0.95, 0.97, 0.01, 0.8) == pytest.approx(400.0)  # 2 points below: shrink
    assert adapt_alpha(500.0, 0.965, 0.97, 0.01, 0.8) == pytest.approx(625.0)  # within the tolerance: grow
    assert adapt_alpha(500.0, 0.99, 0.97, 0.01, 0.8) == pytest.approx(625.0)


def test_paper_networks_shapes() -> None:
    vgg7 = BlockCNN(VGG7, 3, 10)
    x = torch.randn(2, 3, 32, 32)
    sizes = [32]
    for _, kernel, stride, padding in VGG7:
        sizes.append((sizes[-1] + 2 * padding - kernel) // stride + 1)
    assert vgg7.blocks(x).shape == (2, 64, sizes[-1], sizes[-1]) and sizes[-1] == 10
    vgg = BlockCNN(VGG3X3, 3, 10, width_mult=2.0)
    assert vgg.blocks(x).shape == (2, 128, 8, 8)  # stride 2 at the 3rd and 6th conv
    assert len(vgg.weight_layers()) == 9
    resnet = CifarResNet34(3, 10)
    assert resnet.net.forward_features(x).shape == (2, 512, 4, 4)  # CIFAR stem: no early downsampling


def test_generalising_net_trains_as_it_would_alone(repro, run_root: Path) -> None:
    """The memorising and random nets beside it change nothing for the generalising net: its metrics equal a
    plain classifier run of the same config (same init, batches, per-net clipping, optimizer)."""
    common = [*TINY, "trainer.max_epochs=2", "model.name=vgg7", "optim.name=adamw", "optim.lr=0.001",
              "optim.amsgrad=true", "optim.schedule=cosine_step", "trainer.gradient_clip_val=1.0"]
    assert repro("run", "cka_reliability/early_layers", *common, "early_layers.rbf_examples=64") == 0
    assert repro("run", "cka_reliability/translation", *common, "translation.layer=blocks") == 0
    together, alone = summary(run_root, "early_layers")["metrics"], summary(run_root, "translation")["metrics"]
    for key in ("val/acc", "val/loss", "test/acc", "test/loss"):
        assert together[key] == pytest.approx(alone[key], rel=1e-6), key
    assert together["test/acc_memorising"] < 0.5  # shuffled labels carry no information about the test set
    for pair in ("gen_mem", "gen_ran", "mem_ran"):
        for block in range(8):
            assert -0.2 < together[f"cka_linear_{pair}_block{block}"] <= 1 + 1e-9
            assert f"cka_rbf0.5_{pair}_block{block}" in together
    assert (run_root / "cka_reliability/early_layers").glob("*/figures/early_layers_cka.png")


def test_manipulation_fine_tunes_students_toward_their_targets(repro, run_root: Path) -> None:
    args = [*TINY, "manipulation.train_epochs=1", "trainer.max_epochs=3", "manipulation.check_every=2"]
    assert repro("run", "cka_reliability/manipulation", *args) == 0
    metrics = summary(run_root, "manipulation")["metrics"]
    [run_dir] = (run_root / "cka_reliability/manipulation").iterdir()
    assert (run_dir / "figures/manipulated_cka_maps.png").stat().st_size > 0
    for target in ("ones", "identity", "random_net"):
        # α moved by whole powers of 0.8 from 500 (one factor per check)
        powers = math.log(metrics[f"alpha_final_{target}"] / 500.0) / math.log(0.8)
        assert abs(powers - round(powers)) < 1e-6 and round(powers) != 0
        assert metrics[f"map_distance_after_{target}"] >= 0 and f"test/acc_{target}" in metrics
    # the "ones" target: the map loss pulls every off-diagonal CKA up, so the map gets closer to it
    assert metrics["map_distance_after_ones"] < metrics["map_distance_before_ones"]
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    alphas = [float(r["manip/alpha_ones"]) for r in rows if r.get("manip/alpha_ones")]
    assert len(alphas) >= 2  # logged at every check


def test_bad_manipulation_settings_are_clear_errors(repro, capsys: pytest.CaptureFixture[str]) -> None:
    assert repro("run", "cka_reliability/manipulation", "manipulation.targets=[ones,picture]") == 2
    assert "Unknown manipulation target(s) ['picture']" in capsys.readouterr().err
    assert repro("run", "cka_reliability/manipulation", "manipulation.train_epochs=15") == 2
    assert "must be in 1..trainer.max_epochs-1" in capsys.readouterr().err
    assert repro("run", "cka_reliability/manipulation", "manipulation.layers=[blocks.0,blocks.9]") == 2
    assert "manipulation.layers / manipulation.classifier: no layer named ['blocks.9']" in capsys.readouterr().err
    assert repro("run", "cka_reliability/early_layers", "early_layers.extractor=fx",
                 "early_layers.layers=[blocks.0,block]") == 2
    assert "early_layers.layers: no graph node named ['block']" in capsys.readouterr().err
