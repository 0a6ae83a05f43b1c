"""Manipulating a network's CKA map without changing its function (Davari et al. 2023, Sec. 4.3, Figs 5-7).

Phase 1 (`manipulation.train_epochs`): train the original network f with cross-entropy. Phase 2 (the
remaining epochs): one student per target map, each a copy of f, fine-tuned on

    L_k = KL(softmax(f(x)/T) ‖ softmax(g_k(x)/T)) + α_k · mean_ij log cosh(M_k(x)_ij − target_k,ij)   (Eq. 3)

where f is frozen (eval mode), M_k(x) is the L × L debiased linear CKA map between the student's blocks on
the batch (`common.metrics.cka.batch_cka_map`, differentiable) and T the distillation temperature.
α_k starts at `alpha` and adapts (Algorithm 1) every `check_every` steps from the student's validation
accuracy: more than `tolerance` below the ORIGINAL net's validation accuracy → α_k ×= `alpha_decay`,
otherwise α_k ÷= `alpha_decay` (the released code compares with a flag that defaults to 100 %, so its α
only decays; here the comparison is with the original net, as the paper describes).

Targets: "ones" (every pair of blocks identical to CKA), "identity" (every pair of blocks dissimilar),
"random_net" (another network's map: an untrained net of the same architecture, seed `target_seed` + 1000 · seed).
T = 0.1: every released code version uses 0.1 (some secondary descriptions say 0.2).
Each network has its own AdamW optimizer, schedule and gradient-norm clipping (manual optimisation).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn

from common.classifier import accuracy
from common.data import TensorBatches
from common.errors import UserError
from common.layerwise import correct
from common.metrics.cka import batch_cka_map, cka_map, layer_extractor
from common.optim import build_optimizer
from common.outcomes import save_outcomes
from papers.cka_reliability.nets import draw_seed
from papers.cka_reliability.plots import plot_cka_maps

TARGETS = ("ones", "identity", "random_net")


def log_cosh(x: Tensor) -> Tensor:
    """log cosh x = |x| + log1p(exp(−2|x|)) − log 2, without overflow for large |x|."""
    a = x.abs()
    return a + torch.log1p(torch.exp(-2 * a)) - math.log(2)


def distillation_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float) -> Tensor:
    """KL(softmax(t/T) ‖ softmax(s/T)), averaged over the batch."""
    return F.kl_div(F.log_softmax(student_logits / temperature, -1), F.log_softmax(teacher_logits / temperature, -1),
                    log_target=True, reduction="batchmean")


def adapt_alpha(alpha: float, accuracy: float, original_accuracy: float, tolerance: float, decay: float) -> float:
    """Algorithm 1: α × decay when `accuracy` is more than `tolerance` below the original net's, else α / decay."""
    return alpha * decay if accuracy < original_accuracy - tolerance else alpha / decay


def _accuracy(net: nn.Module, loader: Any) -> float:
    """Accuracy of `net` in eval mode over a loader of (x, y) batches; the net's mode is restored."""
    was_training = net.training
    net.eval()
    correct = total = 0
    with torch.no_grad():
        for x, y in loader:
            correct += (net(x).argmax(-1) == y).sum().item()
            total += len(y)
    net.train(was_training)
    return correct / total


class ManipulationModule(L.LightningModule):
    """`net` is the original network; `students[k]` chases `targets[k]` in phase 2. val/acc and test/acc
    are the original net's; val/acc_<target> and test/acc_<target> the students'."""

    def __init__(self, cfg: DictConfig, make_net: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.save_hyperparameters({"config": OmegaConf.to_container(cfg, resolve=True)})
        self.cfg = cfg
        mcfg = cfg.manipulation
        unknown = [t for t in mcfg.targets if t not in TARGETS]
        if unknown or not mcfg.targets:
            raise UserError(f"Unknown manipulation target(s) {unknown}; valid: {', '.join(TARGETS)}.")
        if not 1 <= mcfg.train_epochs < cfg.trainer.max_epochs:
            raise UserError(f"manipulation.train_epochs={mcfg.train_epochs} must be in 1..trainer.max_epochs-1 "
                            f"(={cfg.trainer.max_epochs - 1}): the epochs after it fine-tune the students.")
        self.automatic_optimization = False
        self.targets = list(mcfg.targets)
        self.layers = list(mcfg.layers)
        self.net = make_net()
        self.students = nn.ModuleList(make_net() for _ in self.targets)
        with torch.random.fork_rng():
            torch.manual_seed(draw_seed(mcfg.target_seed, cfg.seed))
            self.other = make_net().requires_grad_(False)  # the "random_net" target's network
        n_layers, k = len(self.layers), len(self.targets)
        self.register_buffer("target_maps", torch.zeros(k, n_layers, n_layers, dtype=torch.float64))
        self.register_buffer("alphas", torch.full((k,), float(mcfg.alpha), dtype=torch.float64))
        self.register_buffer("original_val_acc", torch.zeros((), dtype=torch.float64))
        self.register_buffer("started", torch.zeros((), dtype=torch.bool))

    # ---------------------------------------------------------------- phases
    def _finetuning(self) -> bool:
        return self.current_epoch >= self.cfg.manipulation.train_epochs

    def on_train_epoch_start(self) -> None:
        if self._finetuning() and not self.started:
            self._start_finetuning()

    @torch.no_grad()
    def _start_finetuning(self) -> None:
        """Students := f; targets built; the original validation accuracy recorded (restored on resume)."""
        for student in self.students:
            student.load_state_dict(self.net.state_dict())
        self.net.eval()
        loader = self._whole("val")
        self.original_val_acc.fill_(_accuracy(self.net, loader))
        n_layers = len(self.layers)
        for k, target in enumerate(self.targets):
            if target == "ones":
                self.target_maps[k] = 1.0
            elif target == "identity":
                self.target_maps[k] = torch.eye(n_layers, dtype=torch.float64)
            else:
                self.other.eval()
                self.target_maps[k] = cka_map(self.other, self.other, loader, self.layers, self.layers,
                                              self.cfg.manipulation.extractor)
        self.started.fill_(True)

    def _whole(self, split: str) -> TensorBatches:
        """A split's batches, unsharded: every DDP rank scores the same examples and so keeps the same α."""
        x, y = getattr(self.trainer.datamodule, f"{split}_tensors")()
        return TensorBatches(x, y, self.cfg.data.eval_batch_size)

    # ---------------------------------------------------------------- training
    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """One step of the current phase; returns the (detached) summed loss for the non-finite guard."""
        x, y = batch
        optimizers = self.optimizers()
        schedulers = self.lr_schedulers() or [None] * len(optimizers)
        if not self._finetuning():
            logits = self.net(x)
            loss = F.cross_entropy(logits, y)
            self._step(optimizers[0], schedulers[0], loss, self.net)
            self.log("train/loss", loss, on_step=False, on_epoch=True)
            self.log("train/acc", accuracy(logits, y), on_step=False, on_epoch=True)
            return loss.detach()
        mcfg = self.cfg.manipulation
        self.net.eval()
        with torch.no_grad():
            teacher = self.net(x)
        total = teacher.new_zeros(())
        for k, (student, target) in enumerate(zip(self.students, self.targets, strict=True)):
            *blocks, logits = layer_extractor(student, [*self.layers, mcfg.classifier], mcfg.extractor)(x)
            kl = distillation_kl(logits, teacher, mcfg.temperature)
            map_loss = log_cosh(batch_cka_map(blocks, blocks) - self.target_maps[k]).mean()
            loss = kl + self.alphas[k] * map_loss
            self._step(optimizers[k + 1], schedulers[k + 1], loss, student)
            total += loss.detach()
            self.log(f"train/kl_{target}", kl, on_step=False, on_epoch=True)
            self.log(f"train/map_loss_{target}", map_loss, on_step=False, on_epoch=True)
        step = (self.current_epoch - mcfg.train_epochs) * self.trainer.num_training_batches + batch_idx
        if (step + 1) % mcfg.check_every == 0:
            self._adapt_alphas()
        return total

    def _step(self, optimizer: Any, scheduler: Any, loss: Tensor, net: nn.Module) -> None:
        optimizer.zero_grad()
        self.manual_backward(loss)
        if self.cfg.manipulation.grad_clip:
            nn.utils.clip_grad_norm_(net.parameters(), self.cfg.manipulation.grad_clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()

    def _adapt_alphas(self) -> None:
        """Algorithm 1: shrink α_k when student k falls more than `tolerance` below the original net."""
        mcfg = self.cfg.manipulation
        record: dict[str, float] = {}
        val = self._whole("val")
        for k, (student, target) in enumerate(zip(self.students, self.targets, strict=True)):
            acc = _accuracy(student, val)
            self.alphas[k] = adapt_alpha(self.alphas[k].item(), acc, self.original_val_acc.item(), mcfg.tolerance,
                                         mcfg.alpha_decay)
            record |= {f"manip/alpha_{target}": self.alphas[k].item(), f"manip/val_acc_{target}": acc}
        for logger in self.loggers:  # every check is a row of metrics.csv (self.log would thin them out)
            logger.log_metrics(record, step=self.global_step)

    def configure_optimizers(self) -> list[dict]:
        """One optimizer (and per-step schedule) per network: the original over the training phase, each
        student over the fine-tuning phase."""
        epochs = self.cfg.trainer.max_epochs
        per_epoch = max(1, int(self.trainer.estimated_stepping_batches) // epochs)
        train_epochs = self.cfg.manipulation.train_epochs
        configs = [build_optimizer(self.cfg.optim, self.net.parameters(), train_epochs, train_epochs * per_epoch)]
        tune_epochs = epochs - train_epochs
        configs += [build_optimizer(self.cfg.optim, s.parameters(), tune_epochs, tune_epochs * per_epoch)
                    for s in self.students]
        return configs

    # ---------------------------------------------------------------- evaluation
    def _eval_step(self, batch: tuple[Tensor, Tensor], stage: str) -> None:
        x, y = batch
        self.log(f"{stage}/acc", accuracy(self.net(x), y), batch_size=len(y), prog_bar=stage == "val", sync_dist=True)
        if self.started:
            for student, target in zip(self.students, self.targets, strict=True):
                self.log(f"{stage}/acc_{target}", accuracy(student(x), y), batch_size=len(y), sync_dist=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    @torch.no_grad()
    def analyze(self, datamodule: Any, run_dir: Path) -> dict[str, float]:
        """Test-set CKA maps (minibatch, debiased linear) of the original net and of every student, their
        mean absolute distance to each target, and the students' test accuracy drop; the per-example test
        correctness of the original ("original") and of every student (its target's name) into `outcomes.npz`."""
        mcfg = self.cfg.manipulation
        self.eval()
        loader = self._whole("test")
        x, y = datamodule.test_tensors()
        scores = {"original": correct(self.net, x, y, self.cfg.data.eval_batch_size)} | {
            target: correct(student, x, y, self.cfg.data.eval_batch_size)
            for student, target in zip(self.students, self.targets, strict=True)}
        save_outcomes(run_dir, scores)
        accuracy_of = {name: s.float().mean().item() for name, s in scores.items()}
        original = cka_map(self.net, self.net, loader, self.layers, self.layers, mcfg.extractor)
        maps: dict[str, Tensor] = {}
        metrics: dict[str, float] = {"test_acc_original": accuracy_of["original"]}
        for k, (student, target) in enumerate(zip(self.students, self.targets, strict=True)):
            final = cka_map(student, student, loader, self.layers, self.layers, mcfg.extractor)
            goal = self.target_maps[k].to(final.device)
            before, after = (original - goal).abs().mean().item(), (final - goal).abs().mean().item()
            maps |= {f"{target}: original": original, f"{target}: target": goal, f"{target}: fine-tuned": final}
            metrics |= {f"map_distance_before_{target}": before, f"map_distance_after_{target}": after,
                        f"map_distance_ratio_{target}": after / before if before > 0 else float("nan"),
                        f"acc_drop_{target}": accuracy_of["original"] - accuracy_of[target],
                        f"alpha_final_{target}": self.alphas[k].item()}
        plot_cka_maps(maps, self.layers, run_dir / "figures" / "manipulated_cka_maps.png",
                      "CKA maps of the original net, the targets and the fine-tuned nets (Sec. 4.3)")
        return metrics
