"""Stochastic rainbow networks (White et al. 2024, Sci4DL): the safe polar factor, the paired layer and its
alignment, the pre-BN ResNets, evaluation, claims and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from common.config import compose
from common.errors import UserError
from common.linalg import polar_factor
from common.models.factconv import noise_std
from papers.stochastic_rainbow.claims import SMOKE_RANKS, _setting, measure, plan
from papers.stochastic_rainbow.layers import (
    Align,
    StochasticFactConv2d,
    redraw_all,
    reference_count,
    set_align_mode,
    set_reference_fraction,
    split_pair,
)
from papers.stochastic_rainbow.module import StochasticRainbowModule, build_net
from papers.stochastic_rainbow.resnet import StochasticResNet
from papers.stochastic_rainbow.study import fix_sample, sampling_study


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


def _summary(ensemble: float, k1: float, retrained: float, mean: float) -> dict[str, float]:
    return {"ensemble/acc": ensemble, "ensemble/acc_k1": k1, "sample/retrained_acc": retrained,
            "sample/acc_mean": mean}


def test_measure_reads_the_ensembles_and_the_rank_sweep(tmp_path: Path) -> None:
    plans = plan("smoke")
    results = {plans[0]: _summary(0.9, 0.8, 0.85, 0.8)}
    results |= {p: _summary(0.88, 0.7, 0.8, 0.8 - 0.1 / (i + 1)) for i, p in enumerate(plans[1:])}
    out = measure(results, "smoke", tmp_path)
    assert out["min_ensemble_minus_retrained"] == pytest.approx(0.05)
    assert out["min_ensemble_gain"] == pytest.approx(0.1)
    assert out["full_minus_largest_rank"] == pytest.approx(0.1 / len(SMOKE_RANKS))
    assert out["rank_gap_shrinkage"] == pytest.approx(0.1 - 0.1 / len(SMOKE_RANKS))
    assert "depth34_minus_depth9_widest" not in out
    assert (tmp_path / "depth_and_rank.png").stat().st_size > 0


def test_measure_compares_depths_at_the_largest_width(tmp_path: Path) -> None:
    results = {p: _summary(0.9, 0.8, 0.85, 0.5 + int(_setting(p).get("model.depth", 0)) / 100
                           + float(_setting(p).get("model.width_scale", 0)) / 10)
               for p in plan("paper")}
    out = measure(results, "paper", tmp_path)
    assert out["depth34_minus_depth9_widest"] == pytest.approx(0.25)
    assert "full_minus_largest_rank" in out


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
    args = ["trainer.max_epochs=1", "data.limit_train=200", "sampling.samples=2", "sampling.align_examples=100",
            "sampling.retrain_epochs=1"]
    assert repro("run", "stochastic_rainbow/resnet", *args) == 0
    [run_dir] = (run_root / "stochastic_rainbow/resnet").iterdir()
    metrics = json.loads((run_dir / "summary.json").read_text())["metrics"]
    assert {"sample/acc_mean", "sample/retrained_acc", "ensemble/acc_k2"} <= metrics.keys()
    assert repro("run", "stochastic_rainbow/resnet", "model.conv=conv", *args) == 0  # a baseline: no sampling


def test_a_diverging_run_stops_with_the_non_finite_loss_error(repro, run_root: Path, capsys) -> None:
    """At a huge learning rate the activations overflow within a few steps: the run ends with the suite's
    one-paragraph non-finite-loss error (exit 2), not a LAPACK convergence traceback from the alignment's SVD."""
    assert repro("run", "stochastic_rainbow/resnet", "trainer.max_epochs=1", "data.limit_train=400",
                 "optim.lr=1e4") == 2
    assert "Training stopped: the loss became" in capsys.readouterr().err


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
