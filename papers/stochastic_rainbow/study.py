"""Evaluating a trained stochastic rainbow network (White et al. 2024, Sci4DL). Plain torch.

For each of `samples` draws s = 1..S (draw s seeds its generator with seed·1000 + s):
  (i)   one fixed sample: a fresh W_gen in every layer; one pass of the (un-augmented) training inputs with the
        alignments accumulating their running cross-covariance K = Σ X_genᵀ X_ref and every BatchNorm
        re-estimated; then Q = polar(K) frozen and BatchNorm re-estimated once more under the frozen alignment.
        Scored on the WHOLE test set (`sample/acc_mean`, `_std`, `_min` over draws; `sample/fixed_acc`: draw 1).
  (ii)  draw 1 with only its Linear head retrained on its frozen training features (`sample/retrained_acc`).
  (iii) ensembles: the mean logits of the first K draws, K = 1..S (`ensemble/acc_k<K>`; `ensemble/acc` = S).
Per-example scores go to `outcomes.npz` (`common.outcomes.save_outcomes`): `sample` (the fraction of the S draws
that classify the example correctly: its mean is `sample/acc_mean`), `ensemble` (K = S) and `retrained` (1/0), so
that claims comparing two of them, or two runs on the same test set, use the paired per-example difference.
Beside them, how well each draw's rotations recover the reference features: `Align.residual`, ‖X_gen Q − X_ref‖ /
‖X_ref‖ over the calibration pass, per alignment (in module order) and draw (`sampling.json`); the metrics
`sample/align_residual_mean` / `_max` are the mean / largest over alignments of the draw-mean residual.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from common.layerwise import Batches, fit_head, input_of, reestimate_norm_stats
from common.outcomes import save_outcomes
from common.plotting import plt
from papers.stochastic_rainbow.layers import Align, full_reference, redraw_all, set_align_mode


@torch.no_grad()
def fix_sample(net: nn.Module, batches: Batches, generator: torch.Generator) -> nn.Module:
    """(i): `net` with a fresh W_gen, its alignments frozen at the running cross-covariance of `batches` and its
    BatchNorm statistics re-estimated (eval mode)."""
    redraw_all(net, generator)
    with full_reference(net):  # K from every example, whatever the training's reference fraction
        set_align_mode(net, "accumulate")
        reestimate_norm_stats(net, batches)  # one pass: K sums and BN statistics under the batch alignment
    set_align_mode(net, "running")
    reestimate_norm_stats(net, batches)  # BN statistics under the frozen alignment
    return net.eval()


@torch.no_grad()
def logits_of(net: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Logits of `net` (eval mode) on the whole of x."""
    return torch.cat([net(xb) for xb in x.split(batch_size)])


def hits(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(N,) 1.0 where the logits' argmax is the label, else 0.0."""
    return (logits.argmax(-1) == y).float()


def retrained_logits(net: nn.Module, train: tuple[torch.Tensor, torch.Tensor], x_test: torch.Tensor,
                     cfg: DictConfig, generator: torch.Generator) -> torch.Tensor:
    """(ii): test logits of `net` (a fixed sample) after retraining a copy of its Linear head on its frozen
    features of the un-augmented training set."""
    head = net.classifier
    with torch.no_grad():
        train_features = torch.cat([input_of(net, head, xb) for xb in train[0].split(cfg.batch_size)])  # (N, C)
        test_features = torch.cat([input_of(net, head, xb) for xb in x_test.split(cfg.batch_size)])
    new_head = fit_head(copy.deepcopy(head), train_features, train[1], cfg.retrain_epochs, cfg.retrain_lr,
                        cfg.batch_size, generator)
    with torch.no_grad():
        return new_head(test_features)


def sampling_study(net: nn.Module, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                   cfg: DictConfig, seed: int, run_dir: Path) -> dict[str, float]:
    """(i)-(iii) on a copy of `net`; writes `outcomes.npz` (per-example scores), `sampling.json` (per-draw
    accuracies) and `figures/ensemble.png`."""
    net = copy.deepcopy(net)
    x_align = train[0] if cfg.align_examples is None else train[0][:cfg.align_examples]

    def passes() -> tuple[torch.Tensor, ...]:
        return x_align.split(cfg.batch_size)

    x_test, y_test = test
    total = torch.zeros(len(y_test), net.classifier.out_features, device=y_test.device)
    single, ensemble, residuals = [], [], []
    sample_hits = torch.zeros(len(y_test), device=y_test.device)  # (N,) how many draws got each example right
    aligns = [m for m in net.modules() if isinstance(m, Align)]
    for s in range(1, cfg.samples + 1):
        gen = torch.Generator(device=x_test.device).manual_seed(seed * 1000 + s)
        logits = logits_of(fix_sample(net, passes, gen), x_test, cfg.batch_size)
        residuals.append([m.residual() for m in aligns])
        total += logits.float()
        draw_hits = hits(logits, y_test)
        sample_hits += draw_hits
        single.append(draw_hits.mean().item())
        ensemble_hits = hits(total, y_test)  # argmax of the mean = argmax of the sum
        ensemble.append(ensemble_hits.mean().item())
        if s == 1:
            retrained_hits = hits(retrained_logits(net, train, x_test, cfg, torch.Generator().manual_seed(seed)),
                                  y_test)
    save_outcomes(run_dir, {"sample": sample_hits / cfg.samples, "ensemble": ensemble_hits,
                            "retrained": retrained_hits})
    retrained = retrained_hits.mean().item()
    acc = torch.tensor(single)
    per_layer = torch.tensor(residuals).mean(0)  # (alignments,): the draw-mean residual of each alignment
    metrics = {"sample/fixed_acc": single[0], "sample/acc_mean": acc.mean().item(),
               "sample/acc_std": acc.std().item() if len(single) > 1 else 0.0, "sample/acc_min": acc.min().item(),
               "sample/retrained_acc": retrained, "ensemble/acc": ensemble[-1],
               **{f"ensemble/acc_k{k}": a for k, a in enumerate(ensemble, 1)},
               "sample/align_residual_mean": per_layer.mean().item(),
               "sample/align_residual_max": per_layer.max().item()}
    (run_dir / "sampling.json").write_text(json.dumps({"single": single, "ensemble": ensemble, "retrained": retrained,
                                                       "align_residual": residuals}, indent=1))
    _plot(single, ensemble, retrained, run_dir / "figures" / "ensemble.png")
    return metrics


def _plot(single: list[float], ensemble: list[float], retrained: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(5, 3.6))
    ks = range(1, len(ensemble) + 1)
    ax.plot(ks, ensemble, "o-", label="ensemble of K samples (mean logits)")
    ax.plot(ks, single, "x", c="gray", label="sample K alone")
    ax.axhline(retrained, ls="--", c="C2", label="sample 1, head retrained")
    ax.set_xlabel("K")
    ax.set_ylabel("test accuracy")
    ax.set_title("stochastic rainbow network: samples and ensembles", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
