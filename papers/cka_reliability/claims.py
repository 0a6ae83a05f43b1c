"""What the CKA-reliability paper claims that the suite measures so far, and which runs measure it.

Implemented: the translation theorem, the synthetic studies (Sec. 4.2, Fig. 4a, b) and the trained-network
translation (Fig. 4c, smoke scale: an MLP on the embedded MNIST digits). Not yet: the early-layer study
(Sec. 4.1) and the CKA-map manipulation (Sec. 4.3).
"""

from __future__ import annotations

from pathlib import Path

from common.claims import Claim, Expectation
from common.registry import RunPlan

CLAIMS: tuple[Claim, ...] = (
    Claim("translation_limit", "Translating a subset by c·v drives linear CKA to the closed-form limit of "
          "Theorem 1 (relative gap at c = 50)", "Theorem 1, Fig. 4a", "limit_gap_at_max_c",
          {"smoke": Expectation("<=", 0.05), "paper": Expectation("<=", 0.05)}),
    Claim("translation_lowers_cka", "Translating one of two linearly separable cubes lowers linear CKA far "
          "below 1 while a linear classifier is unaffected", "Fig. 4a", "linear_cka_at_max_c",
          {"smoke": Expectation("<=", 0.5), "paper": Expectation("<=", 0.5)}),
    Claim("invertible_map_lowers_cka", "An invertible linear map (no information lost) can give CKA far "
          "from 1 (paper: 0.05-0.72 over the grid)", "Fig. 4b", "map_cka_min",
          {"smoke": Expectation("<=", 0.5), "paper": Expectation("<=", 0.2)}),
    Claim("map_cka_depends_on_ratio", "CKA(X, XM) depends on σ/μ only (largest spread among grid points of "
          "equal σ/μ; sampling noise of M with few seeds)", "Fig. 4b", "map_cka_spread_at_equal_ratio",
          {"smoke": Expectation("<=", 0.05), "paper": Expectation("<=", 0.05)}),
    Claim("svm_unchanged_by_translation", "Translating trained features orthogonally to the linear SVM's "
          "normals leaves its accuracy unchanged (largest change over c ≤ 2·10⁴ and the three cases)",
          "Fig. 4c", "svm_acc_max_change", {"smoke": Expectation("<=", 0.01)}),
    Claim("one_point_collapses_cka", "Translating a single point drives CKA(F, F') toward 0", "Fig. 4c",
          "cka_one_point_at_max_c", {"smoke": Expectation("<=", 0.1)}),
    Claim("one_class_lowers_cka", "Translating one class lowers CKA(F, F') far below 1", "Fig. 4c",
          "cka_one_class_at_max_c", {"smoke": Expectation("<=", 0.5)}),
    Claim("global_shift_keeps_cka", "Translating every point (a global shift) leaves CKA at 1 (sanity check)",
          "Fig. 4c", "cka_all_at_max_c", {"smoke": Expectation(">=", 0.999)}),
)


def plan(scale: str) -> list[RunPlan]:
    if scale == "paper":  # the trained-network study has no paper-scale config yet (CIFAR-10 VGG)
        return [RunPlan("synthetic", ("scale=paper",))]
    return [RunPlan("synthetic"), RunPlan("translation")]


def measure(results: dict[RunPlan, dict[str, float]], scale: str, figure_dir: Path) -> dict[str, float]:
    """Every claim metric is a metric of one run: merge them."""
    return {k: v for metrics in results.values() for k, v in metrics.items()}
