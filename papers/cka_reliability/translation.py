"""Translating a trained network's features without changing its linear separability (Davari et al.
2023, Sec. 4.2, Fig. 4c). Plain torch + scikit-learn's linear SVM.

Features F of the last hidden layer on the training set; a one-vs-rest linear SVM (normals w_k) is fit
and scored on F. A direction v, nearly orthogonal to every w_k, with every coordinate ≥ floor (features
stay in the ReLU orthant): minimise ‖Qᵀv‖² subject to v ≥ floor, Q an orthonormal basis of the normals
(projected gradient), then v / ‖v‖. Translating rows of F by c·v changes each SVM score by c·w_kᵀv ≈ 0,
so the accuracy stays put while linear CKA(F, F') falls toward the limit of Theorem 1 when one class or one
point moves, and stays exactly 1 for "all" (a global shift).

As in the paper, "one class" is every class in turn and "one point" `points` random rows in turn (drawn with
`point_seed`): the run reports the mean and standard deviation over these instances, of one trained net.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from sklearn.svm import LinearSVC

from common.metrics.cka import cka
from common.plotting import plt
from papers.cka_reliability.theory import translation_limit


def orthogonal_direction(normals: np.ndarray, floor: float, tol: float = 1e-12, max_steps: int = 200_000
                         ) -> np.ndarray:
    """argmin ‖Qᵀv‖² s.t. v ≥ floor (projected gradient, step 1/L with L = 2: QQᵀ is a projection), normalised; Q
    spans the SVM normals (k × d). Iterates until ‖Qᵀv‖ ≤ tol·‖v‖ (or `max_steps`): convergence can take 10⁴
    steps, and at c = 2·10⁴ a residual of 10⁻³ moves the SVM scores by 20·‖w‖ (the `svm_acc_max_change` check
    catches a direction that did not converge)."""
    q, _ = np.linalg.qr(normals.T)  # (d, k)
    v = np.full(normals.shape[1], 1.0)
    for step in range(max_steps):
        v = np.maximum(v - 0.5 * q @ (q.T @ v), floor)
        if step % 100 == 0 and np.linalg.norm(q.T @ v) <= tol * np.linalg.norm(v):
            break
    return v / np.linalg.norm(v)


def translation_cases(labels: torch.Tensor, points: int, point_seed: int) -> dict[str, list[torch.Tensor]]:
    """The rows each translation moves: "all" (one mask), "one class" (a mask per class present) and "one point"
    (`points` distinct random rows, one mask each)."""
    n = len(labels)
    rows = torch.randperm(n, generator=torch.Generator().manual_seed(point_seed))[:points]
    return {"all": [torch.ones(n, dtype=torch.bool)],
            "one class": [labels == k for k in labels.unique().tolist()],
            "one point": [torch.arange(n) == i for i in rows.tolist()]}


def translation_study(features: torch.Tensor, labels: torch.Tensor, cfg: DictConfig, figure_dir: Path,
                      point_seed: int) -> dict[str, float]:
    """SVM accuracy and linear CKA(F, F') against c for every translation case (`translation_cases`); per case
    type, the mean and SD over its instances of CKA at the largest c and of the Theorem 1 limit."""
    f = features.double().cpu()
    y = labels.cpu()
    svm = LinearSVC(C=cfg.svm_c, max_iter=cfg.svm_max_iter).fit(f.numpy(), y.numpy())
    v = torch.from_numpy(orthogonal_direction(svm.coef_, cfg.floor))
    base_acc = svm.score(f.numpy(), y.numpy())
    accs: dict[str, torch.Tensor] = {}  # case -> (instances, len(c))
    ckas: dict[str, torch.Tensor] = {}
    limits: dict[str, torch.Tensor] = {}
    for case, masks in translation_cases(y, cfg.points, point_seed).items():
        accs[case], ckas[case] = torch.zeros(len(masks), len(cfg.c_values)), torch.zeros(len(masks), len(cfg.c_values))
        limits[case] = torch.tensor([translation_limit(f, mask) for mask in masks])
        for i, mask in enumerate(masks):
            for j, c in enumerate(cfg.c_values):
                moved = f + c * mask[:, None].double() * v
                accs[case][i, j] = svm.score(moved.numpy(), y.numpy())
                ckas[case][i, j] = cka(f, moved)
    _plot(list(cfg.c_values), accs, ckas, base_acc, figure_dir)
    metrics = {
        "svm_acc": base_acc,
        "svm_acc_max_change": max((a - base_acc).abs().max().item() for a in accs.values()),
        "normals_dot_v_max": float(np.abs(svm.coef_ @ v.numpy()).max() / np.linalg.norm(svm.coef_, axis=1).max()),
        "train_examples": float(len(y)),
        "cka_all_at_max_c": ckas["all"][0, -1].item(),
    }
    for case in ("one class", "one point"):
        tag = case.replace(" ", "_")
        at_max = ckas[case][:, -1]
        metrics |= {f"cka_{tag}_at_max_c": at_max.mean().item(),
                    f"cka_{tag}_at_max_c_sd": at_max.std().item() if len(at_max) > 1 else float("nan"),
                    f"{tag}_cases": float(len(at_max)), f"limit_{tag}": limits[case].mean().item()}
    return metrics


def _plot(cs: list[float], accs: dict[str, torch.Tensor], ckas: dict[str, torch.Tensor], base_acc: float,
          figure_dir: Path) -> None:
    """Mean over a case's instances, ± their SD shaded."""
    fig, (ax_acc, ax_cka) = plt.subplots(1, 2, figsize=(10, 3.8))
    for case in accs:
        label = f"{case} ({len(accs[case])})" if len(accs[case]) > 1 else case
        for ax, values in ((ax_acc, accs[case]), (ax_cka, ckas[case])):
            mean = values.mean(0)
            sd = values.std(0) if len(values) > 1 else torch.zeros_like(mean)
            ax.semilogx(cs, mean, marker="o", label=label)
            ax.fill_between(cs, mean - sd, mean + sd, alpha=0.2)
    ax_acc.axhline(base_acc, ls=":", c="gray")
    ax_acc.set_ylim(0, 1.02)
    ax_acc.set_xlabel("translation c")
    ax_acc.set_ylabel("linear SVM accuracy")
    ax_cka.set_ylim(0, 1.05)
    ax_cka.set_xlabel("translation c")
    ax_cka.set_ylabel("linear CKA(F, F')")
    for ax in (ax_acc, ax_cka):
        ax.legend()
    fig.suptitle("translating trained features orthogonally to the SVM normals (Fig. 4c; mean ± SD over instances)")
    fig.tight_layout()
    fig.savefig(figure_dir / "translation.png", dpi=110)
    plt.close(fig)
