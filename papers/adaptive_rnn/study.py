"""Everything measured on one trained network (Geadah et al. 2024): accuracy under each test-time perturbation,
the spread of (n, s) across neurons, gain scaling (adaptive networks), fractional order and Lyapunov exponent.

Writes `analysis.json` (curves, per-neuron values) and figures into the run dir; returns flat metrics:
`clean_acc`, `<kind>_acc_xi<ξ>` and `retained_<kind>`, the chance-corrected share of the accuracy kept,

    retained = (mean_ξ acc(ξ) − c) / (clean − c),   c = 1 / classes (0.1 on MNIST),

1 when a perturbation costs nothing, 0 when it brings the network down to chance, and 0 when clean ≤ c (a network
at chance has no accuracy above chance to keep). Without the correction a network that learnt little lost little
and looked robust (two under-trained ARUs once "won" the drive comparison that way). Then
`n_mean`, `n_std`, `n_cv`, `s_mean`, `s_std` (across neurons), `gain_n_xi<ξ>`, `gain_s_xi<ξ>`, `gain_change`
(n̄ at the largest ξ / n̄ at the smallest − 1) and the fits, `alpha`, `alpha_neurons_mean/std`,
`lyapunov_xi<ξ>`.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor

from papers.adaptive_rnn.analysis import fit_gain_scaling, fractional_protocol, gain_scaling, network_lyapunov
from papers.adaptive_rnn.perturb import check_window, perturbed_accuracy
from papers.adaptive_rnn.plots import plot_run
from papers.adaptive_rnn.tasks import SequenceClassifier

SWEEPS = {"amplitude": "amplitudes", "drive": "drives", "noise": "noises", "pixel_noise": "pixel_noises"}


def _per_neuron_gains(net: SequenceClassifier, x: Tensor) -> tuple[Tensor, Tensor] | None:
    """(n, s) of every neuron (N,): learned values, or the ARU's mean over examples and the second half of the
    steps of clean sequences x; None for fixed ReLU / tanh / softplus."""
    core = net.core
    if core.activation != "gamma":
        return None
    if not core.gains.adaptive:
        n, s = core.gains.static()
        return n.detach().expand(core.width).cpu(), s.detach().expand(core.width).cpu()
    _, trace = core.run(core.input_term(x), record=True)
    half = len(trace["n"]) // 2
    return trace["n"][half:].mean((0, 1)).cpu(), trace["s"][half:].mean((0, 1)).cpu()


def retained(accuracies: list[float], clean: float, chance: float) -> float:
    """(mean(accuracies) − chance) / (clean − chance): the share of the above-chance accuracy a perturbation
    keeps; 0 when the clean accuracy is not above chance (nothing to keep)."""
    if clean <= chance:
        return 0.0
    return (sum(accuracies) / len(accuracies) - chance) / (clean - chance)


@torch.no_grad()
def study(net: SequenceClassifier, test: tuple[Tensor, Tensor], cfg: DictConfig, run_dir: Path) -> dict[str, float]:
    net.eval()
    a, p = cfg.analysis, cfg.perturb
    images, labels = (t[: a.examples] for t in test)
    steps = net.sequence.steps
    check_window(p.window, p.reference_length, steps)

    def accuracy(kind: str, xi: float) -> float:
        return perturbed_accuracy(net, images, labels, kind, xi, p, cfg.seed, cfg.data.eval_batch_size)

    clean = accuracy("none", 0.0)
    chance = 1 / net.readout.out_features
    metrics: dict[str, float] = {"clean_acc": clean}
    record: dict = {"clean_acc": clean, "chance": chance, "sweeps": {}}
    for kind, key in SWEEPS.items():
        values = [accuracy(kind, xi) for xi in p[key]]
        record["sweeps"][kind] = {"xi": list(p[key]), "acc": values}
        metrics |= {f"{kind}_acc_xi{xi:g}": v for xi, v in zip(p[key], values, strict=True)}
        metrics[f"retained_{kind}"] = retained(values, clean, chance)

    x = net.sequence(images[: a.gain_examples])
    gains = _per_neuron_gains(net, x)
    if gains is not None:
        n, s = gains
        record["neurons"] = {"n": n.tolist(), "s": s.tolist()}
        metrics |= {"n_mean": n.mean().item(), "n_std": n.std().item(), "n_cv": (n.std() / n.mean().abs()).item(),
                    "s_mean": s.mean().item(), "s_std": s.std().item()}
    if net.core.gains.adaptive:
        curves = gain_scaling(net.core, x, list(a.gain_noises), cfg.seed)
        fits = fit_gain_scaling(curves)
        record["gain_scaling"] = curves | {"fit": fits}
        metrics |= {f"gain_{k}_xi{xi:g}": v for k in ("n", "s") for xi, v in zip(curves["xi"], curves[k], strict=True)}
        metrics |= {f"gain_{k}_fit_{name}": v for k in ("n", "s") for name, v in zip("abc", fits[k], strict=True)}
        metrics["gain_change"] = curves["n"][-1] / curves["n"][0] - 1

    frac = fractional_protocol(net.core, cfg.fractional, cfg.seed)
    record["fractional"] = {k: v.tolist() for k, v in frac.items()}
    metrics |= {"alpha": frac["alpha"].item(), "alpha_neurons_mean": frac["alpha_per_neuron"].mean().item(),
                "alpha_neurons_std": frac["alpha_per_neuron"].std().item()}

    digits = a.lyapunov_trajectories * -(-a.lyapunov_steps // steps)  # each trajectory reads consecutive digits
    stream = net.sequence(images[torch.arange(digits, device=images.device) % len(images)])
    stream = stream.reshape(a.lyapunov_trajectories, -1, 1)[:, : a.lyapunov_steps]
    pre = net.core.input_term(stream)
    record["lyapunov"] = {"xi": list(a.lyapunov_drives), "exponent": []}
    for xi in a.lyapunov_drives:
        value = network_lyapunov(net.core, pre + xi, a.lyapunov_warmup, a.lyapunov_base, cfg.seed).mean().item()
        record["lyapunov"]["exponent"].append(value)
        metrics[f"lyapunov_xi{xi:g}"] = value

    (run_dir / "analysis.json").write_text(json.dumps(record, indent=1))
    plot_run(record, run_dir / "figures", f"{cfg.rnn.model} {cfg.rnn.activation}, "
             f"{'psMNIST' if cfg.task.permute else 'sMNIST'} ({steps} steps, N = {net.core.width})")
    return metrics
