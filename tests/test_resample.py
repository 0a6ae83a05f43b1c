"""Rainbow resampling numerics against independent derivations (closed forms, Monte Carlo)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from common.layerwise import channel_samples, cross_covariance, evaluate, reestimate_norm_stats, rotate_input
from common.linalg import procrustes, sqrt_psd
from common.models.convnet import ConvNet
from common.models.mlp import MLP
from common.outcomes import load_outcomes
from papers.rainbow.resample import effective_rank, fit_covariance, isotropic, resample, sample_weights
from papers.rainbow.study import VARIANTS, resampling_study


def random_orthogonal(n: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def test_procrustes_recovers_a_known_rotation() -> None:
    # x_ref = A x_new exactly  =>  K = A E[x xᵀ], and the polar factor of K is A (closed form)
    a_true = random_orthogonal(12, 0)
    x_new = torch.randn(500, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x_ref = x_new @ a_true.T
    a_hat = procrustes(x_ref.T @ x_new / len(x_new))
    torch.testing.assert_close(a_hat, a_true, atol=1e-10, rtol=0)


def test_procrustes_minimises_the_alignment_error() -> None:
    gen = torch.Generator().manual_seed(2)
    x_new, x_ref = torch.randn(300, 6, generator=gen, dtype=torch.float64), torch.randn(300, 6, generator=gen,
                                                                                      dtype=torch.float64)
    a_hat = procrustes(x_ref.T @ x_new)
    best = (x_ref - x_new @ a_hat.T).square().sum()
    for seed in range(20):  # no other orthogonal matrix does better
        other = random_orthogonal(6, 100 + seed)
        assert best <= (x_ref - x_new @ other.T).square().sum()


def test_sampled_rows_have_covariance_c_monte_carlo() -> None:
    gen = torch.Generator().manual_seed(3)
    basis = torch.randn(8, 3, generator=gen, dtype=torch.float64)
    cov = basis @ basis.T / 3 + 0.05 * torch.eye(8, dtype=torch.float64)  # low rank + ridge
    n = 40_000
    rows = sample_weights(sqrt_psd(cov), n, gen)
    emp = rows.T @ rows / n
    # Wishart: Var(emp_ij) = (C_ij² + C_ii C_jj) / n; allow 5 standard errors per entry
    se = ((cov.square() + torch.outer(cov.diagonal(), cov.diagonal())) / n).sqrt()
    assert ((emp - cov).abs() / se).max() < 5
    torch.testing.assert_close(rows.mean(0), torch.zeros(8, dtype=torch.float64), atol=5 * cov.diagonal().max().sqrt()
                               / math.sqrt(n), rtol=0)


def test_fit_covariance_scale_matches_trained_rows() -> None:
    # the definition C = WᵀW / N (uncentred, 1/N-scaled: E[W̃ᵀW̃] = WᵀW is the Monte Carlo test above)
    w = torch.randn(50, 7, dtype=torch.float64)
    torch.testing.assert_close(fit_covariance([w]), w.T @ w / 50)
    w2 = torch.randn(50, 7, dtype=torch.float64)
    torch.testing.assert_close(fit_covariance([w, w2]), (w.T @ w + w2.T @ w2) / 100)


def test_rank_truncation_and_effective_rank() -> None:
    eig = torch.tensor([10.0, 5.0, 1.0, 0.5, 0.1], dtype=torch.float64)
    q = random_orthogonal(5, 4)
    cov = q @ torch.diag(eig) @ q.T
    # rows realising cov exactly: W = sqrt(N) · C^{1/2}  =>  WᵀW / N = C
    w = sqrt_psd(cov) * math.sqrt(5)
    truncated = fit_covariance([w], rank=2)
    torch.testing.assert_close(torch.linalg.eigvalsh(truncated).flip(0)[:2], eig[:2])
    assert torch.linalg.matrix_rank(truncated) == 2
    assert effective_rank(cov, 0.9) == 2  # (10 + 5) / 16.6 = 0.90
    assert effective_rank(torch.eye(10, dtype=torch.float64), 0.9) == 9
    torch.testing.assert_close(isotropic(cov).diagonal(), torch.full((5,), eig.sum() / 5, dtype=torch.float64))


def test_rotate_input_equals_rotating_the_input_conv() -> None:
    gen = torch.Generator().manual_seed(5)
    w = torch.randn(4, 6, 3, 3, generator=gen, dtype=torch.float64)
    x_new = torch.randn(2, 6, 5, 5, generator=gen, dtype=torch.float64)
    a = random_orthogonal(6, 6)
    x_ref = torch.einsum("dc,bchw->bdhw", a, x_new)  # x_ref = A x_new, per pixel
    torch.testing.assert_close(F.conv2d(x_new, rotate_input(w, a)), F.conv2d(x_ref, w))


def test_rotate_input_flattened_readout() -> None:
    w = torch.randn(10, 4 * 9, dtype=torch.float64)
    x_new = torch.randn(3, 4, 3, 3, dtype=torch.float64)
    a = random_orthogonal(4, 7)
    x_ref = torch.einsum("dc,bchw->bdhw", a, x_new)
    torch.testing.assert_close(x_new.flatten(1) @ rotate_input(w, a).T, x_ref.flatten(1) @ w.T)


def test_channel_samples_shapes() -> None:
    assert channel_samples(torch.randn(5, 7)).shape == (5, 7)
    assert channel_samples(torch.randn(5, 3, 4, 4)).shape == (80, 3)
    z = torch.randn(5, 3, 4, 4, dtype=torch.complex64)
    samples = channel_samples(z)
    assert samples.shape == (160, 3)
    torch.testing.assert_close(samples.square().sum(), z.abs().square().sum())


@pytest.mark.parametrize("make", [
    lambda: MLP((1, 8, 8), 10, width=32, depth=3, norm="none"),
    lambda: ConvNet((1, 8, 8), 10, width=8, depth=2, norm="batch", kernel_size=3),
])
def test_resampling_nothing_reproduces_the_reference(make) -> None:
    # n_sampled = 0: every layer is the trained one, every alignment must come out as the identity
    torch.manual_seed(0)
    net = make().double().eval()
    x = torch.randn(256, 1, 8, 8, dtype=torch.float64)
    batches = lambda: iter(x.split(64))  # noqa: E731
    reestimate_norm_stats(net, batches)  # the reference's BN statistics, estimated like the copy's
    copy = resample(net, batches, 0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(copy(x), net(x), atol=1e-8, rtol=1e-6)
    k = cross_covariance(net, net.weight_layers()[1], copy, copy.weight_layers()[1], batches)
    torch.testing.assert_close(procrustes(k), torch.eye(k.shape[0], dtype=torch.float64), atol=1e-6, rtol=0)


def test_study_saves_per_example_scores_that_average_to_its_accuracies(tmp_path) -> None:
    # outcomes.npz: trained 1/0 per example, each variant the fraction of its samples right; their means are the
    # accuracies the study reports, and every variant scores the same test examples
    torch.manual_seed(0)
    net = MLP((1, 8, 8), 10, width=16, depth=3, norm="none").eval()
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(96, 1, 8, 8, generator=gen), torch.randint(0, 10, (96,), generator=gen)
    cfg = OmegaConf.create({"samples": 3, "rank": None, "retrain_epochs": 1, "retrain_lr": 0.01, "batch_size": 32,
                            "align_examples": None})
    metrics = resampling_study(net, (x[:64], y[:64]), (x[64:], y[64:]), cfg, 0, tmp_path)
    scores = load_outcomes(tmp_path)
    assert set(scores) == {"trained", *VARIANTS} and {len(s) for s in scores.values()} == {32}
    assert set(np.unique(scores["trained"])) <= {0.0, 1.0}
    assert scores["trained"].mean() == pytest.approx(evaluate(net, x[64:], y[64:], 32))
    for variant in VARIANTS:
        assert set(np.round(3 * np.unique(scores[variant]), 6)) <= {0.0, 1.0, 2.0, 3.0}  # k of 3 samples right
        assert scores[variant].mean() == pytest.approx(metrics[f"resample/{variant}_acc"], abs=1e-6)
    assert (tmp_path / "figures" / "resampling.png").is_file()
