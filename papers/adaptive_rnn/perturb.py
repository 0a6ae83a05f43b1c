"""Test-time perturbations of Geadah et al. (2024), Sec. "Perturbations at test time" of the note.

Times are defined on the paper's 784-step sequence (`perturb.reference_length`) and scaled to the T steps of
the task: step t of T stands for time t · L / T.
- amplitude modulation: x_t ← x_t · (1 + A sin(2π f t / T + φ)) (only where x_t > 0: a zero pixel stays 0);
- step drive: ξ added to every pre-activation for start < t · L / T < end (strict; the paper's 200 < t < 400);
- pre-activation noise: N(0, ξ²) added to every pre-activation at every step (the authors' "noise");
- pixel noise: N(0, ξ²) added to every input pixel (our own extra test; nothing in the authors' code does it).
"""

from __future__ import annotations

import math

import torch
from omegaconf import DictConfig
from torch import Tensor

from common.errors import UserError
from papers.adaptive_rnn.tasks import SequenceClassifier

KINDS = ("amplitude", "drive", "noise", "pixel_noise")


def check_window(window: list[float], reference_length: int, steps: int) -> tuple[float, float]:
    """The drive window (start, end) in the task's steps, or a UserError naming `perturb.window`."""
    if len(window) != 2 or not 0 <= window[0] < window[1] <= reference_length:
        raise UserError(f"perturb.window={list(window)} must be [start, end] with 0 <= start < end <= "
                        f"perturb.reference_length={reference_length} (the paper's [200, 400] of 784 steps).")
    start, end = (w * steps / reference_length for w in window)
    if math.floor(end - 1e-9) <= start:
        raise UserError(f"perturb.window={list(window)} holds no step of the {steps}-step sequence once scaled "
                        f"by {steps}/{reference_length}: widen it.")
    return start, end


def amplitude_modulation(x: Tensor, amplitude: float, frequency: float, phase: float) -> Tensor:
    """x (B, T, D) · (1 + A sin(2π f t / T + φ)), t = 0 … T − 1 the step index after permutation."""
    steps = x.shape[1]
    t = torch.arange(steps, dtype=x.dtype, device=x.device)
    factor = 1 + amplitude * torch.sin(2 * math.pi * frequency * t / steps + phase)
    return torch.where(x > 0, x * factor[:, None], x)


def step_drive(steps: int, start: float, end: float, xi: float) -> Tensor:
    """(T, 1, 1): ξ at the steps t with start < t < end (already in the task's steps), 0 elsewhere."""
    t = torch.arange(steps, dtype=torch.float32)
    return (xi * ((t > start) & (t < end)).float()).view(steps, 1, 1)


@torch.no_grad()
def perturbed_accuracy(net: SequenceClassifier, images: Tensor, labels: Tensor, kind: str, strength: float,
                       cfg: DictConfig, seed: int, batch_size: int) -> float:
    """Test accuracy of `net` under one perturbation `kind` (or "none") of strength ξ (amplitude: A)."""
    generator = torch.Generator(device=images.device).manual_seed(seed)
    correct = 0
    for chunk, y in zip(images.split(batch_size), labels.split(batch_size), strict=True):
        x = net.sequence(chunk)
        steps, shift = x.shape[1], None
        if kind == "none":
            pass
        elif kind == "amplitude":
            x = amplitude_modulation(x, strength, cfg.frequency, cfg.phase)
        elif kind == "pixel_noise":
            x = x + strength * torch.randn(x.shape, generator=generator, device=x.device)
        elif kind == "drive":
            shift = step_drive(steps, *check_window(cfg.window, cfg.reference_length, steps), strength).to(x)
        elif kind == "noise":
            shift = strength * torch.randn(steps, len(y), net.core.width, generator=generator, device=x.device)
        else:
            raise ValueError(f"unknown perturbation {kind!r} ({', '.join(KINDS)})")
        correct += (net.classify(x, shift).argmax(-1) == y).sum().item()
    return correct / len(labels)
