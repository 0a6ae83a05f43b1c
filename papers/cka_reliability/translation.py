"""Translating a trained network's features without changing its linear separability (Davari et al.
2023, Sec. 4.2, Fig. 4c). Plain torch + scikit-learn's linear SVM.

Features F of the last hidden layer on the training set; a one-vs-rest linear SVM (normals w_k) is fit
and scored on F. A direction v, nearly orthogonal to every w_k, with every coordinate ≥ floor (features
stay in the ReLU orthant): minimise ‖Qᵀv‖² subject to v ≥ floor, Q an orthonormal basis of the normals
(projected gradient), then v / ‖v‖. Translating rows of F by c·v changes each SVM score by c·w_kᵀv ≈ 0,
so the accuracy stays put while linear CKA(F, F') falls for "one class" and "one point" (toward the
limit of Theorem 1) and stays exactly 1 for "all" (a global shift).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from omegaconf import DictConfig  # noqa: E402
from sklearn.svm import LinearSVC  # noqa: E402

from common.metrics.cka import cka  # noqa: E402


def orthogonal_direction(normals: np.ndarray, floor: float, steps: int = 2000) -> np.ndarray:
    """argmin ‖Qᵀv‖² s.t. v ≥ floor (projected gradient), normalised; Q spans the SVM normals (k × d)."""
    q, _ = np.linalg.qr(normals.T)  # (d, k)
    v = np.full(normals.shape[1], 1.0)
    for _ in range(steps):
        v = np.maximum(v - 0.5 * q @ (q.T @ v), floor)  # step 1/L with L = 2 (QQᵀ is a projection)
    return v / np.linalg.norm(v)


def translation_study(features: torch.Tensor, labels: torch.Tensor, cfg: DictConfig, figure_dir: Path
                      ) -> dict[str, float]:
    """SVM accuracy and linear CKA(F, F') against c for the three translation cases."""
    f = features.double().cpu()
    y = labels.cpu().numpy()
    svm = LinearSVC(C=cfg.svm_c, max_iter=cfg.svm_max_iter).fit(f.numpy(), y)
    v = torch.from_numpy(orthogonal_direction(svm.coef_, cfg.floor))
    cases = {"one class": torch.from_numpy(y == 0), "all": torch.ones(len(y), dtype=torch.bool),
             "one point": torch.arange(len(y)) == 0}
    base_acc = svm.score(f.numpy(), y)
    curves: dict[str, tuple[list[float], list[float]]] = {}
    for name, mask in cases.items():
        accs, ckas = [], []
        for c in cfg.c_values:
            moved = f + c * mask[:, None].double() * v
            accs.append(svm.score(moved.numpy(), y))
            ckas.append(cka(f, moved).item())
        curves[name] = (accs, ckas)
    _plot(list(cfg.c_values), curves, base_acc, figure_dir)
    return {
        "svm_acc": base_acc,
        "svm_acc_max_change": max(abs(a - base_acc) for accs, _ in curves.values() for a in accs),
        "normals_dot_v_max": float(np.abs(svm.coef_ @ v.numpy()).max() / np.linalg.norm(svm.coef_, axis=1).max()),
        "cka_one_class_at_max_c": curves["one class"][1][-1],
        "cka_one_point_at_max_c": curves["one point"][1][-1],
        "cka_all_at_max_c": curves["all"][1][-1],
    }


def _plot(cs: list[float], curves: dict[str, tuple[list[float], list[float]]], base_acc: float,
          figure_dir: Path) -> None:
    fig, (ax_acc, ax_cka) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, (accs, ckas) in curves.items():
        ax_acc.semilogx(cs, accs, marker="o", label=name)
        ax_cka.semilogx(cs, ckas, marker="o", label=name)
    ax_acc.axhline(base_acc, ls=":", c="gray")
    ax_acc.set_ylim(0, 1.02)
    ax_acc.set_xlabel("translation c")
    ax_acc.set_ylabel("linear SVM accuracy")
    ax_cka.set_ylim(0, 1.05)
    ax_cka.set_xlabel("translation c")
    ax_cka.set_ylabel("linear CKA(F, F')")
    for ax in (ax_acc, ax_cka):
        ax.legend()
    fig.suptitle("translating trained features orthogonally to the SVM normals (Fig. 4c)")
    fig.tight_layout()
    fig.savefig(figure_dir / "translation.png", dpi=110)
    plt.close(fig)
