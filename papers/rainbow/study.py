"""The resampling study run after training: every variant of Guth et al. Table 1 plus our controls,
over several sampling seeds, with the head-retraining variant and the covariance spectra. Plain torch.

Variants (accuracy on the test split, mean ± std over `samples` sampling seeds; per-example scores saved):
- rainbow:   layers 1..J−1 sampled, layer J trained and rotated, classifier rotated (the table's row)
- full:      all J layers sampled, classifier rotated (computed by the authors, not in the table)
- retrained: `full`, then layer J and the classifier retrained, earlier layers frozen (table's last row)
- noalign:   all J layers sampled, no alignment anywhere (ours: should collapse toward chance)
- iid:       all J layers sampled from tr(C)/D · I, aligned (ours: covariance structure matters)
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import DictConfig
from torch import nn

from common.layerwise import correct, reestimate_norm_stats
from common.linalg import eigvalsh_desc
from common.outcomes import save_outcomes
from common.plotting import plt
from papers.rainbow.resample import covariance_roots, effective_rank, fit_covariance, resample

VARIANTS = ("rainbow", "full", "retrained", "noalign", "iid")


def retrain_head(net: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, batch_size: int,
                 generator: torch.Generator) -> nn.Module:
    """Train the last hidden weight layer and the classifier (SGD, momentum 0.9), all else frozen."""
    trainable = net.weight_layers()[-2:]
    for p in net.parameters():
        p.requires_grad_(False)
    params = [layer.weight for layer in trainable]
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.SGD(params, lr=lr, momentum=0.9)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator).to(x.device)
        for idx in order.split(batch_size):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
    reestimate_norm_stats(net, lambda: x.split(batch_size))
    return net.eval()


def resampling_study(net: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
                     test: tuple[torch.Tensor, torch.Tensor], cfg: DictConfig, seed: int,
                     run_dir: Path) -> dict[str, float]:
    """All variants × `cfg.samples` seeds; returns `resample/<variant>_acc` (+ `_std` over samples) and spectra.

    Per-example scores go to `<run_dir>/outcomes.npz` (`save_outcomes`): `trained` 1/0 correct, every variant
    the fraction of its `samples` sampled networks that classify the example correctly, so that two variants
    compare by the paired per-example difference; figures go to `<run_dir>/figures/`.
    """
    x_train, y_train = train
    size = cfg.batch_size
    x_align = x_train if cfg.align_examples is None else x_train[:cfg.align_examples]

    def passes() -> tuple[torch.Tensor, ...]:  # the alignment / normalisation passes
        return x_align.split(size)

    def scored(model: nn.Module) -> torch.Tensor:  # (n_test,) 1/0 correct
        return correct(model, *test, size).float().cpu()

    layers = net.weight_layers()
    n_hidden = len(layers) - 1
    trained = scored(net)
    hits: dict[str, list[torch.Tensor]] = {v: [] for v in VARIANTS}
    roots = covariance_roots(net, rank=cfg.rank)
    iid_roots = covariance_roots(net, rank=cfg.rank, covariance="isotropic")
    for s in range(cfg.samples):
        gen = torch.Generator().manual_seed(seed * 1000 + s)
        hits["rainbow"].append(scored(resample(net, passes, n_hidden - 1, gen, roots=roots)))
        full = resample(net, passes, n_hidden, gen, roots=roots)
        hits["full"].append(scored(full))
        retrained = retrain_head(full, x_train, y_train, cfg.retrain_epochs, cfg.retrain_lr, size, gen)
        hits["retrained"].append(scored(retrained))
        hits["noalign"].append(scored(resample(net, passes, n_hidden, gen, align=False, roots=roots)))
        hits["iid"].append(scored(resample(net, passes, n_hidden, gen, roots=iid_roots)))
    scores = {"trained": trained} | {v: torch.stack(h).mean(0) for v, h in hits.items()}  # (n_test,) each
    save_outcomes(run_dir, scores)
    metrics: dict[str, float] = {"resample/trained_acc": trained.mean().item()}
    for variant, h in hits.items():
        per_sample = torch.stack(h).mean(1)  # (samples,) accuracy of each sampled network
        metrics[f"resample/{variant}_acc"] = per_sample.mean().item()
        metrics[f"resample/{variant}_acc_std"] = per_sample.std().item() if len(h) > 1 else 0.0
    covs = [fit_covariance([layer.weight.detach()]) for layer in layers[:-1]]
    for j, cov in enumerate(covs, start=1):
        metrics[f"resample/rank90_frac_layer{j}"] = effective_rank(cov) / cov.shape[0]
    # C = WᵀW/N has rank <= min(N, D): the rest of the spectrum is rounding noise
    spectra = [eigvalsh_desc(cov).cpu()[:layer.weight.shape[0]] for cov, layer in zip(covs, layers, strict=False)]
    _plot(metrics, spectra, run_dir / "figures")
    return metrics


def _plot(metrics: dict[str, float], spectra: list[torch.Tensor], figure_dir: Path) -> None:
    fig, (ax_acc, ax_spec) = plt.subplots(1, 2, figsize=(10, 3.8))
    names = ["trained", *VARIANTS]
    means = [metrics["resample/trained_acc"]] + [metrics[f"resample/{v}_acc"] for v in VARIANTS]
    stds = [0.0] + [metrics[f"resample/{v}_acc_std"] for v in VARIANTS]
    ax_acc.bar(names, means, yerr=stds, color=["k", "C3", "C1", "C2", "C7", "C0"], capsize=3)
    ax_acc.axhline(0.1, ls=":", c="gray", label="chance")
    ax_acc.set_ylabel("test accuracy")
    ax_acc.set_ylim(0, 1)
    ax_acc.set_title("resampled networks")
    ax_acc.legend(loc="upper right")
    for j, spectrum in enumerate(spectra, start=1):
        ax_spec.semilogy((spectrum / spectrum.sum()).clamp_min(1e-12), label=f"layer {j}")
    ax_spec.set_xlabel("eigenvalue index")
    ax_spec.set_ylabel("share of tr C")
    ax_spec.set_title("weight covariance spectra")
    ax_spec.legend()
    fig.tight_layout()
    figure_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure_dir / "resampling.png", dpi=110)
    plt.close(fig)
