"""Surrogate layers and the binary networks taken from them (Stamatescu et al. 2020): gradients, the field
moments against sampled binary weights, batched cells, and the sampled / sign binary networks."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call

from papers.binary_surrogates.layers import (
    DeterministicBinaryNetwork,
    DeterministicSurrogateLinear,
    LRTSurrogateLinear,
    StochasticBinaryNetwork,
    SurrogateNetwork,
    sample_binary_weights,
)
from papers.binary_surrogates.theory import PHIS

F64 = torch.float64
Z_SE = 5.0  # Monte Carlo tolerance in standard errors: |z| > 5 has probability ≈ 6e-7 for a Gaussian estimate


def within(samples: torch.Tensor, expected: torch.Tensor, k: float = Z_SE) -> bool:
    """Each mean over the first axis of `samples` lies within k standard errors of `expected`."""
    se = samples.std(0) / math.sqrt(samples.shape[0])
    return bool(((samples.mean(0) - expected).abs() <= k * se).all())


@pytest.mark.parametrize("layer_type", [DeterministicSurrogateLinear, LRTSurrogateLinear])
@pytest.mark.parametrize("weight_map", ["tanh", "clip"])
@pytest.mark.parametrize(("cells", "binary_inputs"), [(None, True), (None, False), (3, True)])
def test_gradcheck(layer_type: type, weight_map: str, cells: int | None, binary_inputs: bool) -> None:
    """Gradients of h with respect to inputs, θ and b, the variance term included, in float64."""
    gen = torch.Generator().manual_seed(0)
    layer = layer_type(5, 3, sigma_m2=0.5, sigma_b2=0.1, cells=cells, weight_map=weight_map,
                       binary_inputs=binary_inputs, generator=gen).double()
    lead = () if cells is None else (cells,)
    x = torch.randn(*lead, 4, 5, generator=gen, dtype=F64)
    x = torch.tanh(x) if binary_inputs else x  # means of ±1 neurons lie in (−1, 1)
    theta = (layer.theta + 0.1 * torch.randn(layer.theta.shape, generator=gen, dtype=F64)).detach()  # off ±1
    extra = {"noise": torch.randn(*lead, 4, 3, generator=gen, dtype=F64)} if layer_type is LRTSurrogateLinear else {}

    def field(x: torch.Tensor, theta: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return functional_call(layer, {"theta": theta, "bias": bias}, (x,), extra)

    inputs = (x.requires_grad_(), theta.requires_grad_(), layer.bias.detach().clone().requires_grad_())
    assert torch.autograd.gradcheck(field, inputs)


def test_lrt_gradient_flows_through_the_variance_term() -> None:
    layer = LRTSurrogateLinear(6, 2, sigma_m2=0.5, generator=torch.Generator().manual_seed(0)).double()
    x = torch.tanh(torch.randn(3, 6, dtype=F64))
    noise = torch.randn(3, 2, dtype=F64)
    mean, var = layer.field_moments(x)
    (grad,) = torch.autograd.grad((mean + noise * var.sqrt()).sum(), layer.theta)
    (mean_only,) = torch.autograd.grad(layer.field_moments(x)[0].sum(), layer.theta)
    (full,) = torch.autograd.grad(layer(x, noise).sum(), layer.theta)
    assert torch.allclose(full, grad) and not torch.allclose(full, mean_only)


@pytest.mark.parametrize("binary_inputs", [True, False])
def test_field_moments_match_sampled_binary_weights(binary_inputs: bool) -> None:
    """h = N^{-1/2} S x + b over S ~ ±1 with E S = M (and x ~ ±1 with E x = x̄ for neuron inputs): the layer's
    mean and variance are exact, so they hold to Monte Carlo error at any width."""
    gen = torch.Generator().manual_seed(0)
    layer = DeterministicSurrogateLinear(40, 3, sigma_m2=0.6, sigma_b2=0.2, binary_inputs=binary_inputs,
                                         generator=gen).double()
    m = layer.weight_means().detach()
    x = torch.tanh(torch.randn(40, generator=gen, dtype=F64)) if binary_inputs else torch.randn(40, generator=gen,
                                                                                                 dtype=F64)
    samples = 20_000
    s = sample_binary_weights(m, samples, gen)  # (samples, 3, 40)
    xs = sample_binary_weights(x, samples, gen) if binary_inputs else x.expand(samples, 40)
    h = (s @ xs.unsqueeze(-1)).squeeze(-1) / math.sqrt(40) + layer.bias.detach()  # (samples, 3)
    mean, var = (t.detach() for t in layer.field_moments(x))
    assert within(h, mean)
    assert within((h - mean).square(), var)


def test_sampled_binary_weights_are_signs_with_the_given_means() -> None:
    m = torch.tensor([-1.0, -0.6, 0.0, 0.3, 1.0], dtype=F64)
    s = sample_binary_weights(m, 50_000, torch.Generator().manual_seed(0))
    assert s.shape == (50_000, 5) and set(s.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(s[:, 0], -torch.ones(50_000, dtype=F64)) and torch.equal(s[:, -1], torch.ones(50_000, dtype=F64))
    assert within(s[:, 1:4], m[1:4])


@pytest.mark.parametrize("layer_type", [DeterministicSurrogateLinear, LRTSurrogateLinear])
def test_batched_cells_equal_separate_layers(layer_type: type) -> None:
    gen = torch.Generator().manual_seed(0)
    sm, sb = torch.tensor([0.1, 0.5, 0.9]), torch.tensor([0.0, 0.1, 1.0])
    grid = layer_type(6, 4, sigma_m2=sm, sigma_b2=sb, cells=3, generator=gen)
    assert torch.allclose(grid.weight_means().square(), sm.reshape(3, 1, 1).expand(3, 4, 6))  # E M² = σ_m² per cell
    shared = torch.tanh(torch.randn(5, 6, generator=gen))
    per_cell = torch.tanh(torch.randn(3, 5, 6, generator=gen))
    noise = {"noise": torch.randn(3, 5, 4, generator=gen)} if layer_type is LRTSurrogateLinear else {}
    for x in (shared, per_cell):
        batched = grid(x, **noise)
        assert batched.shape == (3, 5, 4)
        for i in range(3):
            single = layer_type(6, 4)
            single.load_state_dict({"theta": grid.theta[i], "bias": grid.bias[i, 0]})
            cell_noise = {"noise": noise["noise"][i]} if noise else {}
            assert torch.allclose(batched[i], single(x if x.ndim == 2 else x[i], **cell_noise), atol=1e-6)


def test_batched_network_equals_per_cell_networks() -> None:
    """A tiny (σ_m², σ_b²) grid as one model gives each cell's own network's logits."""
    gen = torch.Generator().manual_seed(0)
    sm, sb = torch.tensor([0.2, 0.8]).repeat(2), torch.tensor([0.0, 0.5]).repeat_interleave(2)
    grid = SurrogateNetwork([7, 6, 5, 3], sigma_m2=sm, sigma_b2=sb, cells=4, generator=gen)
    x = torch.randn(9, 7, generator=gen)
    logits = grid(x)
    assert logits.shape == (4, 9, 3)
    for i in range(4):
        single = SurrogateNetwork([7, 6, 5, 3])
        single.load_state_dict({k: v[i] if k.endswith("theta") else v[i, 0] for k, v in grid.state_dict().items()})
        assert torch.allclose(logits[i], single(x), atol=1e-6)


def test_initialisation_is_validated() -> None:
    with pytest.raises(ValueError, match="weight_map"):
        DeterministicSurrogateLinear(3, 2, weight_map="sign")
    with pytest.raises(ValueError, match="must be <= 1"):
        DeterministicSurrogateLinear(3, 2, sigma_m2=1.5, weight_map="clip")
    with pytest.raises(ValueError, match="needs sigma_m2 < 1"):
        DeterministicSurrogateLinear(3, 2, sigma_m2=1.0)
    with pytest.raises(ValueError, match="must be >= 0"):
        DeterministicSurrogateLinear(3, 2, sigma_b2=-0.1)
    with pytest.raises(ValueError, match="per cell"):
        DeterministicSurrogateLinear(3, 2, sigma_m2=[0.1, 0.2], cells=3)
    with pytest.raises(ValueError, match="unknown surrogate"):
        SurrogateNetwork([3, 2], surrogate="exact")
    with pytest.raises(ValueError, match="unknown phi"):
        SurrogateNetwork([3, 2], phi="relu")
    clipped = DeterministicSurrogateLinear(3, 2, sigma_m2=1.0, weight_map="clip")
    assert torch.equal(clipped.weight_means().abs(), torch.ones(2, 3))


def test_lrt_noise_is_fresh_per_call_and_fixed_on_request() -> None:
    layer = LRTSurrogateLinear(4, 3, sigma_m2=0.5)
    x = torch.tanh(torch.randn(2, 4))
    assert not torch.equal(layer(x), layer(x))
    noise = torch.randn(2, 3)
    assert torch.equal(layer(x, noise), layer(x, noise))
    assert torch.equal(layer(x, torch.zeros(2, 3)), layer.field_moments(x)[0])


def test_deterministic_binary_network_uses_signs() -> None:
    gen = torch.Generator().manual_seed(0)
    surrogate = SurrogateNetwork([5, 4, 3], sigma_m2=0.3, sigma_b2=0.2, generator=gen)
    binary = DeterministicBinaryNetwork(surrogate)
    x = torch.randn(6, 5, generator=gen)
    w1, w2 = (torch.where(layer.weight_means() >= 0, 1.0, -1.0) for layer in surrogate.layers)
    b1, b2 = (layer.bias.detach() for layer in surrogate.layers)
    hidden = torch.where(x @ w1.T / math.sqrt(5) + b1 >= 0, 1.0, -1.0)
    assert torch.allclose(binary(x), hidden @ w2.T / 2 + b2)
    assert not binary(x).requires_grad


def test_stochastic_binary_network_with_saturated_means_is_the_sign_network() -> None:
    """|M| = 1 leaves nothing to sample: every sample is W = sign(M)."""
    gen = torch.Generator().manual_seed(0)
    surrogate = SurrogateNetwork([5, 8, 3], sigma_m2=1.0, sigma_b2=0.1, weight_map="clip", cells=2, generator=gen)
    x = torch.randn(4, 5, generator=gen)
    probabilities = StochasticBinaryNetwork(surrogate, samples=3)(x)
    assert probabilities.shape == (2, 4, 3)
    assert torch.allclose(probabilities, DeterministicBinaryNetwork(surrogate)(x).softmax(-1))


def test_stochastic_binary_network_is_a_fixed_ensemble_per_seed() -> None:
    gen = torch.Generator().manual_seed(0)
    surrogate = SurrogateNetwork([6, 10, 4], sigma_m2=0.4, generator=gen)
    x = torch.randn(3, 6, generator=gen)
    net = StochasticBinaryNetwork(surrogate, samples=5, seed=7)
    assert torch.equal(net(x), net(x)) and torch.allclose(net(x).sum(-1), torch.ones(3))
    assert not torch.equal(net(x), StochasticBinaryNetwork(surrogate, samples=5, seed=8)(x))
    assert torch.allclose(net(x[:1]), net(x)[:1])  # the same networks meet every batch


def test_sampled_sign_neurons_average_to_the_sign_surrogate() -> None:
    """Over sampled weights a first-layer sign neuron's mean is erf(h/√2) of the φ = "sign" deterministic
    surrogate: exact up to the CLT over a fan-in of 300 data values (O(1/N)), far below the Monte Carlo error of
    1000 samples. (Deeper layers see ±1 inputs, whose lattice sums leave an O(N^{-1/2}) CLT error.)"""
    gen = torch.Generator().manual_seed(0)
    surrogate = SurrogateNetwork([300, 50], phi="sign", sigma_m2=0.5, sigma_b2=0.1, generator=gen)
    x = torch.randn(4, 300, generator=gen)
    sampled = StochasticBinaryNetwork(surrogate, samples=1000).fields(x)[0]  # (1000, 4, 50)
    with torch.no_grad():
        mean = PHIS["sign"].fn(surrogate(x)).double()
    signs = torch.where(sampled >= 0, 1.0, -1.0).double()
    se = (1 - mean.square()).sqrt() / math.sqrt(1000)  # a ±1 variable with mean μ has variance 1 − μ²
    assert ((signs.mean(0) - mean).abs() <= Z_SE * se).all()
