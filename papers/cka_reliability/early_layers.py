"""Early-layer CKA of generalising, memorising and random networks (Davari et al. 2023, Sec. 4.1, Fig. 2).

Three networks of one architecture: a generalising net trained on the true labels, a memorising net
trained with the same recipe, the same initial weights and the same batches (augmentation included) on
training labels shuffled across examples by a permutation seeded with label_seed + 1000 · seed (Zhang et
al. 2017), and a random net (a fresh initialisation seeded with random_seed + 1000 · seed, never trained).
The two trained nets train side by side in one run, each with its own gradient-norm clipping. On the test
set: the L × L map of minibatch debiased linear CKA between their blocks (`common.metrics.cka.cka_map`) for
each pair, and RBF CKA between matching blocks with bandwidth m × median distance, m ∈ `rbf_thresholds`.
For the checks that the two nets trained as they should: their per-example test correctness
(`outcomes.npz`) and the memorising net's accuracy on its own shuffled training labels, in eval mode, after
training (`train_acc_memorising_shuffled`).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import nn

from common.classifier import accuracy
from common.data import TensorBatches
from common.layerwise import correct
from common.metrics.cka import cka, cka_map, layer_extractor
from common.optim import build_optimizer
from common.outcomes import save_outcomes
from papers.cka_reliability.nets import draw_seed
from papers.cka_reliability.plots import plot_cka_maps

PAIRS = (("generalising", "memorising"), ("generalising", "random"), ("memorising", "random"))


def shuffled_labels(y: torch.Tensor, label_seed: int) -> torch.Tensor:
    """The memorising net's training labels: `y` permuted across examples by a permutation seeded with
    `label_seed` (Zhang et al. 2017), so the label marginal is kept and x carries no information about it."""
    generator = torch.Generator().manual_seed(label_seed)
    return y[torch.randperm(len(y), generator=generator).to(y.device)]


class EarlyLayersModule(L.LightningModule):
    """Trains `generalising` on (x, y) and `memorising` on (x, y_shuffled) from the same batches; `random`
    stays at its initialisation. val/acc and test/acc are the generalising net's (its checkpoint monitor)."""

    def __init__(self, cfg: DictConfig, net: nn.Module, random_net: nn.Module) -> None:
        super().__init__()
        self.save_hyperparameters({"config": OmegaConf.to_container(cfg, resolve=True)})
        self.cfg = cfg
        self.nets = nn.ModuleDict({"generalising": net, "memorising": copy.deepcopy(net), "random": random_net})
        self.nets["random"].requires_grad_(False)
        self._memorising_batches: Iterator[tuple[torch.Tensor, torch.Tensor]] | None = None  # built lazily

    def on_train_epoch_start(self) -> None:  # not called when a run resumes mid-epoch: __init__ set None
        self._memorising_batches = None

    def _label_seed(self) -> int:
        return draw_seed(self.cfg.early_layers.label_seed, self.cfg.seed)

    def _shuffled_label_batches(self, batch_idx: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """This epoch's batches with the shuffled labels, advanced to `batch_idx` (a pass resumed mid-epoch
        starts there)."""
        datamodule = self.trainer.datamodule
        _, y = datamodule.train_tensors()
        batches = iter(datamodule.train_batches(labels=shuffled_labels(y, self._label_seed())))
        for _ in range(batch_idx):
            next(batches)
        return batches

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        if self._memorising_batches is None:
            self._memorising_batches = self._shuffled_label_batches(batch_idx)
        _, y_shuffled = next(self._memorising_batches)  # the same x, in the same order
        losses = {}
        for name, labels in (("generalising", y), ("memorising", y_shuffled)):
            logits = self.nets[name](x)
            losses[name] = F.cross_entropy(logits, labels)
            suffix = "" if name == "generalising" else "_memorising"
            self.log(f"train/loss{suffix}", losses[name], on_step=False, on_epoch=True)
            self.log(f"train/acc{suffix}", accuracy(logits, labels), on_step=False, on_epoch=True)
        return losses["generalising"] + losses["memorising"]

    def configure_gradient_clipping(self, optimizer: Any, gradient_clip_val: float | None = None,
                                    gradient_clip_algorithm: str | None = None) -> None:
        """Each trained net clips its own gradient norm, as if it trained alone."""
        if gradient_clip_val:
            for name in ("generalising", "memorising"):
                nn.utils.clip_grad_norm_(self.nets[name].parameters(), gradient_clip_val)

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, y = batch
        for name in ("generalising", "memorising"):
            logits = self.nets[name](x)
            suffix = "" if name == "generalising" else "_memorising"
            self.log(f"{stage}/acc{suffix}", accuracy(logits, y), batch_size=len(y), sync_dist=True,
                     prog_bar=stage == "val" and not suffix)
            self.log(f"{stage}/loss{suffix}", F.cross_entropy(logits, y), batch_size=len(y), sync_dist=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def configure_optimizers(self) -> dict:
        params = [p for name in ("generalising", "memorising") for p in self.nets[name].parameters()]
        return build_optimizer(self.cfg.optim, params, self.cfg.trainer.max_epochs,
                               int(self.trainer.estimated_stepping_batches))

    @torch.no_grad()
    def analyze(self, datamodule: Any, run_dir: Path) -> dict[str, float]:
        cfg = self.cfg.early_layers
        self.nets.eval()
        layers = list(cfg.layers)
        batch_size = self.cfg.data.eval_batch_size
        x_train, y_train = datamodule.train_tensors()
        memorised = correct(self.nets["memorising"], x_train, shuffled_labels(y_train, self._label_seed()), batch_size)
        x, y = datamodule.test_tensors()
        save_outcomes(run_dir, {name: correct(self.nets[name], x, y, batch_size)
                                for name in ("generalising", "memorising")})
        loader = TensorBatches(x, y, batch_size)  # the whole test split, unsharded
        maps = {f"{a} vs {b}": cka_map(self.nets[a], self.nets[b], loader, layers, layers, cfg.extractor)
                for a, b in PAIRS}
        x = x[: cfg.rbf_examples]
        features = {name: [f.flatten(1) for f in layer_extractor(net, layers, cfg.extractor)(x)]
                    for name, net in self.nets.items()}
        metrics = {"train_acc_memorising_shuffled": memorised.float().mean().item(),
                   "train_examples": float(len(y_train))}
        for a, b in PAIRS:
            tag = f"{a[:3]}_{b[:3]}"
            diagonal = maps[f"{a} vs {b}"].diagonal()
            for i, value in enumerate(diagonal.tolist()):
                metrics[f"cka_linear_{tag}_block{i}"] = value
                for m in cfg.rbf_thresholds:
                    metrics[f"cka_rbf{m:g}_{tag}_block{i}"] = cka(features[a][i], features[b][i], kernel="rbf",
                                                                  threshold=m).item()
            metrics[f"cka_linear_{tag}_first_minus_last"] = (diagonal[0] - diagonal[-1]).item()
        plot_cka_maps(maps, layers, run_dir / "figures" / "early_layers_cka.png",
                      "linear CKA between the blocks of generalising, memorising and random nets (Fig. 2)")
        return metrics

