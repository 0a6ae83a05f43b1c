"""The three analyses of Geadah et al. (2024), Sec. "Analyses" of the note, as plain torch on a trained core.

- Gain scaling: the neuron-mean adapted gain n̄ and saturation s̄ in steady state (the second half of the
  sequence) under pre-activation noise N(0, ξ²), with the fits n̄ = a ξ^(−b) + c and s̄ = a e^(−b ξ) + c.
- Fractional-order differentiation: the response h to a step drive is read as the fractional integral of the
  drive, D^α h ≈ drive, with D^α by FFT; α by grid search.
- Maximal Lyapunov exponent by the QR method on the hidden-state Jacobian ∂h_t/∂h_{t−1} = diag(φ'(a_t)) W with
  n_t, s_t frozen at their values along the trajectory (the controller state's own dependence on h is left
  out: the note's "fixed" Jacobian), in bits (log base 2, as the precursor paper).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from omegaconf import DictConfig
from scipy.optimize import curve_fit
from torch import Tensor

from papers.adaptive_rnn.rnn import RecurrentCore

# ---------------------------------------------------------------- gain scaling


@torch.no_grad()
def gain_scaling(core: RecurrentCore, x: Tensor, noises: list[float], seed: int) -> dict[str, list[float]]:
    """n̄(ξ), s̄(ξ): mean of n_t, s_t over neurons, examples and the second half of the steps of pixel
    sequences x (B, T, 1) with N(0, ξ²) added to every pre-activation."""
    generator = torch.Generator(device=x.device).manual_seed(seed)
    pre = core.input_term(x)
    out: dict[str, list[float]] = {"xi": list(noises), "n": [], "s": []}
    for xi in noises:
        _, trace = core.run(pre + xi * torch.randn(pre.shape, generator=generator, device=x.device), record=True)
        half = len(pre) // 2
        out["n"].append(trace["n"][half:].mean().item())
        out["s"].append(trace["s"][half:].mean().item())
    return out


def _fit(model: Callable[..., np.ndarray], xi: list[float], y: list[float], p0: tuple[float, ...]) -> list[float]:
    try:
        params, _ = curve_fit(model, np.asarray(xi, float), np.asarray(y, float), p0=p0, maxfev=20000)
        return [float(p) for p in params]
    except (RuntimeError, ValueError, TypeError):  # no convergence, or too few points: no fit
        return [math.nan] * len(p0)


def power_law(xi: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """n̄ = a ξ^(−b) + c."""
    return a * np.power(xi, -b) + c


def exponential(xi: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    """s̄ = a e^(−b ξ) + c."""
    return a * np.exp(-b * xi) + c


def fit_gain_scaling(curves: dict[str, list[float]]) -> dict[str, list[float]]:
    """Least-squares (a, b, c) of the power law for n̄ and the exponential for s̄ (ξ ≥ 1); NaN if it fails."""
    xi = curves["xi"]
    n, s = curves["n"], curves["s"]
    return {"n": _fit(power_law, xi, n, (n[0] - n[-1], 0.5, n[-1])),
            "s": _fit(exponential, xi, s, (s[0] - s[-1], 0.1, s[-1]))}


# ---------------------------------------------------------------- fractional order


def fractional_derivative(signal: Tensor, alpha: float) -> Tensor:
    """D^α of signals (…, T) along the last axis: Re ifft(fft(r) · (i 2π f)^α), f = fftfreq(T), the
    zero-frequency bin set to 0 (negative α: a fractional integral)."""
    steps = signal.shape[-1]
    f = torch.fft.fftfreq(steps, dtype=torch.float64, device=signal.device)
    factor = torch.zeros(steps, dtype=torch.complex128, device=signal.device)
    nonzero = f != 0
    factor[nonzero] = (2j * math.pi * f[nonzero].to(torch.complex128)) ** alpha
    return torch.fft.ifft(torch.fft.fft(signal.double()) * factor).real


def _zscore(x: Tensor) -> Tensor:
    return (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True).clamp_min(1e-12)


def fit_order(response: Tensor, drive: Tensor, alphas: Tensor, window: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """α of each response (…, T): the grid value minimising the MSE between D^α response and the drive (T,),
    both z-scored over the steps [window[0], window[1]) (the fit is blind to scale and offset).
    Returns (α (…,), MSE (…, len(alphas)))."""
    lo, hi = window
    target = _zscore(drive.double()[lo:hi])
    errors = torch.stack([((_zscore(fractional_derivative(response, a.item())[..., lo:hi]) - target) ** 2).mean(-1)
                          for a in alphas], -1)
    return alphas.double()[errors.argmin(-1)], errors


@torch.no_grad()
def fractional_protocol(core: RecurrentCore, cfg: DictConfig, seed: int) -> dict[str, Tensor]:
    """The note's protocol: each neuron a private input (U replaced by diag(U)), x_i ~ N(μ, σ_μ²) fixed plus
    N(0, σ²) noise per step, a step drive ξ on window, `trials` trials; the trial-mean response of every
    neuron (T, N) and of the network (neuron mean), with their α (network on [0, 1], neurons on [−1, 1])."""
    generator = torch.Generator().manual_seed(seed)
    steps, width = cfg.steps, core.width
    device = core.w.device
    base = cfg.input_mean + cfg.input_mean_std * torch.randn(width, generator=generator)
    x = base + cfg.input_noise * torch.randn(steps, cfg.trials, width, generator=generator)  # (T, trials, N)
    t = torch.arange(steps)
    drive = ((t > cfg.window[0]) & (t < cfg.window[1])).float()
    pre = core.u[:, 0] * x.to(device) + core.b + cfg.drive * drive.view(-1, 1, 1).to(device)
    _, trace = core.run(pre, record=True)
    neurons = trace["h"].mean(1).T.double().cpu()  # (N, T)
    network = neurons.mean(0)
    window = tuple(cfg.fit_window)
    alpha, _ = fit_order(network, drive, torch.linspace(0, 1, cfg.grid), window)
    per_neuron, _ = fit_order(neurons, drive, torch.linspace(-1, 1, cfg.grid), window)
    return {"alpha": alpha, "alpha_per_neuron": per_neuron, "response": network, "drive": drive}


# ---------------------------------------------------------------- Lyapunov


def qr_lyapunov(jacobian_times: Callable[[int, Tensor], Tensor], q: Tensor, steps: int, warmup: int,
                base: float = 2.0) -> Tensor:
    """The k largest Lyapunov exponents by the QR method: Q_t R_t = J_t Q_{t−1}, λ_i = mean_t log |R_t[i, i]|
    over the steps after `warmup`, in log base `base`. `jacobian_times(t, Q)` returns J_t Q for Q (B, N, k)
    (it may advance the state the Jacobian belongs to); q (B, N, k) is the start. Returns (B, k)."""
    total = q.new_zeros(q.shape[0], q.shape[-1], dtype=torch.float64)
    for t in range(steps):
        q, r = torch.linalg.qr(jacobian_times(t, q))
        if t >= warmup:
            total += torch.diagonal(r, dim1=-2, dim2=-1).double().abs().clamp_min(1e-300).log()
    return total / (steps - warmup) / math.log(base)


@torch.no_grad()
def network_lyapunov(core: RecurrentCore, pre: Tensor, warmup: int, base: float, seed: int) -> Tensor:
    """Maximal exponent (B,) of the core driven by input terms pre (T, B, N) (perturbations included), computed in
    float64 on a copy of the core: a saturated unit's slope (1 − tanh², σ(1 − σ)) underflows float32 to 0."""
    core, pre = copy.deepcopy(core).double(), pre.double()
    state = {"h": pre.new_zeros(pre.shape[1], core.width)}
    if core.gains.adaptive:
        state["g"] = core.gains.init_state(pre.shape[1] * core.width)
    else:
        state["n"], state["s"] = core.gains.static()
    w_t = core.w.T

    def jacobian_times(t: int, q: Tensor) -> Tensor:
        a = torch.addmm(pre[t], state["h"], w_t)
        if core.gains.adaptive:
            n, s, state["g"] = core.gains.step(a, state["g"])
        else:
            n, s = state["n"], state["s"]
        state["h"] = core.phi(a, n, s)
        return core.slope(a, n, s).unsqueeze(-1) * (core.w @ q)  # diag(φ'(a_t)) W Q

    generator = torch.Generator(device=pre.device).manual_seed(seed)
    q = torch.randn(pre.shape[1], core.width, 1, generator=generator, device=pre.device, dtype=pre.dtype)
    return qr_lyapunov(jacobian_times, q / q.norm(dim=1, keepdim=True), len(pre), warmup, base)[:, 0]
