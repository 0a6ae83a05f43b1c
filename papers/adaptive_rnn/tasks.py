"""Sequential and permuted sequential MNIST (Geadah et al. 2024, Sec. "Tasks" of the note), from the shared
MNIST data module, and the network that reads them.

An image becomes a sequence of T = (28 / pool)² steps of one pixel each, in [0, 1] (the shared data module
standardises; the sequence undoes it, as the paper uses raw pixels): average-pooled `pool` × `pool`
(pool = 1: the paper's 784 steps; smoke pools 4 × 4 -> 49 steps), read row by row, and for psMNIST permuted by
`numpy.random.RandomState(seed).permutation(T)`, one fixed permutation per seed.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import Tensor, nn

from common.errors import UserError
from papers.adaptive_rnn.activations import PARAMETERISATIONS
from papers.adaptive_rnn.rnn import ACTIVATIONS, MODELS, RecurrentCore, build_gains

IMAGE_SIDE = 28


def permutation(seed: int, steps: int) -> Tensor:
    """The psMNIST permutation of a seed: RandomState(seed).permutation(steps), as the authors draw it."""
    return torch.from_numpy(np.random.RandomState(seed).permutation(steps))


def check_task(task: DictConfig) -> None:
    if not isinstance(task.pool, int) or task.pool < 1 or IMAGE_SIDE % task.pool:
        divisors = [d for d in range(1, IMAGE_SIDE + 1) if IMAGE_SIDE % d == 0]
        raise UserError(f"task.pool={task.pool!r} must divide the {IMAGE_SIDE}-pixel image side: one of "
                        f"{divisors} (1: the paper's 784 steps; 4: 7 x 7 = 49 steps).")


def check_rnn(rnn: DictConfig) -> None:
    """Each bad key named with its valid range, before any work."""
    choices = {"rnn.model": (rnn.model, MODELS), "rnn.activation": (rnn.activation, tuple(ACTIVATIONS)),
               "rnn.parameterisation": (rnn.parameterisation, PARAMETERISATIONS)}
    for key, (value, valid) in choices.items():
        if value not in valid:
            raise UserError(f"{key}={value!r} is not one of {', '.join(valid)}.")
    if rnn.model != "fixed" and rnn.activation != "gamma":
        raise UserError(f"rnn.model={rnn.model} learns or adapts the (n, s) of γ: it needs rnn.activation=gamma "
                        f"(got {rnn.activation}); fixed activations are rnn.model=fixed.")
    if rnn.model == "fixed" and rnn.activation == "gamma":
        if not rnn.n > 0:
            raise UserError(f"rnn.n={rnn.n} is the gain of a fixed γ: it must be > 0.")
        if not 0 <= rnn.s <= 1:
            raise UserError(f"rnn.s={rnn.s} is the saturation of a fixed γ: it must be in [0, 1].")
    for key in ("width", "controller_width"):
        if rnn[key] < 1:
            raise UserError(f"rnn.{key}={rnn[key]} must be a positive integer.")


class PixelSequence(nn.Module):
    """Standardised images (B, 1, 28, 28) -> pixel sequences (B, T, 1) in [0, 1], pooled and permuted."""

    def __init__(self, pool: int, order: Tensor | None, mean: float, std: float) -> None:
        super().__init__()
        self.pool, self.mean, self.std = pool, mean, std
        self.register_buffer("order", order)

    @property
    def steps(self) -> int:
        return (IMAGE_SIDE // self.pool) ** 2

    def forward(self, images: Tensor) -> Tensor:
        x = images * self.std + self.mean  # pooling is linear: undoing the standardisation first is the same
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool)
        x = x.flatten(1)
        if self.order is not None:
            x = x[:, self.order]
        return x.unsqueeze(-1)


class SequenceClassifier(nn.Module):
    """Pixel sequence -> recurrent core -> Linear(N, 10) on the LAST state."""

    def __init__(self, sequence: PixelSequence, core: RecurrentCore, num_classes: int) -> None:
        super().__init__()
        self.sequence, self.core = sequence, core
        self.readout = nn.Linear(core.width, num_classes)

    def forward(self, images: Tensor, pre_shift: Tensor | None = None) -> Tensor:
        """Logits; `pre_shift` (T, B, N) or broadcastable is added to every pre-activation (drive, noise)."""
        return self.classify(self.sequence(images), pre_shift)

    def classify(self, x: Tensor, pre_shift: Tensor | None = None) -> Tensor:
        """Logits of pixel sequences x (B, T, 1)."""
        pre = self.core.input_term(x)
        if pre_shift is not None:
            pre = pre + pre_shift
        h, _ = self.core.run(pre)
        return self.readout(h)


def build_network(cfg: DictConfig, mean: float, std: float, num_classes: int) -> SequenceClassifier:
    """The network of `cfg.rnn` on the task of `cfg.task` (permutation from `cfg.seed`)."""
    check_task(cfg.task)
    check_rnn(cfg.rnn)
    r = cfg.rnn
    sequence = PixelSequence(cfg.task.pool, None, mean, std)
    if cfg.task.permute:
        sequence.order = permutation(cfg.seed, sequence.steps)
    gains = build_gains(r.model, r.width, r.n, r.s, r.controller_width, r.parameterisation == "constrained")
    return SequenceClassifier(sequence, RecurrentCore(1, r.width, r.activation, gains), num_classes)
