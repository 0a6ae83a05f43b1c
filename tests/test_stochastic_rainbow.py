"""Stochastic rainbow networks (White et al. 2024, Sci4DL): the safe polar factor, the paired layer and its
alignment, the pre-BN ResNets, evaluation, claims and bad input."""

from __future__ import annotations

import atexit
import json
import math
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from common.claims import scorecard
from common.config import compose
from common.errors import UserError
from common.linalg import polar_factor
from common.models.factconv import noise_std
from common.outcomes import RunResult, load_outcomes
from common.registry import RunPlan
from common.stats import ONE_RUN, over_seeds
from papers.stochastic_rainbow.claims import CLAIMS, PAPER_DEPTHS, PAPER_RANKS, PAPER_WIDTHS, SMOKE_RANKS, plan
from papers.stochastic_rainbow.layers import (
    Align,
    StochasticFactConv2d,
    redraw_all,
    reference_count,
    set_align_mode,
    set_reference_fraction,
    split_pair,
)
from papers.stochastic_rainbow.measure import measure
from papers.stochastic_rainbow.module import StochasticRainbowModule, build_net
from papers.stochastic_rainbow.resnet import StochasticResNet
from papers.stochastic_rainbow.study import fix_sample, sampling_study

FIGURES = Path(tempfile.mkdtemp(prefix="repro-test-figures-"))  # where measure draws in unit tests
atexit.register(shutil.rmtree, FIGURES, True)


def _orthogonal(n: int, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return q


def test_polar_factor_gradient_matches_finite_differences() -> None:
    gen = torch.Generator().manual_seed(0)
    u, v = _orthogonal(5, gen), _orthogonal(5, gen)
    cross = (u @ torch.diag(torch.tensor([3.0, 2.0, 1.5, 1.0, 0.5], dtype=torch.float64)) @ v.T).requires_grad_()
    weight = torch.randn(5, 5, generator=gen, dtype=torch.float64)  # a generic loss tr(Wᵀ Q)
    assert torch.autograd.gradcheck(lambda k: (polar_factor(k) * weight).sum(), (cross,))
    torch.testing.assert_close(polar_factor(cross), u @ v.T)


def test_polar_factor_never_nan_with_repeated_or_vanishing_singular_values() -> None:
    gen = torch.Generator().manual_seed(1)
    u, v = _orthogonal(6, gen), _orthogonal(6, gen)
    repeated = u @ torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0, 1.0, 1e-9], dtype=torch.float64)) @ v.T
    x_gen, x_ref = torch.randn(3, 6, generator=gen), torch.randn(3, 6, generator=gen)  # 3 samples < 6 channels
    for cross in (repeated, x_gen.T @ x_ref, torch.zeros(6, 6)):
        cross = cross.clone().requires_grad_()
        q = polar_factor(cross)
        (q * torch.randn(6, 6, generator=gen, dtype=q.dtype)).sum().backward()
        assert torch.isfinite(q).all() and torch.isfinite(cross.grad).all()
        torch.testing.assert_close(q.T @ q, torch.eye(6, dtype=q.dtype), atol=1e-5, rtol=0)
    # rank deficient: every orthogonal completion maps the samples the same way, onto the best fit of X_ref
    q = polar_factor(x_gen.T @ x_ref)
    assert ((x_gen @ q - x_ref).norm() <= (x_gen - x_ref).norm())


def test_polar_factor_of_a_non_finite_matrix_is_nan_not_an_error() -> None:
    """A diverged step (NaN / inf in K) must reach the loss as NaN, for the trainer's non-finite-loss check."""
    for bad in (float("nan"), float("inf")):
        cross = torch.eye(4, dtype=torch.float64)
        cross[1, 2] = bad
        cross.requires_grad_()
        q = polar_factor(cross)
        assert torch.isnan(q).all()
        q.sum().backward()  # no LAPACK error on the way back either
    assert torch.isfinite(polar_factor(torch.eye(4))).all()  # the guard leaves a finite K alone


def _net(conv: str = "stochastic", **kwargs: object) -> StochasticResNet:
    torch.manual_seed(0)
    return StochasticResNet(1, 10, depth=9, width_scale=kwargs.pop("width_scale", 0.0625), conv=conv,
                            **kwargs).double()


def test_generated_noise_equal_to_the_reference_gives_the_plain_factconv_net() -> None:
    """Limit identity: with W_gen = W_ref both paths agree, K = X_refᵀ X_ref is PSD, Q = I, and the stochastic
    network computes what the same pre-BN FactConv ResNet computes."""
    stochastic, plain = _net(), _net("factconv")
    for layer in stochastic.modules():
        if isinstance(layer, StochasticFactConv2d):
            with torch.no_grad():
                for p in layer.parameters():
                    p.normal_(0, 0.1)
                layer.gen_noise.copy_(layer.noise)
    plain.load_state_dict({k: v for k, v in stochastic.state_dict().items()
                           if not k.endswith(("gen_noise", "running_cross"))})
    x = torch.randn(16, 1, 16, 16, dtype=torch.float64)
    torch.testing.assert_close(stochastic(x), plain(x))


def test_gradients_reach_every_factor_and_the_reference_path_matters() -> None:
    net = _net()
    x, y = torch.randn(8, 1, 16, 16, dtype=torch.float64), torch.randint(0, 10, (8,))
    out = net(x)
    torch.nn.functional.cross_entropy(out, y).backward()
    factors = [p for m in net.modules() if isinstance(m, StochasticFactConv2d) for p in m.parameters()]
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in factors)
    layer = net.blocks[1].conv1
    with torch.no_grad():
        layer.noise.normal_()  # another reference noise: the alignment, hence the output, changes
    assert not torch.allclose(net(x), out)


def test_redraw_changes_only_the_generated_noise_with_the_training_law() -> None:
    layer = StochasticFactConv2d(64, 128, 3)
    ref, gen = layer.noise.clone(), layer.gen_noise.clone()
    redraw_all(layer, torch.Generator().manual_seed(3))
    assert torch.equal(layer.noise, ref) and not torch.equal(layer.gen_noise, gen)
    std = layer.gen_noise.std().item()
    assert abs(std / noise_std(64, 3) - 1) < 5 * (1 / (2 * layer.gen_noise.numel())) ** 0.5


def test_running_alignment_of_one_batch_is_the_batch_alignment() -> None:
    align = Align(4)
    pair = torch.randn(10, 4, 3, 3)  # 5 generated rows, then their 5 reference rows
    batch = align(pair)
    set_align_mode(align, "accumulate")
    align(pair)
    set_align_mode(align, "running")
    torch.testing.assert_close(align(pair), batch)


def test_alignment_residual_from_running_sums_equals_the_direct_residual() -> None:
    """Align.residual (norms and the nuclear norm of the running K) against ‖X_gen Q − X_ref‖ / ‖X_ref‖ computed on
    the samples themselves, Q the polar factor of the whole pass's K; 0 for features a rotation maps exactly."""
    gen = torch.Generator().manual_seed(4)
    align = Align(4)
    set_align_mode(align, "accumulate")
    pairs = [torch.randn(10, 4, 3, 3, generator=gen, dtype=torch.float64) for _ in range(2)]
    for pair in pairs:
        align(pair)
    x_gen, x_ref = (torch.cat([p.chunk(2)[i].transpose(0, 1).flatten(1) for p in pairs], 1).T for i in (0, 1))
    q = polar_factor(x_gen.T @ x_ref)
    assert align.residual() == pytest.approx(((x_gen @ q - x_ref).norm() / x_ref.norm()).item(), rel=1e-9)
    rotation = _orthogonal(4, gen)
    ref = torch.randn(6, 4, 2, 2, generator=gen, dtype=torch.float64)
    set_align_mode(align, "accumulate")  # a new pass starts from zero
    align(torch.cat([torch.einsum("bchw,dc->bdhw", ref, rotation), ref]))  # X_gen = X_ref Rᵀ
    assert align.residual() == pytest.approx(0.0, abs=1e-6)


def test_alignment_on_fewer_samples_than_channels_is_finite() -> None:
    """Documented behaviour: B·H·W < C gives a rank-deficient K; the output and the gradient stay finite."""
    align = Align(32)
    pair = torch.randn(4, 32, 2, 2, requires_grad=True)  # 2 examples: 8 samples of 32 channels
    out = align(pair)
    out.square().sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(pair.grad).all()


@pytest.mark.parametrize("fraction", [0.1, 0.25, 1 / 3, 0.5, 1.0])
@pytest.mark.parametrize("shape", [(64, 32, 32), (512, 4, 4), (64, 1, 1)])
def test_a_pair_splits_back_into_its_batch_and_reference_rows(fraction: float, shape: tuple[int, ...]) -> None:
    floor = 2 * shape[0] / (shape[1] * shape[2])  # K gets at least 2 C samples (positions x examples)
    for batch in range(1, 300):
        m = reference_count(batch, fraction, shape)
        assert m == min(batch, max(1, math.ceil(round(fraction * batch, 6)), math.ceil(floor)))
        gen, ref = split_pair(torch.zeros(batch + m, *shape[:1], 1, 1).expand(-1, -1, *shape[1:]), fraction)
        assert (len(gen), len(ref)) == (batch, m)


def test_a_reference_fraction_aligns_on_the_first_examples_of_the_batch() -> None:
    """f = 1/2: K (hence every Q) comes from the first half of the batch, so with BatchNorm on running statistics the
    first half's outputs are those of the f = 1 net on the first half alone; the second half still gets outputs."""
    net = _net(reference_fraction=0.5).eval()  # eval: BatchNorm per example; the alignments stay per batch
    x = torch.randn(8, 1, 32, 32, dtype=torch.float64)  # last stage 32 channels at 4 x 4: the floor 2C / HW = 4
    half = net(x)
    set_reference_fraction(net, 1.0)
    torch.testing.assert_close(half[:4], net(x[:4]))
    assert half.shape == (8, 10) and not torch.allclose(half[4:], net(x[4:]))


def test_calibration_uses_every_example_whatever_the_training_fraction() -> None:
    x = torch.randn(32, 1, 16, 16)
    quarter, full = _net(reference_fraction=0.25).float(), _net().float()
    for net in (quarter, full):
        fix_sample(net, lambda: x.split(16), torch.Generator().manual_seed(0))
    for a, b in zip((m for m in quarter.modules() if isinstance(m, Align)),
                    (m for m in full.modules() if isinstance(m, Align)), strict=True):
        assert a.reference_fraction == 0.25 and torch.equal(a.running_cross, b.running_cross)
    with pytest.raises(UserError, match=r"reference_fraction=0 must be in \(0, 1\]"):
        _net(reference_fraction=0)


def test_sampling_study_scores_the_whole_test_set(tmp_path: Path) -> None:
    net = _net().float()
    x_train, y_train = torch.randn(40, 1, 16, 16), torch.randint(0, 10, (40,))
    x_test, y_test = torch.randn(37, 1, 16, 16), torch.randint(0, 10, (37,))  # 37: not a multiple of 16
    cfg = OmegaConf.create({"samples": 3, "batch_size": 16, "align_examples": None, "retrain_epochs": 1,
                            "retrain_lr": 0.01})
    metrics = sampling_study(net, (x_train, y_train), (x_test, y_test), cfg, 0, tmp_path)
    for key in ("sample/fixed_acc", "sample/retrained_acc", "ensemble/acc_k1", "ensemble/acc_k3"):
        assert (metrics[key] * 37) == pytest.approx(round(metrics[key] * 37), abs=1e-4)
    assert metrics["ensemble/acc_k1"] == metrics["sample/fixed_acc"] and metrics["ensemble/acc"] == metrics[
        "ensemble/acc_k3"]
    outcomes = load_outcomes(tmp_path)  # per example: the fraction of the 3 samples right, ensemble, retrained
    assert {k: len(v) for k, v in outcomes.items()} == {"sample": 37, "ensemble": 37, "retrained": 37}
    assert outcomes["sample"].mean() == pytest.approx(metrics["sample/acc_mean"], abs=1e-6)
    assert set(np.round(3 * outcomes["sample"], 5)) <= {0, 1, 2, 3}
    assert outcomes["ensemble"].mean() == pytest.approx(metrics["ensemble/acc"], abs=1e-6)
    assert outcomes["retrained"].mean() == pytest.approx(metrics["sample/retrained_acc"], abs=1e-6)
    record = json.loads((tmp_path / "sampling.json").read_text())
    assert record["single"][0] == metrics["sample/fixed_acc"]
    assert len(record["align_residual"]) == 3 and 0 <= metrics["sample/align_residual_mean"] <= metrics[
        "sample/align_residual_max"]
    assert all(m.mode == "batch" for m in net.modules() if isinstance(m, Align))  # the trained net is untouched
    assert (tmp_path / "figures/ensemble.png").stat().st_size > 0


def test_fixed_sample_freezes_the_alignment() -> None:
    net = _net().float()
    x = torch.randn(32, 1, 16, 16)
    fix_sample(net, lambda: x.split(16), torch.Generator().manual_seed(0))
    crosses = [m.running_cross.clone() for m in net.modules() if isinstance(m, Align)]
    assert all(m.mode == "running" for m in net.modules() if isinstance(m, Align))
    torch.testing.assert_close(net(x[:4]), net(x)[:4])  # per-example: no batch statistics at test
    assert all(torch.equal(c, m.running_cross) for c, m in zip(crosses, (m for m in net.modules()
                                                                          if isinstance(m, Align)), strict=True))


def _scores(accuracy: float, n: int = 500, seed: int = 0) -> np.ndarray:
    """n per-example scores (1/0) with the given accuracy, in a seeded random order."""
    hits = np.zeros(n)
    hits[: round(accuracy * n)] = 1
    return np.random.default_rng(seed).permutation(hits)


def _run(sample: float, ensemble: float | None = None, retrained: float | None = None, seed: int = 0) -> RunResult:
    """A run's per-example scores: its samples' (an accuracy), the ensemble's and the retrained head's (default:
    the samples' scores plus 5 points, on other examples)."""
    scores = _scores(sample, seed=seed)
    outcomes = {"sample": scores,
                "ensemble": scores.copy() if ensemble is None else _scores(ensemble, seed=seed + 1),
                "retrained": scores.copy() if retrained is None else _scores(retrained, seed=seed + 2)}
    if ensemble is None:
        outcomes["ensemble"][np.flatnonzero(scores == 0)[:25]] = 1
    return RunResult({"sample/acc_mean": float(scores.mean())}, outcomes)


def _scored(results: dict, scale: str = "smoke") -> dict[str, dict]:
    return {row["id"]: row for row in scorecard(CLAIMS, measure(results, scale, FIGURES), scale)}


def test_the_rank_sweep_is_paired_on_the_test_set(tmp_path: Path) -> None:
    """full − lrdiag(k_max) is the per-example difference of the two runs' sample scores, SE = sd(a_i − b_i)/√n
    (by hand), one run each: noted ONE_RUN; k_max − k_min likewise, however the ranks between score."""
    full, *ranks = plan("smoke")
    results = {full: _run(0.6)}
    results |= {p: _run(acc, seed=10 * i) for i, (p, acc) in enumerate(zip(ranks, (0.5, 0.4, 0.58), strict=True))}
    out = measure(results, "smoke", tmp_path)
    d = results[full].outcomes["sample"] - results[ranks[-1]].outcomes["sample"]
    gap = out["full_minus_largest_rank"]
    assert gap.value == pytest.approx(0.02) and gap.n == 500 and gap.note == ONE_RUN
    assert gap.se == pytest.approx(d.std(ddof=1) / 500 ** 0.5)
    assert out["largest_minus_smallest_rank"].value == pytest.approx(0.08)
    assert out[f"gap_rank{SMOKE_RANKS[1]}"].value == pytest.approx(0.2)  # the sweep need not be monotone
    assert out["sample_acc_full"].value == pytest.approx(0.6) and "sample_acc_lrdiag_k4" in out
    assert "depth34_minus_depth9_widest" not in out
    assert (tmp_path / "depth_and_rank.png").stat().st_size > 0


def test_an_ensemble_margin_inside_the_paired_se_is_not_reproduced() -> None:
    """The old `ensemble_beats_retrained_head` passed on a 0.002 margin (one example in 500): with the paired SE its
    interval straddles 0. And `ensemble_grows_with_k`, which any ensemble passes, is no longer a claim."""
    sample = _scores(0.6)
    retrained = sample.copy()
    ensemble = sample.copy()
    wrong, right = np.flatnonzero(sample == 0), np.flatnonzero(sample == 1)
    ensemble[wrong[:12]], ensemble[right[:11]] = 1, 0  # 12 gained, 11 lost against the retrained head
    results = {RunPlan("resnet"): RunResult({}, {"sample": sample * 0.9, "ensemble": ensemble,
                                                "retrained": retrained})}
    rows = _scored(results)
    assert rows["ensemble_beats_retrained_head"]["measured"] == pytest.approx(0.002)
    assert rows["ensemble_beats_retrained_head"]["status"] == "inconclusive"
    assert rows["ensemble_beats_retrained_head"]["note"] == ONE_RUN
    assert {c.id for c in CLAIMS}.isdisjoint({"ensemble_grows_with_k", "low_rank_gap_shrinks"})


def test_checks_guard_the_claims_that_need_trained_nets_and_distinct_samples() -> None:
    full, *ranks = plan("smoke")
    untrained = {full: _run(0.6), **{p: _run(0.2 if i == 0 else 0.5, seed=i) for i, p in enumerate(ranks)}}
    rows = _scored(untrained)
    assert rows["stochastic_nets_trained"]["status"] == "not_reproduced"
    for claim in ("ensemble_beats_retrained_head", "largest_rank_beats_smallest", "low_rank_approaches_full"):
        assert rows[claim]["status"] == "not_run" and rows[claim]["note"].startswith("invalid: check stochastic")
    identical = {p: RunResult({}, {"sample": s, "ensemble": s, "retrained": _scores(0.5, seed=3)})
                 for p in plan("smoke") for s in [_scores(0.6)]}  # every sample the same: the ensemble ties it
    rows = _scored(identical)
    assert rows["ensemble_beats_its_samples"]["status"] == "not_reproduced"
    assert rows["ensemble_beats_retrained_head"]["status"] == "not_run"
    assert rows["stochastic_nets_trained"]["status"] == "reproduced"


def test_paper_claims_pair_runs_by_seed_and_use_the_spread_over_seeds() -> None:
    """Paper scale: 3 seeds per setting; ResNet-34 − ResNet-9 at the widest width is the mean over seeds of the
    per-seed paired differences, with the spread over seeds plus the test set's noise (common.stats.over_seeds,
    tested by hand in tests/test_rainbow_claims.py)."""
    plans = plan("paper")
    assert len(plans) == (len(PAPER_DEPTHS) * len(PAPER_WIDTHS) + len(PAPER_RANKS)) * 3 == len(set(plans))
    gaps = {0: 0.01, 1: 0.03, 2: 0.05}

    def accuracy(p: RunPlan) -> float:
        o = dict(x.split("=", 1) for x in p.overrides)
        depth_gain = gaps[int(o.get("seed", 0))] if o.get("model.depth") == "34" else 0.0
        return 0.5 + depth_gain + float(o.get("model.width_scale", 0)) / 10

    results = {p: _run(accuracy(p), seed=i) for i, p in enumerate(plans)}
    out = measure(results, "paper", FIGURES)
    gap = out["depth34_minus_depth9_widest"]
    widest = max(PAPER_WIDTHS)

    def run(depth: int, seed: int) -> RunResult:
        wanted = (str(depth), str(widest), str(seed))
        for p, r in results.items():
            o = dict(x.split("=", 1) for x in p.overrides)
            if (o.get("model.depth"), o.get("model.width_scale"), o.get("seed", "0")) == wanted:
                return r
        raise KeyError(wanted)

    by_hand = over_seeds([run(34, s).outcomes["sample"] - run(9, s).outcomes["sample"] for s in range(3)])
    assert (gap.value, gap.n, gap.n_of) == (pytest.approx(0.03), 3, "seeds × 500 test examples")
    assert (gap.se, gap.df) == (pytest.approx(by_hand.se), by_hand.df)
    assert out["full_minus_largest_rank"].n_of == "seeds × 500 test examples"


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"width_scale": 0.01}, "channels per stage"),
    ({"channel": "lrdiag", "rank": 1000}, "exceeds the channels"),
    ({"depth": 50}, "depth"),
])
def test_bad_networks_are_user_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(UserError, match=match):
        StochasticResNet(1, 10, **kwargs)


def test_rank_is_clipped_to_each_layers_input_channels() -> None:
    net = StochasticResNet(1, 10, depth=9, width_scale=0.125, channel="lrdiag", rank=16)
    assert net.stem.channel.upper.numel() == 0  # the stem sees one channel
    assert net.blocks[0].conv1.channel.upper_idx[0].max() < 8  # 8 input channels: full (rank clipped to 8)
    assert net.blocks[3].conv1.channel.upper_idx[0].max() == 15  # 32 input channels: the first 16 rows learn


def test_checkpoint_of_another_variant_is_a_user_error() -> None:
    cfg = compose("stochastic_rainbow", "resnet", ["model.width_scale=0.0625"])
    module = StochasticRainbowModule(cfg, build_net(cfg, (1, 16, 16), 10))
    other = compose("stochastic_rainbow", "resnet", ["model.width_scale=0.0625", "factconv.channel=lrdiag",
                                                     "factconv.rank=2"])
    checkpoint = {"hyper_parameters": {"config": OmegaConf.to_container(other)}}
    with pytest.raises(UserError, match="factconv.channel: 'lrdiag' in the checkpoint, 'full' here"):
        module.on_load_checkpoint(checkpoint)
    module.on_load_checkpoint({"hyper_parameters": {"config": OmegaConf.to_container(cfg)}})  # same variant: fine


def test_run_trains_samples_and_ensembles(repro, run_root: Path) -> None:
    """At test size: the run's summary carries the sampling metrics and outcomes.npz their per-example scores; a
    baseline without noise (model.conv=conv) samples nothing and so saves no scores."""
    assert repro("run", "stochastic_rainbow/resnet", "tiny=true") == 0
    [run_dir] = (run_root / "stochastic_rainbow/resnet").iterdir()
    metrics = json.loads((run_dir / "summary.json").read_text())["metrics"]
    assert {"sample/acc_mean", "sample/retrained_acc", "ensemble/acc_k2"} <= metrics.keys()
    outcomes = load_outcomes(run_dir)
    assert {len(v) for v in outcomes.values()} == {20}  # the tiny overlay's test digits
    assert outcomes["sample"].mean() == pytest.approx(metrics["sample/acc_mean"], abs=1e-6)
    assert repro("run", "stochastic_rainbow/resnet", "model.conv=conv", "tiny=true") == 0
    [baseline] = [d for d in (run_root / "stochastic_rainbow/resnet").iterdir() if "conv" in d.name]
    summary = json.loads((baseline / "summary.json").read_text())
    assert "test/acc" in summary["metrics"] and "sample/acc_mean" not in summary["metrics"]
    assert load_outcomes(baseline) == {}


def test_a_diverging_run_stops_with_the_non_finite_loss_error(repro, run_root: Path, capsys) -> None:
    """At a huge learning rate the activations overflow within a few steps: the run ends with the suite's
    one-paragraph non-finite-loss error (exit 2), not a LAPACK convergence traceback from the alignment's SVD."""
    assert repro("run", "stochastic_rainbow/resnet", "trainer.max_epochs=1", "data.limit_train=400",
                 "optim.lr=1e4") == 2
    assert "Training stopped: the loss became" in capsys.readouterr().err


@pytest.mark.slow  # torch.compile's tracing: ~15 s on a CPU
def test_the_stochastic_net_traces_as_one_graph_for_torch_compile() -> None:
    """No graph break (the CPU thread guard around the SVD stands aside while compiling), so torch.compile takes the
    whole forward; the traced forward matches the eager one."""
    net = _net().float().eval()
    x = torch.randn(4, 1, 16, 16)
    explained = torch._dynamo.explain(net)(x)
    assert (explained.graph_count, explained.graph_break_count) == (1, 0)
    traced = torch.compile(net, backend="eager", dynamic=False)
    torch.testing.assert_close(traced(x), net(x))
    torch._dynamo.reset()
