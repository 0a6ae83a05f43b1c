"""What Stamatescu et al. (2020) claim that the suite measures, and which runs measure it.

Sources: the paper's abstract and OpenReview summary were read; its body could not be, so its section and figure
numbers are not given and it states no number a threshold could copy. Every threshold below was fixed before any
measurement; where the paper states only a direction, the source says which part of the threshold is ours.

Paper claims (measure.py gives every value with its SE and n):
- Trainability (the heat map, 6ξ_c drawn over it as the edge of the trainable region, after Schoenholz et al.
  2017): of the cells with L ≤ 6ξ_c at least 80 % train, of those beyond at most 20 % (ours: an edge that puts at
  most one cell in five on the wrong side); Wilson intervals over the cells. Training works best with weight means
  near ±1 (abstract): the σ_m² whose column trains best on average over depths is ≥ 0.8, its interval the σ_m²
  of every column not worse than the best by a test paired by depth (the cells are the replicates).
- Binary networks (one trained surrogate per depth; paired per-example differences on the test set, a test-set SE
  that ignores training noise): 100 sampled binary networks stay within 5 points of the surrogate at every depth
  (ours: "a few points"); 100 samples beat 5 on average over depths (> 0: the paper gives a direction); the sign
  network's gap to the surrogate grows by ≥ 5 points from the shallowest to the deepest surrogate.
Checks: the simulated q^ℓ, c^ℓ follow the maps (estimator against closed form); χ₁ = 1 at the solved critical point
(two numerical routes agree); the critical σ_m² at σ_b² = 0.001 is ≥ 0.75 and the LRT map has no critical point
(properties of the maps under the configured φ, not measurements: under φ = sign or tanh there is no critical line
at σ_b² > 0); the surrogates trained (guarding every claim on trained networks); and the sign network works at the
shallowest depth, where "falls behind at depth" starts (TRAINED = 0.5, the floor a cell must reach to "train").
"""

from __future__ import annotations

from common.claims import Claim, Expectation
from common.registry import RunPlan

BOTH = ("smoke", "paper")
MEAN_FIELD = "mean-field analysis (section and figure not checked)"
TRAINING = "trainability experiments (section and figure not checked)"
BINARY = "binary-network experiments (section and figure not checked)"


def _at(op: str, value: float, scales: tuple[str, ...] = BOTH, tol: float = 0.0) -> dict[str, Expectation]:
    return {scale: Expectation(op, value, tol) for scale in scales}


def _trainability(surrogate: str, scales: tuple[str, ...]) -> tuple[Claim, ...]:
    name, who = ("", "Deterministic") if surrogate == "deterministic" else ("lrt_", "LRT")
    scale = "6ξ_c" if surrogate == "deterministic" else "their own 6ξ_c(LRT)"
    edge = "; threshold ours: the paper draws the line over its heat map and gives no fraction"
    return (
        Claim(f"{name}trainable_within_6xi", "paper",
              f"{who} surrogates train where L ≤ {scale}: the fraction of those cells reaching training accuracy 0.5",
              TRAINING + edge, f"{surrogate}_trained_within_6xi", _at(">=", 0.8, scales)),
        Claim(f"{name}untrainable_beyond_6xi", "paper",
              f"{who} surrogates do not train where L > {scale}: the fraction of those cells reaching training "
              "accuracy 0.5", TRAINING + edge, f"{surrogate}_trained_beyond_6xi", _at("<=", 0.2, scales)),
    )


def _trained_check(surrogate: str, guards: tuple[str, ...], scales: tuple[str, ...]) -> Claim:
    return Claim(f"{surrogate}_grid_trained", "check",
                 f"The training budget trains the {surrogate} grid: the best cell's training accuracy (a shallow "
                 "surrogate reaches ≈ 0.9 on MNIST)", "ours", f"{surrogate}_train_acc_max", _at(">=", 0.8, scales),
                 guards=guards)


CLAIMS: tuple[Claim, ...] = (
    *_trainability("deterministic", BOTH),
    Claim("best_near_one", "paper",
          "Training works best with weight means near ±1: the σ_m² whose cells have the highest mean training "
          "accuracy over depths (interval: every σ_m² not worse than the best by a depth-paired test)",
          "abstract; " + TRAINING + "; threshold ours: 'close to ±1'", "deterministic_best_sigma_m2", _at(">=", 0.8)),
    *_trainability("lrt", ("paper",)),
    Claim("stochastic_binary_close", "paper",
          "Stochastic binary networks averaged over 100 samples stay within a few points of the surrogate: the "
          "largest paired test-accuracy gap over depths", BINARY + "; 'a few points' = 0.05 is ours",
          "binary_gap_stochastic_most_max", _at("<=", 0.05)),
    Claim("more_samples_help", "paper",
          "Averaging 100 sampled binary networks beats averaging 5: the paired test-accuracy gain, averaged over "
          "depths", BINARY + "; the paper states a direction only", "binary_gain_most_over_fewest", _at(">", 0.0)),
    Claim("deterministic_binary_falls_behind", "paper",
          "The deterministic binary network (W = sign M) falls behind the surrogate at depth: its gap at the deepest "
          "surrogate minus its gap at the shallowest (paired)", BINARY + "; the 5-point floor is ours",
          "binary_gap_deterministic_growth", _at(">=", 0.05)),
    Claim("simulation_follows_maps", "check",
          "Simulated q^ℓ and c^ℓ of random deterministic surrogates (width 1000, σ_m² ∈ {0.2, 0.5, 0.99}, σ_b² = "
          "0.001) agree with the maps within Monte Carlo error (Bonferroni p)", MEAN_FIELD, "sim_bonferroni_p",
          _at(">=", 0.01)),
    Claim("critical_point_is_critical", "check",
          "Two numerical routes agree: at the σ_m² solved for χ₁ = 1 (σ_b² = 0.001) the c-map's slope χ₁ computed "
          "from q* is 1", "ours (an identity of theory.py)", "chi1_at_critical", _at("≈", 1.0, tol=1e-6)),
    Claim("critical_weight_means_large", "check",
          "Under the configured φ (erf) the critical σ_m² at σ_b² = 0.001 is large: a property of the map that φ "
          "decides (φ = sign or tanh has no critical point there), not a measurement",
          "abstract ('close to ±1'); " + MEAN_FIELD, "critical_sigma_m2", _at(">=", 0.75)),
    Claim("lrt_has_no_critical_point", "check",
          "The LRT map has no critical point with σ_m² ≤ 1 on the σ_b² axis (fraction of the axis with one): a "
          "bound of the map (its slope at c = 1 is σ_m² E φ'² < 1), not a measurement",
          "ours (derived from the map; the OpenReview TL;DR says only that the trick is 'not helpful')",
          "lrt_critical_fraction", _at("<=", 0.0)),
    _trained_check("deterministic", ("trainable_within_6xi", "untrainable_beyond_6xi", "best_near_one"), BOTH),
    _trained_check("lrt", ("lrt_trainable_within_6xi", "lrt_untrainable_beyond_6xi"), ("paper",)),
    Claim("binary_surrogates_trained", "check",
          "The surrogates of the binary study trained: their smallest test accuracy over depths", "ours",
          "binary_surrogate_acc_min", _at(">=", 0.5),
          guards=("stochastic_binary_close", "more_samples_help", "deterministic_binary_falls_behind")),
    Claim("sign_network_works_shallow", "check",
          "The sign network W = sign(M) works where the comparison starts: its test accuracy at the shallowest depth "
          "(else 'falls behind at depth' is only the surrogate's own change)", "ours",
          "binary_deterministic_acc_shallowest", _at(">=", 0.5), guards=("deterministic_binary_falls_behind",)),
)


def plan(scale: str) -> list[RunPlan]:
    extra = ("scale=paper",) if scale == "paper" else ()
    runs = [RunPlan(name, extra) for name in ("simulation", "phase_diagram", "trainability", "binary")]
    if scale == "paper":
        runs.append(RunPlan("trainability", (*extra, "model.surrogate=lrt")))
    return runs
