"""The resampling study run after training a FactConv network (White et al. 2024): which alignment a resampled
network needs, over several noise draws, with head retraining and the weight-alignment noise cosines. Plain torch.

Variants (test accuracy, mean ± std over `samples` draws; the k-th draw uses the same fresh noise in every
variant); each variant's per-example score, the fraction of its draws that classify the example correctly (1/0 for
the trained net), goes to `outcomes.npz` (`common.outcomes.save_outcomes`): claims comparing two variants of one run
use the paired per-example difference on the same test set:
- none:      fresh noise, no alignment, BN re-estimated (our control: should collapse toward chance)
- wa:        weight alignment only
- aca:       activation alignment only
- both:      WA + ACA (the paper's method)
- retrained: `both`, then only the Linear head retrained (the paper: 10 epochs)
Beside them: `wa_cosine` (mean and min over FactConv layers and draws of cos(G Q, W0_ref); `_narrow_mean` over
the layers with C_out < D = C_in k² only, with its std and count over those layers × draws) and `fresh_cosine`
(before alignment, ≈ 0): a high WA cosine means "wa" is close to a copy of the trained net.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import nn

from common.layerwise import correct, fit_head, input_of
from common.outcomes import save_outcomes
from common.plotting import plt
from papers.structured_rainbow.resample import resample_factconv

ALIGNMENTS = {"none": (False, False), "wa": (True, False), "aca": (False, True), "both": (True, True)}
VARIANTS = (*ALIGNMENTS, "retrained")


def retrain_classifier(net: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, batch_size: int,
                       generator: torch.Generator) -> nn.Module:
    """Retrain only the Linear head (SGD, momentum 0.9) on the frozen features of the un-augmented training set
    (the features are computed once: the body stays in eval mode, its statistics fixed)."""
    head = net.weight_layers()[-1]
    with torch.no_grad():
        features = torch.cat([input_of(net, head, xb) for xb in x.split(batch_size)])  # (N, C)
    fit_head(head, features, y, epochs, lr, batch_size, generator)
    return net.eval()


def resampling_study(net: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
                     test: tuple[torch.Tensor, torch.Tensor], cfg: DictConfig, seed: int,
                     run_dir: Path) -> dict[str, float]:
    """Every variant × `cfg.samples` draws; returns `resample/<variant>_acc` (+ `_std`) and the noise cosines,
    writes `outcomes.npz` (per-example scores of every variant), `alignment.json` (per-layer cosines) and
    `figures/resampling.png`."""
    x_train, y_train = train
    size = cfg.batch_size
    x_align = x_train if cfg.align_examples is None else x_train[:cfg.align_examples]

    def passes() -> tuple[torch.Tensor, ...]:  # the alignment / normalisation passes
        return x_align.split(size)

    trained = correct(net, *test, size).float()  # (N,)
    hits: dict[str, list[torch.Tensor]] = {v: [] for v in VARIANTS}  # per draw: (N,) 1/0 correct
    layers: list[dict] = []
    for s in range(cfg.samples):
        for variant, (wa, aca) in ALIGNMENTS.items():
            gen = torch.Generator().manual_seed(seed * 1000 + s)
            new, records = resample_factconv(net, passes, gen, weight_align=wa, activation_align=aca)
            hits[variant].append(correct(new, *test, size).float())
            if variant == "both":
                layers += [r | {"sample": s} for r in records]
                new = retrain_classifier(new, x_train, y_train, cfg.retrain_epochs, cfg.retrain_lr, size, gen)
                hits["retrained"].append(correct(new, *test, size).float())
    scores = {"trained": trained} | {v: torch.stack(h).mean(0) for v, h in hits.items()}  # (N,) each
    save_outcomes(run_dir, scores)
    metrics = {f"resample/{v}_acc": score.mean().item() for v, score in scores.items()}
    for variant, draws in hits.items():
        per_draw = torch.stack(draws).mean(1)  # (samples,) accuracy of each draw
        metrics[f"resample/{variant}_acc_std"] = per_draw.std().item() if len(draws) > 1 else 0.0
    for key in ("wa_cosine", "fresh_cosine"):
        values = torch.tensor([r[key] for r in layers])
        metrics[f"resample/{key}_mean"] = values.mean().item()
        metrics[f"resample/{key}_min"] = values.min().item()
    narrow = [r["wa_cosine"] for r in layers if r["c_out"] < r["d"]]  # the regime where WA can restore the noise
    narrow_t = torch.tensor(narrow, dtype=torch.float64)
    metrics |= {"resample/wa_cosine_narrow_mean": narrow_t.mean().item() if narrow else float("nan"),
                "resample/wa_cosine_narrow_std": narrow_t.std().item() if len(narrow) > 1 else float("nan"),
                "resample/wa_cosine_narrow_count": float(len(narrow))}
    (run_dir / "alignment.json").write_text(json.dumps(layers, indent=1))
    _plot(metrics, layers, run_dir / "figures" / "resampling.png")
    return metrics


def _plot(metrics: dict[str, float], layers: list[dict], path: Path) -> None:
    fig, (ax_acc, ax_cos) = plt.subplots(1, 2, figsize=(10, 3.8))
    names = ["trained", *VARIANTS]
    means = [metrics[f"resample/{v}_acc"] for v in names]
    stds = [0.0] + [metrics[f"resample/{v}_acc_std"] for v in VARIANTS]
    ax_acc.bar(names, means, yerr=stds, color=["k", "C7", "C1", "C0", "C3", "C2"], capsize=3)
    ax_acc.axhline(0.1, ls=":", c="gray", label="chance")
    ax_acc.set_ylim(0, 1)
    ax_acc.set_ylabel("test accuracy")
    ax_acc.set_title("resampled FactConv networks, by alignment")
    ax_acc.legend(loc="upper right")
    ratio = [r["c_out"] / r["d"] for r in layers]
    ax_cos.scatter(ratio, [r["wa_cosine"] for r in layers], label="after WA", c="C1")
    ax_cos.scatter(ratio, [r["fresh_cosine"] for r in layers], label="fresh noise", c="C7")
    ax_cos.axvline(1, ls=":", c="gray")
    ax_cos.set_xscale("log")
    ax_cos.set_xlabel("C_out / (C_in k²)")
    ax_cos.set_ylabel("cos(noise, reference noise)")
    ax_cos.set_title("weight alignment restores the noise when C_out < C_in k²", fontsize=10)
    ax_cos.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
