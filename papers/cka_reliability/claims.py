"""What the CKA-reliability paper claims that the suite measures so far, and which runs measure it.

Implemented: the translation theorem and the synthetic studies (Sec. 4.2, Fig. 4a, b). Not yet: the
early-layer study (Sec. 4.1), the trained-network translation (Fig. 4c) and the CKA-map manipulation
(Sec. 4.3).
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
)


def plan(scale: str) -> list[RunPlan]:
    return [RunPlan("synthetic", ("scale=paper",) if scale == "paper" else ())]


def measure(results: dict[RunPlan, dict[str, float]], scale: str, figure_dir: Path) -> dict[str, float]:
    """The synthetic run's metrics are the claim metrics."""
    return next(iter(results.values()), {})
