"""One recurrent core for the four models of Geadah et al. (2024), Sec. "Models" of the note:

    a_t = U x_t + W h_{t−1} + b (+ perturbation),   h_t = φ(a_t; n_t, s_t),   h_0 = 0,

and the variants differ only in where (n, s) come from (`GainSource`):
1. fixed: ReLU, tanh, softplus, or γ with fixed (n, s) (`FixedGains`, no parameters);
2. homogeneous: one learned (n, s) pair for the layer (`LearnedGains`, shape ());
3. heterogeneous: one learned (n, s) per neuron, all starting from ONE draw n₀ = 5 + 2·U(0, 1), s₀ = 0
   (`LearnedGains`, shape (N,));
4. adaptive (ARU): every neuron runs a private copy of one controller (weights shared, state per neuron)
   g^i_t = tanh(U_g a^i_t + W_g g^i_{t−1} + b_g), n^i_t = w_n·g^i_t + b_n, s^i_t = w_s·g^i_t + b_s
   (`AdaptiveGains`).
W (and W_g) start as Henaff et al.'s block-diagonal rotations (`henaff_orthogonal`), U kaiming normal.
The input term U x_t + b of all steps is one matmul before the loop; the loop does only the recurrence.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from papers.adaptive_rnn.activations import constrain, gamma, gamma_slope

Activation = Callable[[Tensor, Tensor, Tensor], Tensor]
# name -> (φ(a; n, s), ∂φ/∂a): n, s are ignored by the fixed shapes
ACTIVATIONS: dict[str, tuple[Activation, Activation]] = {
    "gamma": (gamma, gamma_slope),
    "relu": (lambda a, n, s: torch.relu(a), lambda a, n, s: (a > 0).to(a.dtype)),
    "tanh": (lambda a, n, s: torch.tanh(a), lambda a, n, s: torch.cosh(a) ** -2),  # 1 − tanh² without cancellation
    "softplus": (lambda a, n, s: F.softplus(a), lambda a, n, s: torch.sigmoid(a)),
}
MODELS = ("fixed", "homogeneous", "heterogeneous", "adaptive")


def henaff_orthogonal(size: int, generator: torch.Generator | None = None) -> Tensor:
    """W = expm(A), A skew-symmetric with A[i, i+1] = −A[i+1, i] ~ U(−π, 0) for i = 0, 2, 4, …: a block-diagonal
    matrix of 2 × 2 rotations (Henaff, Szlam, LeCun 2016), orthogonal."""
    a = torch.zeros(size, size, dtype=torch.float64)
    i = torch.arange(0, size - 1, 2)
    theta = -math.pi * torch.rand(len(i), generator=generator, dtype=torch.float64)
    a[i, i + 1], a[i + 1, i] = theta, -theta
    return torch.linalg.matrix_exp(a).float()


def initial_gain(generator: torch.Generator | None = None) -> float:
    """n₀ = 5 + 2·U(0, 1): one draw, shared by every neuron that starts from it."""
    return 5 + 2 * torch.rand((), generator=generator).item()


class GainSource(nn.Module):
    """Where (n, s) come from. Static sources give them once (`static`); the adaptive one step by step."""

    adaptive = False

    def static(self) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def project_(self) -> None:
        """Pull learned (n, s) back into the constrained range after an optimizer step (if constrained)."""


class FixedGains(GainSource):
    def __init__(self, n: float, s: float) -> None:
        super().__init__()
        self.register_buffer("n", torch.tensor(float(n)))
        self.register_buffer("s", torch.tensor(float(s)))

    def static(self) -> tuple[Tensor, Tensor]:
        return self.n, self.s


class LearnedGains(GainSource):
    """(n, s) as parameters of shape `shape` (() homogeneous, (N,) heterogeneous), all from one n₀, s₀ = 0.

    Constrained: the forward clamps to n ≥ N_MIN, s ∈ [0, 1], and `project_` clamps the parameters themselves
    after each step, so the clamp is the identity in the forward and a neuron at s = 0 keeps its gradient.
    """

    def __init__(self, shape: tuple[int, ...], constrained: bool, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.constrained = constrained
        self.n = nn.Parameter(torch.full(shape, initial_gain(generator)))
        self.s = nn.Parameter(torch.zeros(shape))

    def static(self) -> tuple[Tensor, Tensor]:
        return constrain(self.n, self.s) if self.constrained else (self.n, self.s)

    @torch.no_grad()
    def project_(self) -> None:
        if self.constrained:
            n, s = constrain(self.n, self.s)
            self.n.copy_(n)
            self.s.copy_(s)


class AdaptiveGains(GainSource):
    """The ARU controller, shared by all neurons, state g ∈ R^K per neuron (note, model 4).

    Init: W_g Henaff, U_g kaiming normal, b_g = 0; w_n xavier (gain 0.1), b_n = n₀; w_s xavier (gain 0.01), b_s = 0.
    """

    adaptive = True

    def __init__(self, width: int, constrained: bool, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.constrained = constrained
        self.u_g = nn.Parameter(nn.init.kaiming_normal_(torch.empty(width, 1), generator=generator).squeeze(1))
        self.w_g = nn.Parameter(henaff_orthogonal(width, generator))
        self.b_g = nn.Parameter(torch.zeros(width))
        self.w_n = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, width), gain=0.1, generator=generator)[0])
        self.b_n = nn.Parameter(torch.tensor(initial_gain(generator)))
        self.w_s = nn.Parameter(nn.init.xavier_normal_(torch.empty(1, width), gain=0.01, generator=generator)[0])
        self.b_s = nn.Parameter(torch.zeros(()))

    def init_state(self, rows: int) -> Tensor:
        return self.b_g.new_zeros(rows, len(self.b_g))

    def step(self, a: Tensor, g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(n_t, s_t, g_t) from a_t (B, N) and g_{t−1} (B·N, K): every neuron's scalar a^i_t drives its own copy."""
        # a in the parameters' dtype: under bf16 autocast it arrives in bfloat16, and torch.addr's backward fails
        # on mixed dtypes
        g = torch.tanh(torch.addmm(torch.addr(self.b_g, a.reshape(-1).to(self.u_g.dtype), self.u_g), g, self.w_g.T))
        n = (g @ self.w_n + self.b_n).view_as(a)
        s = (g @ self.w_s + self.b_s).view_as(a)
        if self.constrained:
            n, s = constrain(n, s)
        return n, s, g


class RecurrentCore(nn.Module):
    """The recurrent layer of N units: `input_term` (all steps at once), then `run` (the recurrence)."""

    def __init__(self, input_dim: int, width: int, activation: str, gains: GainSource,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.width = width
        self.activation = activation
        self.phi, self.slope = ACTIVATIONS[activation]
        self.gains = gains
        self.u = nn.Parameter(nn.init.kaiming_normal_(torch.empty(width, input_dim), generator=generator))
        self.w = nn.Parameter(henaff_orthogonal(width, generator))
        self.b = nn.Parameter(torch.zeros(width))

    def input_term(self, x: Tensor) -> Tensor:
        """U x_t + b for every step: x (B, T, D) -> (T, B, N), contiguous in time for the loop."""
        return torch.addmm(self.b, x.transpose(0, 1).reshape(-1, x.shape[-1]), self.u.T).view(
            x.shape[1], x.shape[0], self.width)

    def run(self, pre: Tensor, record: bool = False) -> tuple[Tensor, dict[str, Tensor]]:
        """The recurrence over pre-activation input terms pre (T, B, N) (perturbations already added).

        Returns h_T (B, N) and, with `record`, the traces {"a", "h", "n", "s"} (T, B, N) of every step.
        """
        steps, batch, _ = pre.shape
        h = pre.new_zeros(batch, self.width)
        inputs = pre.unbind(0)  # one backward node for all steps (indexing pre[t] costs a (T, B, N) zero-fill each)
        w_t = self.w.T
        trace: dict[str, list[Tensor]] = {"a": [], "h": [], "n": [], "s": []}
        if self.gains.adaptive:
            g = self.gains.init_state(batch * self.width)
            for pre_t in inputs:
                a = torch.addmm(pre_t, h, w_t)
                n, s, g = self.gains.step(a, g)
                h = self.phi(a, n, s)
                if record:
                    for key, value in (("a", a), ("h", h), ("n", n), ("s", s)):
                        trace[key].append(value)
        else:
            n, s = self.gains.static()
            for pre_t in inputs:
                a = torch.addmm(pre_t, h, w_t)
                h = self.phi(a, n, s)
                if record:
                    trace["a"].append(a)
                    trace["h"].append(h)
            if record:
                trace["n"] = [n.expand_as(h)] * steps
                trace["s"] = [s.expand_as(h)] * steps
        return h, ({k: torch.stack(v) for k, v in trace.items()} if record else {})


def build_gains(model: str, width: int, n: float, s: float, controller_width: int, constrained: bool,
                generator: torch.Generator | None = None) -> GainSource:
    """The GainSource of one of MODELS (the config is validated by `papers.adaptive_rnn.tasks.check_rnn`)."""
    if model == "fixed":
        return FixedGains(n, s)
    if model == "homogeneous":
        return LearnedGains((), constrained, generator)
    if model == "heterogeneous":
        return LearnedGains((width,), constrained, generator)
    return AdaptiveGains(controller_width, constrained, generator)
