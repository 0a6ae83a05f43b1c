"""Tanh vs ReLU in a small CNN on images (Alleman et al. 2024, CIFAR-10 experiment): does the hidden geometry follow
a low-dimensional target, as in the one-hidden-layer sweep?

The note leaves the CNN's details open, so they are ours: conv 5×5 (32) → φ → max-pool 2 → conv 5×5 (64) → φ →
max-pool 2 → FC 256 → φ → FC 128 → φ → fixed linear readout (as in the main sweep: only the hidden layers train),
sigmoid + BCE on the target bits. A target bit is a balanced grouping of the classes (`cnn.groups`: CIFAR-10 {cat,
deer, dog, frog, horse} vs {airplane, automobile, bird, ship, truck}; MNIST odd vs even digits). For each seed a
Tanh and a ReLU network start from the same weights and see the same batches (one model, loss summed: SGD on the
sum is SGD on each).

Geometry of the two FC hidden layers on the test set, with the classes as conditions: target / input alignment
(CKA of the class-mean hidden kernel with the target kernel / the class-mean images' kernel), CCGP ("pair"
protocol: a class grouping has no other latent for the "half" protocol) and parallelism score of each target bit;
outcomes.npz holds each one per seed (`{layer}_{metric}_{activation}`), measure.py the paired gaps' SEs.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from common.data import TensorDataModule
from common.errors import UserError
from common.metrics.geometry import ccgp, condition_means, kernel_alignment, parallelism_score
from common.optim import build_optimizer
from common.outcomes import save_outcomes
from common.plotting import plt
from papers.task_geometry.analysis import METRICS, mean_sem
from papers.task_geometry.nets import ACTIVATIONS

LAYERS = ("fc1", "fc2")


class SmallCNN(nn.Module):
    def __init__(self, activation: str, in_channels: int, image_size: int, outputs: int) -> None:
        super().__init__()
        self.act = ACTIVATIONS[activation]
        self.conv1 = nn.Conv2d(in_channels, 32, 5, padding=2)
        self.conv2 = nn.Conv2d(32, 64, 5, padding=2)
        self.fc1 = nn.Linear(64 * (image_size // 4) ** 2, 256)
        self.fc2 = nn.Linear(256, 128)
        self.readout = nn.Linear(128, outputs).requires_grad_(False)  # fixed, like the sweep's readout

    def hidden(self, x: Tensor) -> dict[str, Tensor]:
        h = F.max_pool2d(self.act(self.conv1(x)), 2)
        h = F.max_pool2d(self.act(self.conv2(h)), 2)
        fc1 = self.act(self.fc1(h.flatten(1)))
        return {"fc1": fc1, "fc2": self.act(self.fc2(fc1))}

    def forward(self, x: Tensor) -> Tensor:
        return self.readout(self.hidden(x)["fc2"])


def group_matrix(groups: list[list[int]], num_classes: int) -> Tensor:
    """(num_classes, k) 0/1: class c is in target group j. Each group must hold half the classes."""
    bits = torch.zeros(num_classes, len(groups))
    for j, group in enumerate(groups):
        if len(set(group)) != num_classes // 2 or not all(0 <= c < num_classes for c in group):
            raise UserError(f"cnn.groups[{j}]={list(group)} must name {num_classes // 2} distinct classes in "
                            f"0..{num_classes - 1} (a balanced grouping).")
        bits[list(group), j] = 1
    return bits


class CNNGeometryModule(L.LightningModule):
    def __init__(self, cfg: DictConfig, data: TensorDataModule) -> None:
        super().__init__()
        self.save_hyperparameters({"config": OmegaConf.to_container(cfg, resolve=True)})
        self.cfg = cfg
        if cfg.data.flatten:
            raise UserError("The CNN takes images: set data.flatten=false.")
        channels, size = data.input_shape[0], data.input_shape[1]
        self.register_buffer("bits", group_matrix([list(g) for g in cfg.cnn.groups], data.num_classes))
        s = cfg.sweep
        self.activations, self.seeds = list(s.activations), [s.first_seed + i for i in range(s.seeds)]
        nets = []
        for seed in self.seeds:
            torch.manual_seed(seed)
            first = SmallCNN(self.activations[0], channels, size, len(cfg.cnn.groups))
            for activation in self.activations:  # every nonlinearity from the same initial weights
                net = copy.deepcopy(first)
                net.act = ACTIVATIONS[activation]
                nets.append(net)
        self.nets = nn.ModuleList(nets)  # ordered (seed, activation)

    def _losses(self, batch: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        x, y = batch
        target = self.bits[y]
        logits = torch.stack([net(x) for net in self.nets])
        losses = F.binary_cross_entropy_with_logits(logits, target.expand_as(logits), reduction="none").mean((1, 2))
        return losses, ((logits > 0).float() == target).float().mean((1, 2))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        losses, accuracy = self._losses(batch)
        self.log("train/loss", losses.mean(), on_step=False, on_epoch=True)
        self.log("train/acc", accuracy.mean(), on_step=False, on_epoch=True)
        return losses.sum()

    def _eval(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        losses, accuracy = self._losses(batch)
        self.log(f"{stage}/loss", losses.mean(), batch_size=len(batch[1]))
        self.log(f"{stage}/acc", accuracy.mean(), batch_size=len(batch[1]), prog_bar=stage == "val")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval(batch, "test")

    def configure_optimizers(self) -> dict:
        return build_optimizer(self.cfg.optim, [p for p in self.parameters() if p.requires_grad],
                               self.cfg.trainer.max_epochs, int(self.trainer.estimated_stepping_batches))

    @torch.no_grad()
    def analyze(self, datamodule: TensorDataModule, run_dir: Path) -> dict[str, float]:
        x, y = datamodule.test_tensors()
        n_classes = len(self.bits)
        inputs = condition_means(x.flatten(1).double(), y, n_classes)
        bits = self.bits.double().cpu()
        values: dict[str, dict[str, list[float]]] = {}  # "layer/metric" -> activation -> per seed
        for i, net in enumerate(self.nets):
            activation = self.activations[i % len(self.activations)]
            hidden = {name: torch.cat(parts).double().cpu() for name, parts in zip(
                LAYERS, zip(*[net.hidden(chunk).values() for chunk in x.split(1000)], strict=True), strict=True)}
            for layer, h in hidden.items():
                centres = condition_means(h, y.cpu(), n_classes)
                k = bits.shape[1]
                found = {"target_alignment": kernel_alignment(centres, bits),
                         "input_alignment": kernel_alignment(centres, inputs.cpu()),
                         "ccgp": sum(ccgp(h, y.cpu(), bits, j, centres=centres) for j in range(k)) / k,
                         "parallelism": sum(parallelism_score(centres, bits[:, j]) for j in range(k)) / k}
                for metric, value in found.items():
                    values.setdefault(f"{layer}/{metric}", {}).setdefault(activation, []).append(value)
        (run_dir / "geometry.json").write_text(json.dumps(values, indent=1))
        save_outcomes(run_dir, {f"{key.replace('/', '_')}_{act}": torch.tensor(seeds)  # one value per seed
                                for key, by_activation in values.items() for act, seeds in by_activation.items()})
        out = {}
        for key, per_activation in values.items():
            layer, metric = key.split("/")
            for activation, seeds in per_activation.items():
                out[f"cnn_{layer}_{metric}_{activation}"] = sum(seeds) / len(seeds)
            if {"tanh", "relu"} <= per_activation.keys():  # the mean paired gap; its SE over seeds: measure.py
                gaps = torch.tensor(per_activation["tanh"]) - torch.tensor(per_activation["relu"])
                out[f"cnn_{layer}_gap_{metric}"] = gaps.mean().item()
        plot_cnn(values, run_dir / "figures" / "cnn_geometry.png")
        return out


def plot_cnn(values: dict[str, dict[str, list[float]]], path: Path) -> None:
    """One panel per metric: each layer's mean ± s.e. over seeds, one bar per nonlinearity."""
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.4 * len(METRICS), 3.2))
    for ax, metric in zip(axes, METRICS, strict=True):
        activations = list(values[f"{LAYERS[0]}/{metric}"])
        width = 0.8 / len(activations)
        for a, activation in enumerate(activations):
            means, sems = zip(*(mean_sem(torch.tensor(values[f"{layer}/{metric}"][activation])) for layer in LAYERS),
                              strict=True)
            ax.bar([i + a * width for i in range(len(LAYERS))], means, width, yerr=sems, capsize=2, label=activation)
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(LAYERS))], LAYERS)
        ax.set_title(metric.replace("_", " "), fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle("small CNN: hidden geometry with the classes as conditions", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
