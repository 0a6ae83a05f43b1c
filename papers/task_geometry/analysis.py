"""Geometry of every trained network's hidden layer (Alleman et al. 2024), aggregated over seeds.

Per network g: its accuracy on the whole training split (`train_acc`: did it learn the task?), and, on the hidden
layer after the nonlinearity:
- target / input alignment: linear CKA between the hidden kernel of the 2^d noise-free condition centres and
  the target kernel (0/1 targets) / the input kernel (embedded centres);
- CCGP and parallelism score of each target bit (averaged over the k targets), CCGP on noisy hidden samples
  (inputs re-drawn with test-time noise `test_noise`, `samples_per_condition` per condition);
then mean ± standard error over seeds per (nonlinearity, knob value), and the paired (same seed, same initial
weights) difference Tanh − ReLU with its standard error. The authors' code instead averages the hidden kernel over
seeds before the CKA: `seed_averaged` gives that too. CKA(mean_s Z_s Z_sᵀ, K) = CKA([Z_1 … Z_S], K), the
seeds' features side by side, since CKA does not see the factor S. The per-seed values at the largest knob value
(`at_largest_knob`) are what the claims rest on: measure.py takes the mean of the paired gaps over seeds.
"""

from __future__ import annotations

import math

import torch
from omegaconf import DictConfig
from torch import Tensor

from common.metrics.geometry import ccgp, kernel_alignment, parallelism_score
from papers.task_geometry.nets import StackedNets
from papers.task_geometry.tasks import TaskDataModule

METRICS = ("target_alignment", "input_alignment", "ccgp", "parallelism")


@torch.no_grad()
def per_network(net: StackedNets, data: TaskDataModule, cfg: DictConfig) -> dict[str, Tensor]:
    """{metric: (G,) values} for every network of the stack."""
    latents = data.latents  # (n, ·) 0/1, the k targets first
    n = len(latents)
    clean = data.clean.to(net.w.device)
    centres = net.hidden(clean).double().cpu()  # (G, n, width): clean inputs of each net's own knob value
    generator = torch.Generator().manual_seed(cfg.seed)
    conditions = torch.arange(n).repeat_interleave(cfg.samples_per_condition)
    noise = torch.randn(len(conditions), data.dim, generator=generator).to(clean.device)
    samples = net.hidden(clean[:, conditions] + cfg.test_noise * noise).double().cpu()  # (G, N, width)
    values: dict[str, list[float]] = {m: [] for m in METRICS}
    for g in range(net.size):
        values["target_alignment"].append(kernel_alignment(centres[g], data.targets.double()))
        values["input_alignment"].append(kernel_alignment(centres[g], data.clean[net.knob_of[g].item()].double()))
        values["ccgp"].append(sum(ccgp(samples[g], conditions, latents, j, protocol=cfg.ccgp_protocol)
                                  for j in range(data.k)) / data.k)
        values["parallelism"].append(sum(parallelism_score(centres[g], latents[:, j]) for j in range(data.k)) / data.k)
    return {m: torch.tensor(v, dtype=torch.float64) for m, v in values.items()}


@torch.no_grad()
def seed_averaged(net: StackedNets, data: TaskDataModule) -> dict[str, dict[str, list[float]]]:
    """{activation: {"target_alignment" | "input_alignment": [CKA of the seed-averaged hidden kernel per knob]}}."""
    centres = net.hidden(data.clean.to(net.w.device)).double().cpu()  # (G, n, width)
    seeds = len(net.seeds)
    out: dict[str, dict[str, list[float]]] = {}
    for activation in net.activations:
        target, inputs = [], []
        for k in range(len(data.knobs)):
            first = net.index(activation, k, 0)
            side_by_side = torch.cat(list(centres[first:first + seeds]), 1)  # (n, S · width)
            target.append(kernel_alignment(side_by_side, data.targets.double()))
            inputs.append(kernel_alignment(side_by_side, data.clean[k].double()))
        out[activation] = {"target_alignment": target, "input_alignment": inputs}
    return out


def mean_sem(x: Tensor) -> tuple[float, float]:
    """Mean and standard error over the last axis, for the figures (sem 0 for one seed)."""
    return x.mean().item(), (x.std().item() / math.sqrt(len(x)) if len(x) > 1 else 0.0)


@torch.no_grad()
def train_accuracy(net: StackedNets, data: TaskDataModule, batch_size: int) -> Tensor:
    """(G,) every network's accuracy on the whole training split (0/1 predictions sigmoid(ŷ) > 1/2 against the k
    target bits, averaged over samples and bits), in batches of samples."""
    x, y = data.splits["train"]  # (N, K, D), (N, k)
    correct = torch.zeros(net.size, dtype=torch.float64)
    for xb, yb in zip(x.split(batch_size), y.split(batch_size), strict=True):
        logits = net(xb.transpose(0, 1).to(net.w.device))  # (G, B, k)
        correct += ((logits > 0).float() == yb.to(logits.device)).double().sum((1, 2)).cpu()
    return correct / y.numel()


def aggregate(values: dict[str, Tensor], net: StackedNets, knobs: list[float]) -> dict:
    """{"cells": {activation: {metric: [(mean, sem) per knob]}}, "gap": {metric: [(mean, sem) per knob]}} for every
    metric of `values` ((G,) per network), with the gap Tanh − ReLU paired by seed (present when both
    nonlinearities were trained)."""
    shape = (len(net.activations), len(knobs), len(net.seeds))
    table = {m: v.reshape(shape) for m, v in values.items()}
    cells = {a: {m: [mean_sem(table[m][i, k]) for k in range(len(knobs))] for m in table}
             for i, a in enumerate(net.activations)}
    out: dict = {"knobs": knobs, "seeds": len(net.seeds), "cells": cells}
    if {"tanh", "relu"} <= set(net.activations):
        t, r = net.activations.index("tanh"), net.activations.index("relu")
        out["gap"] = {m: [mean_sem(table[m][t, k] - table[m][r, k]) for k in range(len(knobs))] for m in table}
    return out


def headline(summary: dict) -> dict[str, float]:
    """Summary metrics at the largest knob value: each nonlinearity's means over seeds (and seed-averaged-kernel
    alignments) and the mean Tanh − ReLU gap (its SE over seeds is measure.py's)."""
    out: dict[str, float] = {}
    for activation, cell in summary["cells"].items():
        for m, per_knob in cell.items():
            out[f"{m}_{activation}_cmax"] = per_knob[-1][0]
        for m, per_knob in summary.get("seed_averaged", {}).get(activation, {}).items():
            out[f"{m}_seedavg_{activation}_cmax"] = per_knob[-1]
    for m, per_knob in summary.get("gap", {}).items():
        out[f"gap_{m}_cmax"] = per_knob[-1][0]
    return out


def at_largest_knob(values: dict[str, Tensor], net: StackedNets) -> dict[str, Tensor]:
    """{f"{metric}_{activation}": (S,) the values of that nonlinearity's networks at the largest knob value, one
    per seed, in seed order} (every nonlinearity's seed s starts from the same weights: pairs line up)."""
    shape = (len(net.activations), net.num_knobs, len(net.seeds))
    return {f"{m}_{a}": v.reshape(shape)[i, -1] for m, v in values.items() for i, a in enumerate(net.activations)}
