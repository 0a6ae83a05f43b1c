"""The CKA paper's trained-network studies: early layers (Sec. 4.1) and map manipulation (Sec. 4.3),
through `repro run` at a tiny size, plus the pieces with closed forms, and the paper's `measure` (SEs, guards)
on hand-made run results."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from common.claims import scorecard
from common.outcomes import RunResult, load_outcomes
from common.registry import RunPlan
from common.stats import ONE_RUN, Measured, mean_over
from papers.cka_reliability.claims import CLAIMS
from papers.cka_reliability.manipulation import adapt_alpha, distillation_kl, log_cosh
from papers.cka_reliability.measure import TARGETS, absolute, measure
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
    [run_dir] = (run_root / "cka_reliability/early_layers").iterdir()
    assert (run_dir / "figures/early_layers_cka.png").stat().st_size > 0
    outcomes = load_outcomes(run_dir)
    assert outcomes["generalising"].mean() == pytest.approx(together["test/acc"])
    assert set(outcomes) == {"generalising", "memorising"} and 0 <= together["train_acc_memorising_shuffled"] <= 1


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
    outcomes = load_outcomes(run_dir)
    assert outcomes["original"].mean() == pytest.approx(metrics["test_acc_original"])
    assert (outcomes["original"] - outcomes["ones"]).mean() == pytest.approx(metrics["acc_drop_ones"])
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


# ---------------------------------------------------------------- measure: statistics on synthetic run results
def _runs(experiment: str, results: list[RunResult]) -> dict[RunPlan, RunResult]:
    return {RunPlan(experiment, (f"seed={s}",)): r for s, r in enumerate(results)}


def _manipulation_run(drops: dict[str, int], ratio: float, n: int = 200) -> RunResult:
    """The original net right on the first 180 of n examples; each student loses `drops[target]` of them."""
    original = (np.arange(n) < 180).astype(float)
    outcomes = {"original": original}
    for target in TARGETS:
        student = original.copy()
        student[: drops[target]] = 0
        outcomes[target] = student
    return RunResult({f"map_distance_ratio_{t}": ratio for t in TARGETS}, outcomes)


def test_one_manipulation_run_uses_the_paired_test_set_se() -> None:
    run = _manipulation_run({"ones": 2, "identity": 30, "random_net": 0}, ratio=0.3)
    m = measure(_runs("manipulation", [run]), "smoke", Path("."))
    d = np.zeros(200)
    d[:2] = 1  # original right, student wrong
    assert m["acc_drop_ones"].value == pytest.approx(0.01)
    assert m["acc_drop_ones"].se == pytest.approx(d.std(ddof=1) / 200 ** 0.5) and m["acc_drop_ones"].n == 200
    assert m["acc_drop_ones"].note == ONE_RUN
    assert m["acc_drop_random_net"].se == 0 and m["acc_drop_identity"].value == pytest.approx(0.15)
    # one run has no spread of its map distance: the claim on it cannot be decided
    assert math.isnan(m["map_distance_ratio_max"].se)
    rows = {r["id"]: r for r in scorecard(CLAIMS, m, "smoke")}
    assert rows["accuracy_kept_identity"]["status"] == "not_reproduced"
    assert rows["accuracy_kept_ones"]["status"] == "inconclusive"  # 0.01 ± 0.007 straddles the 1-point bar
    assert rows["map_moves_to_target"]["status"] == "inconclusive"


def test_manipulation_over_seeds_and_the_worse_network() -> None:
    vgg = [_manipulation_run({"ones": k, "identity": 0, "random_net": 0}, ratio=0.2 + 0.01 * k) for k in (0, 1, 2)]
    resnet = _manipulation_run({"ones": 0, "identity": 0, "random_net": 4}, ratio=0.1)
    m = measure(_runs("manipulation", vgg) | {RunPlan("manipulation_resnet"): resnet}, "paper", Path("."))
    # the VGG's drop: the mean of three paired drops, over seeds; the ResNet's is larger and counts
    assert m["acc_drop_ones"].value == pytest.approx(0.005) and m["acc_drop_ones"].n == 3
    assert m["acc_drop_random_net"].value == pytest.approx(0.02) and m["acc_drop_random_net"].note == ONE_RUN
    assert m["map_distance_ratio_max"].value == pytest.approx(0.21)
    assert m["manipulated_net_test_acc"].value == pytest.approx(0.9)


def _early_run(memorised: float, gen_acc: int, cka0: float) -> RunResult:
    metrics = {"train_acc_memorising_shuffled": memorised, "train_examples": 1000.0}
    for pair in ("gen_mem", "gen_ran", "mem_ran"):
        metrics |= {f"cka_linear_{pair}_block0": cka0, f"cka_linear_{pair}_first_minus_last": cka0 - 0.2}
    scores = {"generalising": (np.arange(100) < gen_acc).astype(float), "memorising": np.arange(100) % 10 == 0}
    return RunResult(metrics, scores)


def test_a_net_that_did_not_memorise_invalidates_the_claims_it_guards() -> None:
    runs = [_early_run(0.99, 95, 0.95), _early_run(0.97, 96, 0.96), _early_run(0.5, 94, 0.97)]
    m = measure(_runs("early_layers", runs), "smoke", Path("."))
    assert m["cka_linear_gen_mem_block0"].n == 3 and m["cka_linear_gen_mem_block0"].df == 2
    assert m["train_acc_memorising_shuffled"].value == 0.5  # the worst seed
    rows = {r["id"]: r for r in scorecard(CLAIMS, m, "smoke")}
    assert rows["memorising_net_memorises"]["status"] == "not_reproduced"
    for claim in ("early_blocks_similar_memorising", "similarity_falls_with_depth"):
        assert rows[claim]["status"] == "not_run" and "invalid: check memorising_net_memorises" in rows[claim]["note"]
    assert rows["early_blocks_similar_random"]["status"] == "reproduced"  # guarded only by the generalising net


def test_one_network_pair_gives_no_verdict_on_its_cka() -> None:
    m = measure(_runs("early_layers", [_early_run(0.99, 95, 0.95)]), "smoke", Path("."))
    assert math.isnan(m["cka_linear_gen_ran_block0"].se) and m["cka_linear_gen_ran_block0"].n == 1
    assert {r["id"]: r["status"] for r in scorecard(CLAIMS, m, "smoke")}["early_blocks_similar_random"] == \
        "inconclusive"


def test_synthetic_cells_of_equal_ratio_are_compared_per_seed() -> None:
    gen = np.random.default_rng(0)
    shared = gen.normal(0.5, 0.05, 5)  # the cubes' draw moves both cells of equal σ/μ together
    cells = {"map_cka_mu0.1_sigma0.1": shared + 0.001 * gen.normal(size=5),
             "map_cka_mu1_sigma1": shared + 0.001 * gen.normal(size=5), "map_cka_mu1_sigma0.1": shared - 0.3,
             "map_cka_mu0.1_sigma1": shared + 0.2}
    per_seed = {"limit_gap_at_max_c": np.full(5, 0.01), "linear_cka_at_max_c": shared} | cells
    m = measure({RunPlan("synthetic"): RunResult({}, per_seed)}, "smoke", Path("."))
    gap = m["map_cka_gap_at_equal_ratio"]
    difference = cells["map_cka_mu0.1_sigma0.1"] - cells["map_cka_mu1_sigma1"]
    assert gap.value == pytest.approx(abs(difference.mean())) and gap.interval[1] < 0.01  # paired: tiny
    assert gap.interval[0] >= 0
    assert m["map_cka_min"].value == pytest.approx((shared - 0.3).mean())
    assert "map_cka_spread_at_equal_ratio" not in m  # renamed: it is a paired gap now


def test_absolute_value_interval() -> None:
    assert absolute(Measured(-0.02, 0.0, 3, "seeds", bounds=(-0.05, 0.01))).interval == (0.0, 0.05)
    assert absolute(Measured(-0.2, 0.0, 3, "seeds", bounds=(-0.3, -0.1))).interval == (0.1, 0.3)
    assert math.isnan(absolute(mean_over([0.1])).interval[1])


def test_claims_are_honest_about_what_they_measure() -> None:
    """The synthetic claim measures no classifier; identities, preconditions and by-construction rows are
    checks; the Fig. 4a bar is the closed form at the configured sizes, not 0.5 (the paper's value is 0.117)."""
    claims = {c.id: c for c in CLAIMS}
    assert "classifier" not in claims["translation_lowers_cka"].statement
    for check in ("global_shift_keeps_cka", "translation_limit", "svm_unchanged_by_translation",
                  "memorising_net_memorises", "map_cka_depends_on_ratio"):
        assert claims[check].kind == "check"
    assert claims["translation_lowers_cka"].expected["paper"].value == pytest.approx(1.1 * 0.1125, abs=0.001)
    assert claims["translation_lowers_cka"].expected["smoke"].value < 0.36
    trained_by = {g for c in CLAIMS if c.kind == "check" for g in c.guards}
    assert {c.id for c in CLAIMS if c.kind == "paper"} - {"translation_lowers_cka", "invertible_map_lowers_cka"} \
        <= trained_by  # every claim on a trained net is guarded
