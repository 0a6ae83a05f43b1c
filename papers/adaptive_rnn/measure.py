"""The claim metrics of Geadah et al. (2024) from finished runs, by the rules fixed in `claims.py`.

Every quantity rests on the spread over seeds (`common.stats.mean_over`: SE = sd/√k, Student t_{k−1}):
- scored seeds of a network: clean accuracy >= max(floor, c* − 0.10), c* the best fixed network's seed-mean clean
  accuracy; the others are named in the note of every metric that leaves them out;
- `<model>_minus_best_fixed_retained_<kind>` = mean over the seeds s scored for both networks of
  retained(model, s) − retained(best fixed, s), the best fixed network the one with the highest mean retained
  accuracy for that kind over its scored seeds (the same rule scores baselines and models);
- `<model>_scored_seeds`: the count (exact), `best_fixed_clean_acc`: the reference c* with its spread;
- `<experiment>_<model>_<metric>`: each model's seed means over its scored seeds (`clean_acc`: over every seed;
  sMNIST: every seed), among them the claim metrics `psmnist_heterogeneous_n_cv`, `psmnist_heterogeneous_s_std`
  and `psmnist_adaptive_gain_change`.
A metric whose network has no scored seed is shown over every seed with a note saying so: its check is then not
passed and the claims it guards are not scored.
"""

from __future__ import annotations

import math
from pathlib import Path

from common.outcomes import RunResult
from common.registry import RunPlan
from common.stats import Measured, exact, mean_over
from papers.adaptive_rnn.claims import CLEAN_MARGIN, COMPARED, FIXED, KINDS, MODELS, TRAINED_FLOOR
from papers.adaptive_rnn.plots import plot_comparison, plot_gain_scaling

CHANCE = 0.1  # MNIST: 10 classes
Seed = int | None
Runs = dict[Seed, dict[str, float]]  # seed -> final metrics of one model's runs
REPORTED = ("retained_amplitude", "retained_drive", "retained_noise", "retained_pixel_noise", "n_cv", "s_std",
            "gain_change", "alpha")  # seed means over scored seeds (clean_acc: over every seed)


def _seed(plan: RunPlan) -> Seed:
    return next((int(o.split("=", 1)[1]) for o in plan.overrides if o.startswith("seed=")), None)


def runs_by_model(results: dict[RunPlan, RunResult], experiment: str) -> dict[str, Runs]:
    """{model: {seed: metrics}} of one experiment's runs."""
    out: dict[str, Runs] = {}
    for plan, result in results.items():
        if plan.experiment != experiment:
            continue
        for name, overrides in MODELS.items():
            if set(overrides) <= set(plan.overrides):
                out.setdefault(name, {})[_seed(plan)] = result.metrics
    return out


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def scored_seeds(runs: Runs, reference: float, floor: float) -> list[Seed]:
    """The seeds whose clean accuracy is >= max(floor, reference − CLEAN_MARGIN): the networks that trained."""
    bar = max(floor, reference - CLEAN_MARGIN)
    return [seed for seed, m in runs.items() if m["clean_acc"] >= bar]


def _left_out(runs: Runs, scored: list[Seed]) -> str:
    """'not scored (did not train): seed 1 (clean 0.54)', or '' when every seed is scored."""
    left = [f"seed {seed} (clean {m['clean_acc']:.2f})" for seed, m in runs.items() if seed not in scored]
    return "not scored (did not train): " + ", ".join(left) if left else ""


def trained(runs: Runs, scored: list[Seed]) -> tuple[Runs, str]:
    """The runs of the scored seeds and a note naming the others; with none scored, every run, noted as such (the
    network's check then fails and its claims are not scored)."""
    kept = {seed: m for seed, m in runs.items() if seed in scored}
    return (kept, _left_out(runs, scored)) if kept else (runs, "no seed trained: over every seed, not scored")


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def paired_seed_mean(model: Runs, baseline: Runs, key: str, note: str) -> Measured:
    """Mean over the seeds both ran of the per-seed difference model − baseline of one metric; SE over seeds."""
    gaps = [m[key] - baseline[seed][key] for seed, m in model.items() if seed in baseline]
    if not gaps:
        return Measured(math.nan, math.nan, 0, "seeds", note=_join("no seed scored for both networks", note))
    return mean_over(gaps, "seeds (paired by seed)", note)


def measure(results: dict[RunPlan, RunResult], scale: str, figure_dir: Path) -> dict[str, Measured]:
    """The claim metrics (see the module docstring), each model's seed means, and the comparison figures."""
    experiments = {e: runs_by_model(results, e) for e in ("psmnist", "smnist")}
    ps = experiments["psmnist"]
    out: dict[str, Measured] = {}
    views = {(e, name): (runs, "") for e, models in experiments.items() for name, runs in models.items()}
    fixed = [name for name in FIXED if name in ps]
    if fixed:
        best = max(fixed, key=lambda f: _mean([m["clean_acc"] for m in ps[f].values()]))
        out["best_fixed_clean_acc"] = mean_over([m["clean_acc"] for m in ps[best].values()], "seeds",
                                                f"best fixed network: {best}")
        for name, runs in ps.items():
            scored = scored_seeds(runs, out["best_fixed_clean_acc"].value, TRAINED_FLOOR[scale])
            views["psmnist", name] = trained(runs, scored)
            out[f"{name}_scored_seeds"] = exact(len(scored), len(runs), "seeds", _left_out(runs, scored))
        for model in (m for m in COMPARED if m in ps):
            runs, note = views["psmnist", model]
            for kind in KINDS:
                key = f"retained_{kind}"
                bar = max(fixed, key=lambda f, key=key: _mean([m[key] for m in views["psmnist", f][0].values()]))
                bar_runs, bar_note = views["psmnist", bar]
                out[f"{model}_minus_best_fixed_retained_{kind}"] = paired_seed_mean(
                    runs, bar_runs, key, _join(f"best fixed for {kind}: {bar}", note, bar_note and f"{bar} {bar_note}"))
                if "tanh" in ps:
                    tanh_runs, tanh_note = views["psmnist", "tanh"]
                    out[f"{model}_minus_tanh_retained_{kind}"] = paired_seed_mean(
                        runs, tanh_runs, key, _join(note, tanh_note and f"tanh {tanh_note}"))
    for experiment, models in experiments.items():
        for name, every in models.items():
            out[f"{experiment}_{name}_clean_acc"] = mean_over([m["clean_acc"] for m in every.values()], "seeds")
            runs, note = views[experiment, name]
            for key in REPORTED:
                if all(key in m for m in runs.values()):
                    out[f"{experiment}_{name}_{key}"] = mean_over([m[key] for m in runs.values()], "seeds", note)
    _figures({e: {name: views[e, name][0] for name in models} for e, models in experiments.items()}, figure_dir)
    return out


def _strengths(metrics: dict[str, float], prefix: str) -> list[float]:
    """The sorted ξ of the metrics named <prefix>_xi<ξ>."""
    return sorted(float(k.split("_xi")[1]) for k in metrics if k.startswith(f"{prefix}_xi"))


def _figures(experiments: dict[str, dict[str, Runs]], figure_dir: Path) -> None:
    """Seed means (scored seeds) of every metric per model: the retained-accuracy comparison and the ARU's gain
    scaling."""
    means = {f"{experiment}/{name}": {k: _mean([m[k] for m in runs.values()])
                                      for k in set.intersection(*(set(m) for m in runs.values()))}
             for experiment, models in experiments.items() for name, runs in models.items()}
    ps = {key.split("/")[1]: m for key, m in means.items() if key.startswith("psmnist/")}
    if ps:
        first = next(iter(ps.values()))
        plot_comparison(ps, {kind: _strengths(first, f"{kind}_acc") for kind in KINDS}, CHANCE,
                        figure_dir / "retained_accuracy.png")
    curves = {}
    for name, m in means.items():
        if "gain_n_fit_a" in m:
            xis = _strengths(m, "gain_n")
            curves[name] = {"xi": xis, **{k: [m[f"gain_{k}_xi{x:g}"] for x in xis] for k in "ns"},
                            "fit": {k: [m[f"gain_{k}_fit_{p}"] for p in "abc"] for k in "ns"}}
    if curves:
        plot_gain_scaling(curves, figure_dir / "gain_scaling.png")

