"""What Stamatescu et al. (2020) claim that the suite measures, and which runs measure it.

Thresholds were fixed before any measurement. Sources: the paper's abstract and OpenReview summary were read;
its section and figure numbers could not be checked here, so they are given as the part of the paper a claim
belongs to ("mean-field analysis", "experiments"), not as figure numbers. The critical line itself depends on
the mean function φ (theory.py: "erf", the one convention with an order-to-chaos transition).

- Signal propagation: every simulated q^ℓ, c^ℓ agrees with the maps (Bonferroni-corrected two-sided
  t-test over all (σ_m², layer, quantity), p ≥ 0.01).
- Phase diagram: the critical point at σ_b² = 0.001 has χ₁ = 1, lies at large weight means (σ_m² ≥ 0.75: "close to
  ±1"), and the LRT surrogate has no critical point with σ_m² ≤ 1 anywhere on the σ_b² axis.
- Trainability (analysis.py): of the cells with L ≤ 6ξ_c at least 80 % reach training accuracy 0.5, of those
  beyond at most 20 %; the σ_m² that trains best on average is ≥ 0.8.
- Binary networks: 100 sampled binary networks stay within 5 points of the surrogate's test accuracy at every
  depth, and beat 5 samples on average; the sign network's gap to the surrogate grows by ≥ 5 points from the
  shallowest to the deepest network.
"""

from __future__ import annotations

from pathlib import Path

from common.claims import Claim, Expectation
from common.registry import RunPlan

BOTH = ("smoke", "paper")
MEAN_FIELD = "mean-field analysis (section and figure not checked)"
TRAINING = "trainability experiments (section and figure not checked)"
BINARY = "binary-network experiments (section and figure not checked)"


def _at(op: str, value: float, scales: tuple[str, ...] = BOTH, tol: float = 0.0) -> dict[str, Expectation]:
    return {scale: Expectation(op, value, tol) for scale in scales}


CLAIMS: tuple[Claim, ...] = (
    Claim("simulation_follows_maps", "Simulated q^ℓ and c^ℓ of random deterministic surrogates (width 1000, "
          "σ_m² ∈ {0.2, 0.5, 0.99}, σ_b² = 0.001) agree with the maps within Monte Carlo error (Bonferroni p)",
          MEAN_FIELD, "sim_bonferroni_p", _at(">=", 0.01)),
    Claim("critical_point_is_critical", "At the critical σ_m² for σ_b² = 0.001 the c-map's slope χ₁ is 1",
          MEAN_FIELD, "chi1_at_critical", _at("≈", 1.0, tol=1e-6)),
    Claim("critical_weight_means_large", "Critical initialisation needs weight means close to ±1: the critical "
          "σ_m² at σ_b² = 0.001", "abstract; " + MEAN_FIELD, "critical_sigma_m2", _at(">=", 0.75)),
    Claim("lrt_has_no_critical_point", "The LRT surrogate has no critical initialisation (fraction of the σ_b² "
          "axis where one exists with σ_m² ≤ 1)", "OpenReview TL;DR; " + MEAN_FIELD, "lrt_critical_fraction",
          _at("<=", 0.0)),
    Claim("trainable_within_6xi", "Deterministic surrogates train where L ≤ 6ξ_c (fraction of those cells "
          "reaching training accuracy 0.5)", TRAINING, "deterministic_trained_within_6xi", _at(">=", 0.8)),
    Claim("untrainable_beyond_6xi", "Deterministic surrogates do not train where L > 6ξ_c (fraction of those "
          "cells reaching training accuracy 0.5)", TRAINING, "deterministic_trained_beyond_6xi",
          _at("<=", 0.2)),
    Claim("best_near_one", "Training works best with weight means near ±1 (σ_m² with the highest mean training "
          "accuracy over depths)", "abstract; " + TRAINING, "deterministic_best_sigma_m2", _at(">=", 0.8)),
    Claim("lrt_trainable_within_6xi", "LRT surrogates follow their own depth scale: cells with L ≤ 6ξ_c(LRT) "
          "train", TRAINING, "lrt_trained_within_6xi", _at(">=", 0.8, ("paper",))),
    Claim("lrt_untrainable_beyond_6xi", "LRT surrogates do not train beyond L > 6ξ_c(LRT)", TRAINING,
          "lrt_trained_beyond_6xi", _at("<=", 0.2, ("paper",))),
    Claim("stochastic_binary_close", "Stochastic binary networks averaged over 100 samples stay within a few "
          "points of the surrogate (largest test-accuracy gap over depths)", BINARY,
          "binary_gap_stochastic100_max", _at("<=", 0.05)),
    Claim("more_samples_help", "Averaging 100 sampled binary networks beats averaging 5 (mean gain over depths)",
          BINARY, "binary_gain_most_over_fewest_samples", _at(">=", 0.0)),
    Claim("deterministic_binary_falls_behind", "The deterministic binary network (W = sign M) falls behind the "
          "surrogate at depth (growth of its gap, shallowest to deepest)", BINARY,
          "binary_gap_deterministic_growth", _at(">=", 0.05)),
)


def plan(scale: str) -> list[RunPlan]:
    extra = ("scale=paper",) if scale == "paper" else ()
    runs = [RunPlan(name, extra) for name in ("simulation", "phase_diagram", "trainability", "binary")]
    if scale == "paper":
        runs.append(RunPlan("trainability", (*extra, "model.surrogate=lrt")))
    return runs


def measure(results: dict[RunPlan, dict[str, float]], scale: str, figure_dir: Path) -> dict[str, float]:
    """Every claim metric is a metric of one run (the trainability runs prefix theirs with the surrogate):
    merge them."""
    return {k: v for metrics in results.values() for k, v in metrics.items()}
