"""Critical initialisation in continuous approximations of binary neural networks (Stamatescu, Gerace,
Lucibello, Fuss, White, ICLR 2020, arXiv 1902.00177): surrogates of stochastic binary networks trained by
backpropagation, and their signal propagation at initialisation.

Theory: the mean-field maps of the deterministic and LRT surrogates (theory.py, on the Gaussian expectations of
gaussian.py). Models: the surrogate layers and networks, and the stochastic and deterministic binary networks
taken from a surrogate (layers.py); a grid of surrogates of different depths and σ_m² trained as one model
(grid.py, module.py). Experiments: `simulation` (simulated q^ℓ, c^ℓ against the maps), `phase_diagram` (χ₁, ξ_c
and the critical line), `trainability` (training accuracy over depth × σ_m² against 6ξ_c) and `binary` (the
binary networks of trained surrogates against depth).
"""

from common.registry import PaperSpec, register
from papers.binary_surrogates.claims import CLAIMS, plan
from papers.binary_surrogates.measure import measure
from papers.binary_surrogates.module import build_module
from papers.binary_surrogates.phase import run_phase_diagram
from papers.binary_surrogates.simulation import run_simulation

PAPER = register(PaperSpec(
    name="binary_surrogates",
    title="Critical initialisation in continuous approximations of binary neural networks "
          "(Stamatescu et al., ICLR 2020)",
    claims=CLAIMS, plan=plan, measure=measure, build_module=build_module,
    computations={"simulation": run_simulation, "phase_diagram": run_phase_diagram},
    result_columns={
        "simulation": ("sim_bonferroni_p", "sim_max_abs_t", "sim_points"),
        "phase_diagram": ("critical_sigma_m2", "chi1_at_critical", "lrt_critical_fraction", "ordered_fraction"),
        "trainability": ("*_trained_within_6xi", "*_trained_beyond_6xi", "*_best_sigma_m2", "*_train_acc_max",
                         "*_train_acc_mean"),
        "binary": ("test/acc", "binary_gap_stochastic*_max", "binary_gain_most_over_fewest_samples",
                   "binary_gap_deterministic_growth"),
    }))
