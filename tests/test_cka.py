"""CKA toolkit against independent derivations: brute-force U-statistic, numpy median, invariances."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torch import nn

from common.metrics.cka import (
    MinibatchCKA,
    batch_cka_map,
    cka,
    cka_map,
    gram_linear,
    gram_rbf,
    hsic,
)

VARIANTS = [("linear", False), ("linear", True), ("rbf", False), ("rbf", True)]


def data(n: int = 60, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64)
    y = torch.tanh(x @ torch.randn(d, d + 3, generator=gen, dtype=torch.float64)) + 0.3 * torch.randn(
        n, d + 3, generator=gen, dtype=torch.float64)
    return x, y


def orthogonal(d: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64))
    return q * torch.sign(r.diagonal())


def test_unbiased_hsic_equals_the_brute_force_u_statistic() -> None:
    # HSIC = E[k_ij l_ij] + E[k_ij] E[l_qr] − 2 E[k_ij l_iq] over distinct indices (Song et al. 2012)
    x, y = data(n=7, d=3)
    k, l = gram_linear(x), gram_rbf(y, 0.8)
    total, count = 0.0, 0
    for i, j, q, r in itertools.permutations(range(7), 4):
        total += k[i, j] * l[i, j] + k[i, j] * l[q, r] - 2 * k[i, j] * l[i, q]
        count += 1
    torch.testing.assert_close(hsic(k, l, debiased=True), total / count)


def test_biased_hsic_is_the_centred_trace() -> None:
    x, y = data(n=9)
    k, l = gram_linear(x), gram_linear(y)
    h = torch.eye(9, dtype=torch.float64) - 1 / 9
    torch.testing.assert_close(hsic(k, l), torch.trace(k @ h @ l @ h) / 64)


def test_rbf_bandwidth_uses_numpys_median_of_all_squared_distances() -> None:
    x, _ = data(n=10, d=4)
    xn = x.numpy()
    sq = ((xn[:, None, :] - xn[None, :, :]) ** 2).sum(-1)
    expected = np.exp(-sq / (2 * 0.5**2 * np.median(sq)))
    np.testing.assert_allclose(gram_rbf(x, 0.5).numpy(), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("kernel", "debiased"), VARIANTS)
def test_identity_symmetry_and_invariances(kernel: str, debiased: bool) -> None:
    x, y = data()
    kw = {"kernel": kernel, "debiased": debiased, "threshold": 0.7 if kernel == "rbf" else None}
    torch.testing.assert_close(cka(x, x, **kw), torch.tensor(1.0, dtype=torch.float64))
    base = cka(x, y, **kw)
    torch.testing.assert_close(cka(y, x, **kw), base)
    torch.testing.assert_close(cka(x, y @ orthogonal(y.shape[1], 1), **kw), base)
    torch.testing.assert_close(cka(3.7 * x, y, **kw), base)
    torch.testing.assert_close(cka(x + 5.0, y - 2.0, **kw), base)  # a common feature shift


def test_not_invariant_to_a_general_invertible_map() -> None:
    x, _ = data(n=200, d=6)
    m = torch.diag(torch.tensor([1.0, 1, 1, 1, 1, 30], dtype=torch.float64)) @ orthogonal(6, 2)
    assert torch.linalg.matrix_rank(m) == 6
    assert cka(x, x @ m) < 0.6  # the same information, far from CKA = 1


@pytest.mark.parametrize("debiased", [False, True])
def test_linear_feature_space_equals_gram_space(debiased: bool) -> None:
    x, y = data(n=50, d=5)  # n > d: the feature-space path
    k, l = gram_linear(x - x.mean(0)), gram_linear(y - y.mean(0))
    gram_value = hsic(k, l, debiased) / (hsic(k, k, debiased) * hsic(l, l, debiased)).sqrt()
    torch.testing.assert_close(cka(x, y, debiased=debiased), gram_value)
    wide_x, wide_y = data(n=12, d=30)  # n < d: the Gram path, same formula
    kw, lw = gram_linear(wide_x), gram_linear(wide_y)
    torch.testing.assert_close(cka(wide_x, wide_y, debiased=debiased),
                               hsic(kw, lw, debiased) / (hsic(kw, kw, debiased) * hsic(lw, lw, debiased)).sqrt())


def test_batch_map_entries_equal_pairwise_debiased_cka() -> None:
    x, y = data(n=40)
    feats_a, feats_b = [x, torch.relu(x)], [y, y[:, :4], torch.tanh(y)]
    cmap = batch_cka_map(feats_a, feats_b)
    for i, a in enumerate(feats_a):
        for j, b in enumerate(feats_b):
            torch.testing.assert_close(cmap[i, j], cka(a, b, debiased=True))


@pytest.mark.parametrize("offset", [0.0, 10.0, 100.0])
def test_float32_with_offsets_matches_float64(offset: float) -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.relu(torch.randn(500, 64, generator=gen)) + offset
    y = torch.relu(x[:, :32] @ torch.randn(32, 48, generator=gen) + torch.randn(500, 48, generator=gen)) + offset
    exact = batch_cka_map([x.double()], [y.double()])
    torch.testing.assert_close(batch_cka_map([x], [y]), exact, atol=1e-5, rtol=0)
    torch.testing.assert_close(cka(x, y, debiased=True), cka(x.double(), y.double(), debiased=True), atol=1e-5,
                               rtol=0)


def test_minibatch_map_converges_to_the_full_data_value() -> None:
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(2000, 10, generator=gen, dtype=torch.float64)
    y = torch.relu(x @ torch.randn(10, 12, generator=gen, dtype=torch.float64)) + torch.randn(
        2000, 12, generator=gen, dtype=torch.float64)
    full = cka(x, y, debiased=True)
    errors = []
    for size in (20, 100, 500, 2000):
        metric = MinibatchCKA(1, 1)
        for xb, yb in zip(x.split(size), y.split(size), strict=True):
            metric.update([xb], [yb])
        errors.append((metric.compute() - full).abs().item())
    assert errors == sorted(errors, reverse=True)  # shrinks as batches grow
    assert errors[-1] < 1e-12  # one batch of all the data is the full-data estimator


def test_states_merge_like_ddp_ranks() -> None:
    x, y = data(n=120)
    whole = MinibatchCKA(2, 1)
    rank0, rank1 = MinibatchCKA(2, 1), MinibatchCKA(2, 1)
    for i, (xb, yb) in enumerate(zip(x.split(20), y.split(20), strict=True)):
        for metric in (whole, rank0 if i % 2 else rank1):
            metric.update([xb, xb.square()], [yb])
    rank0.merge_state(rank1)  # the sum reduction DDP applies
    torch.testing.assert_close(rank0.compute(), whole.compute())


def test_map_carries_gradients() -> None:
    x, y = data(n=8, d=3)
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: batch_cka_map([a, torch.tanh(a)], [y]), (x,))
    assert torch.autograd.gradcheck(lambda a: cka(a, y, kernel="rbf", threshold=0.5), (x,))


def test_cka_map_of_two_models() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    other = nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 3))
    batches = [(torch.randn(50, 5), torch.zeros(50)) for _ in range(4)]
    same = cka_map(net, net, batches, ["1", "3", "4"], ["1", "3", "4"])
    torch.testing.assert_close(same.diagonal(), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(same, same.T)
    cross = cka_map(net, other, batches, ["1", "3"], ["1", "2"])
    assert cross.shape == (2, 2) and torch.isfinite(cross).all()


class _Residual(nn.Module):
    """y = relu(a(x)) + x: "add" is a graph node with no module, reachable by fx only."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(6, 6)
        self.b = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)) + x)


def test_fx_extractor_matches_hooks_and_reaches_functional_nodes() -> None:
    torch.manual_seed(0)
    net = _Residual().eval()
    batches = [torch.randn(40, 6) for _ in range(3)]
    by_hooks = cka_map(net, net, batches, ["a", "b"], ["a", "b"])
    by_fx = cka_map(net, net, batches, ["a", "b"], ["a", "b"], extractor="fx")
    torch.testing.assert_close(by_fx, by_hooks)
    with_add = cka_map(net, net, batches, ["add"], ["a"], extractor="fx")
    h = [torch.relu(net.a(x)) + x for x in batches]
    metric = MinibatchCKA(1, 1)
    for x, hx in zip(batches, h, strict=True):
        metric.update([hx.detach()], [net.a(x).detach()])
    torch.testing.assert_close(with_add.reshape(()), metric.compute())
    seq = nn.Sequential(nn.Sequential(nn.Linear(6, 5), nn.ReLU()), nn.Linear(5, 2)).eval()
    torch.testing.assert_close(cka_map(seq, seq, batches, ["0"], ["1"], extractor="fx"),  # "0" = its last node
                               cka_map(seq, seq, batches, ["0.1"], ["1"], extractor="hooks"))


@pytest.mark.parametrize(("call", "message"), [
    (lambda: cka(torch.randn(10, 3), torch.randn(9, 3)), "same examples"),
    (lambda: cka(torch.randn(10), torch.randn(10)), r"must be \(n, d\)"),
    (lambda: cka(torch.full((10, 3), float("nan")), torch.randn(10, 3)), "NaN or inf"),
    (lambda: cka(torch.randn(3, 2), torch.randn(3, 2), debiased=True), "n >= 4"),
    (lambda: cka(torch.randn(10, 3), torch.randn(10, 3), kernel="poly"), "unknown kernel"),
    (lambda: cka_map(nn.Linear(2, 2), nn.Linear(2, 2), [], [""], [""]), "empty loader"),
    (lambda: cka_map(nn.Sequential(nn.Linear(2, 2)), nn.Linear(2, 2), [torch.randn(5, 2)], ["7"], [""]),
     r"no layer named \['7'\].*valid names: 0"),
    (lambda: cka_map(_Residual(), _Residual(), [torch.randn(5, 6)], ["relu_1"], ["a"], extractor="fx"),
     r"no graph node named \['relu_1'\].*valid names: x, a, relu, add, b"),
    (lambda: cka_map(_Residual(), _Residual(), [torch.randn(5, 6)], ["a"], ["a"], extractor="jit"),
     "unknown extractor"),
    (lambda: cka_map(nn.Sequential(nn.Linear(2, 2)), nn.Linear(2, 2), [torch.tensor([[1.0, float("inf")]] * 5)],
                     ["0"], [""]), "layer '0' of model_a hold NaN or inf"),
])
def test_bad_input_is_a_clear_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()
