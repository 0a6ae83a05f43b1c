"""Surrogates of stochastic binary networks, and the binary networks taken from them (Stamatescu et al.,
ICLR 2020, "Model").

A layer holds the means M ∈ [−1, 1] of binary weights S ∈ {±1} (M = tanh(θ), or M = clip(θ, −1, 1)) and
biases b. For inputs with means x̄_j and second moments s_j (s_j = 1 for ±1 neurons; s_j = x_j² for data,
which is fixed), the field h_i = N^{-1/2} Σ_j S_ij x_j + b_i has, exactly, over S and x,

    mean_i = N^{-1/2} Σ_j M_ij x̄_j + b_i,     var_i = N^{-1} Σ_j (s_j − M_ij² x̄_j²),

and is Gaussian by the CLT over the fan-in N. The two surrogates (theory.py gives their mean-field maps):

    deterministic: h_i = mean_i / √var_i,               next layer's means x̄ = φ(h);
    LRT:           h_i = mean_i + ε_i √var_i, ε ~ N(0, 1) drawn afresh for every input and unit, x̄ = φ(h).

Gradients flow through var as well as mean. The last layer's h are the logits.

Batched grids: with `cells=C` every parameter gets a leading cell axis, weights (C, out, in) and biases
(C, 1, out), each cell with its own σ_m², σ_b². All products are broadcasting matmuls, so inputs (batch, in)
shared by the cells, or (C, batch, in), give fields (C, batch, out): a grid of C networks trains as one model.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import torch
from torch import nn

from papers.binary_surrogates.theory import DEFAULT_PHI, SURROGATES, mean_function

Tensor = torch.Tensor
WEIGHT_MAPS = ("tanh", "clip")


def _per_cell(value: float | Sequence[float] | Tensor, cells: int | None, name: str) -> Tensor:
    """A variance as a tensor broadcasting against the parameters: shape () or, one per cell, (C, 1, 1)."""
    t = torch.as_tensor(value, dtype=torch.float64)
    if not bool((t >= 0).all()):
        raise ValueError(f"{name} must be >= 0, got {value}")
    if t.ndim == 0:
        return t
    if cells is None or t.shape != (cells,):
        raise ValueError(f"{name} per cell needs cells={len(t)} and shape (cells,), got {tuple(t.shape)}")
    return t.reshape(cells, 1, 1)


class SurrogateLinear(nn.Module):
    """Weight means M = map(θ) and biases b of one layer; `field_moments` gives the field's mean and variance."""

    def __init__(self, in_features: int, out_features: int, *, sigma_m2: float | Sequence[float] | Tensor = 0.5,
                 sigma_b2: float | Sequence[float] | Tensor = 0.0, cells: int | None = None,
                 weight_map: str = "tanh", binary_inputs: bool = True, generator: torch.Generator | None = None):
        super().__init__()
        if weight_map not in WEIGHT_MAPS:
            raise ValueError(f"unknown weight_map {weight_map!r}: choose one of {list(WEIGHT_MAPS)}")
        self.in_features, self.cells, self.weight_map = in_features, cells, weight_map
        self.binary_inputs = binary_inputs
        if cells is None:
            self.theta = nn.Parameter(torch.empty(out_features, in_features))
            self.bias = nn.Parameter(torch.empty(out_features))
        else:  # the bias's middle axis broadcasts over the batch
            self.theta = nn.Parameter(torch.empty(cells, out_features, in_features))
            self.bias = nn.Parameter(torch.empty(cells, 1, out_features))
        self.reset_parameters(sigma_m2, sigma_b2, generator)

    @torch.no_grad()
    def reset_parameters(self, sigma_m2: float | Sequence[float] | Tensor, sigma_b2: float | Sequence[float] | Tensor,
                         generator: torch.Generator | None = None) -> None:
        """M_ij = ±σ_m with random signs, so E M² = σ_m² exactly and |M| ≤ 1; b_i ~ N(0, σ_b²).

        σ_m², σ_b²: scalars, or one value per cell (shape (cells,)). The tanh map needs σ_m² < 1 (θ = atanh M).
        """
        sm, sb = _per_cell(sigma_m2, self.cells, "sigma_m2"), _per_cell(sigma_b2, self.cells, "sigma_b2")
        if bool((sm > 1).any()):
            raise ValueError(f"sigma_m2 = E M² must be <= 1 (weight means lie in [-1, 1]), got {sigma_m2}")
        if self.weight_map == "tanh" and bool((sm == 1).any()):
            raise ValueError("weight_map='tanh' needs sigma_m2 < 1 (θ = atanh(±1) is infinite); use weight_map='clip'")
        magnitude = torch.atanh(sm.sqrt()) if self.weight_map == "tanh" else sm.sqrt()  # θ for |M| = σ_m
        self.theta.random_(0, 2, generator=generator).mul_(2).sub_(1).mul_(magnitude.to(self.theta.dtype))
        self.bias.copy_(torch.randn(self.bias.shape, generator=generator, dtype=torch.float64) * sb.sqrt())

    def weight_means(self) -> Tensor:
        """M = tanh(θ) or clip(θ, −1, 1)."""
        return torch.tanh(self.theta) if self.weight_map == "tanh" else self.theta.clamp(-1, 1)

    def field_moments(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, var) of h = N^{-1/2} S x + b (module docstring); x: (..., batch, in) -> two (..., batch, out)."""
        m = self.weight_means()
        mean = x @ m.mT / math.sqrt(self.in_features) + self.bias
        if self.binary_inputs:  # N^{-1} Σ_j (1 − M_ij² x̄_j²)
            var = 1 - x.square() @ m.square().mT / self.in_features
        else:  # N^{-1} Σ_j x_j² (1 − M_ij²)
            var = x.square() @ (1 - m.square()).mT / self.in_features
        # rounding can push a vanishing variance (every |M_ij x̄_j| → 1) below zero
        return mean, var.clamp_min(torch.finfo(var.dtype).eps)


class DeterministicSurrogateLinear(SurrogateLinear):
    """h = mean / √var: the standardised field, whose sign-neuron mean is φ(h) (module docstring)."""

    def forward(self, x: Tensor) -> Tensor:
        mean, var = self.field_moments(x)
        return mean * var.rsqrt()


class LRTSurrogateLinear(SurrogateLinear):
    """h = mean + ε √var, ε ~ N(0, 1) per input and unit (local reparameterisation); `noise` fixes ε."""

    def forward(self, x: Tensor, noise: Tensor | None = None) -> Tensor:
        mean, var = self.field_moments(x)
        if noise is None:
            noise = torch.randn_like(mean)
        return mean + noise * var.sqrt()


def surrogate_layer(surrogate: str) -> type[SurrogateLinear]:
    """The layer class of a surrogate: "deterministic" or "lrt"."""
    if surrogate not in SURROGATES:
        raise ValueError(f"unknown surrogate {surrogate!r}: choose one of {list(SURROGATES)}")
    return DeterministicSurrogateLinear if surrogate == "deterministic" else LRTSurrogateLinear


class SurrogateNetwork(nn.Module):
    """Fully connected surrogate: widths [n_in, n_1, ..., n_L]; x̄^ℓ = φ(h^ℓ) between layers, h^L are the logits.

    binary_input: whether the inputs are means of ±1 neurons (s_j = 1) rather than fixed data (s_j = x_j²).
    """

    def __init__(self, widths: Sequence[int], *, surrogate: str = "deterministic", phi: str = DEFAULT_PHI,
                 sigma_m2: float | Sequence[float] | Tensor = 0.5, sigma_b2: float | Sequence[float] | Tensor = 0.0,
                 cells: int | None = None, weight_map: str = "tanh", binary_input: bool = False,
                 generator: torch.Generator | None = None):
        super().__init__()
        layer = surrogate_layer(surrogate)
        self.phi = mean_function(phi).fn
        self.layers = nn.ModuleList(
            layer(n_in, n_out, sigma_m2=sigma_m2, sigma_b2=sigma_b2, cells=cells, weight_map=weight_map,
                  binary_inputs=binary_input or i > 0, generator=generator)
            for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)))

    def fields(self, x: Tensor) -> list[Tensor]:
        """[h^1, ..., h^L] for inputs x: (batch, n_in) or (cells, batch, n_in)."""
        fields = [self.layers[0](x)]
        for layer in self.layers[1:]:
            fields.append(layer(self.phi(fields[-1])))
        return fields

    def forward(self, x: Tensor) -> Tensor:
        return self.fields(x)[-1]


def binary_sign(t: Tensor) -> Tensor:
    """±1 with sign(0) = +1, so a binary network never carries a zero."""
    return torch.where(t >= 0, 1.0, -1.0).to(t.dtype)


def sample_binary_weights(m: Tensor, samples: int, generator: torch.Generator | None = None) -> Tensor:
    """S ∈ {±1} with P(S = +1) = (1 + M)/2, so E S = M: (samples, *m.shape)."""
    u = torch.rand((samples, *m.shape), generator=generator, dtype=m.dtype, device=m.device)
    return torch.where(u < (1 + m) / 2, 1.0, -1.0).to(m.dtype)


def sign_network_fields(x: Tensor, weights: Iterable[Tensor], biases: Sequence[Tensor]) -> list[Tensor]:
    """Fields h^ℓ = N^{-1/2} W^ℓ x^{ℓ−1} + b^ℓ of a binary network with sign neurons x^ℓ = sign(h^ℓ), x^0 = x.

    `weights` may be a lazy iterable, so sampled weights live one layer at a time.
    """
    fields = []
    for w, b in zip(weights, biases, strict=True):
        fields.append(x @ w.mT / math.sqrt(w.shape[-1]) + b)
        x = binary_sign(fields[-1])
    return fields


class DeterministicBinaryNetwork(nn.Module):
    """The binary network of a surrogate: W = sign(M), its biases, sign neurons; returns the logits h^L."""

    def __init__(self, surrogate: SurrogateNetwork):
        super().__init__()
        self.surrogate = surrogate

    @torch.no_grad()
    def fields(self, x: Tensor) -> list[Tensor]:
        layers = self.surrogate.layers
        return sign_network_fields(x, [binary_sign(layer.weight_means()) for layer in layers],
                                   [layer.bias for layer in layers])

    def forward(self, x: Tensor) -> Tensor:
        return self.fields(x)[-1]


class StochasticBinaryNetwork(nn.Module):
    """K binary networks sampled from a surrogate: S^ℓ ~ ±1 with E S = M^ℓ, its biases, sign neurons.

    Averaged over the weights, a sign neuron's mean is erf(mean_i / √(2 var_i)), the deterministic surrogate
    with φ = "sign" (module docstring), to the accuracy of the CLT over the fan-in: O(1/N) on data, but
    O(N^{-1/2}) on ±1 inputs, whose sums live on a lattice. The K networks are drawn from `seed` at every
    call, so each batch meets the same ensemble without K stored copies of the weights. `forward` returns the
    class probabilities averaged over the K networks.
    """

    def __init__(self, surrogate: SurrogateNetwork, samples: int, seed: int = 0):
        super().__init__()
        self.surrogate, self.samples, self.seed = surrogate, samples, seed

    @torch.no_grad()
    def fields(self, x: Tensor) -> list[Tensor]:
        """[h^1, ..., h^L], each (samples, ..., batch, n_ℓ)."""
        layers = self.surrogate.layers
        generator = torch.Generator(device=layers[0].theta.device).manual_seed(self.seed)
        weights = (sample_binary_weights(layer.weight_means(), self.samples, generator) for layer in layers)
        return sign_network_fields(x, weights, [layer.bias for layer in layers])

    def forward(self, x: Tensor) -> Tensor:
        return self.fields(x)[-1].softmax(-1).mean(0)
