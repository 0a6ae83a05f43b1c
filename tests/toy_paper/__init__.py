"""A test-only paper, so that the tests of the CLI, the reports and the run lifecycle do not ride on a real paper's
claims: an MLP on scikit-learn's digits, and one claim of each kind.

- paper claim `learns_digits`: test accuracy >= 0.5 (one run: its test-set SE, `ONE_RUN`);
- control `trained_beats_permuted_head`: the trained net against itself with its classifier's rows permuted, a paired
  per-example difference on the same test examples (> 0);
- check `trained`: train accuracy >= 0.5, guarding `learns_digits`.

`toy_paper()` is a context manager that registers it (with its config folder) for the duration of a test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from common import config, registry
from common.claims import Claim, Expectation
from common.classifier import ImageClassifier
from common.layerwise import correct
from common.models import build_model
from common.outcomes import RunResult, save_outcomes
from common.plotting import plt
from common.registry import PaperSpec, RunPlan
from common.stats import ONE_RUN, Measured, exact, max_of, mean_of_scores, min_of, paired_difference

CONFIGS = Path(__file__).resolve().parent / "configs"
WIDTHS = (16, 32)

CLAIMS = (
    Claim("learns_digits", "paper", "An MLP learns the digits (test accuracy)", "Toy et al., Table 1 (0.5)",
          "min_test_acc", {"smoke": Expectation(">=", 0.5), "paper": Expectation("≈", 0.9, 0.05)}),
    Claim("trained_beats_permuted_head", "control", "Permuting the classifier's rows loses accuracy (trained − "
          "permuted, paired on the test set)", "ours", "min_trained_minus_permuted",
          {"smoke": Expectation(">", 0.0)}),
    Claim("trained", "check", "The nets trained (train accuracy)", "ours", "min_train_acc",
          {"smoke": Expectation(">=", 0.5)}, guards=("learns_digits",)),
)


class ToyModule(ImageClassifier):
    def analyze(self, datamodule: Any, run_dir: Path) -> dict[str, float]:
        x, y = datamodule.test_tensors()
        trained = correct(self.net, x, y, 256)
        head = self.net.weight_layers()[-1].weight
        with torch.no_grad():
            saved = head.clone()
            head.copy_(head.roll(1, dims=0))
            permuted = correct(self.net, x, y, 256)
            head.copy_(saved)
        save_outcomes(run_dir, {"trained": trained, "permuted": permuted})
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.bar(["trained", "permuted"], [trained.float().mean().item(), permuted.float().mean().item()])
        fig.savefig(run_dir / "figures" / "toy.png")
        plt.close(fig)
        return {"toy/permuted_acc": permuted.float().mean().item()}


def build_module(cfg: DictConfig, datamodule: Any) -> ToyModule:
    return ToyModule(cfg, build_model(cfg.model, datamodule.input_shape, datamodule.num_classes))


def plan(scale: str) -> list[RunPlan]:
    return [RunPlan("mlp", (*(("scale=paper",) if scale == "paper" else ()), f"model.width={w}")) for w in WIDTHS]


def measure(results: dict[RunPlan, RunResult], scale: str, figure_dir: Path) -> dict[str, Measured]:
    runs = [r for r in results.values() if "trained" in r.outcomes]
    if not runs:
        return {}
    accs = [mean_of_scores(r.outcomes["trained"], note=ONE_RUN) for r in runs]
    gaps = [paired_difference(r.outcomes["trained"], r.outcomes["permuted"], note=ONE_RUN) for r in runs]
    figure_dir.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot([m.value for m in accs], "o")
    fig.savefig(figure_dir / "accuracy.png")
    plt.close(fig)
    return {"min_test_acc": min_of(accs, "runs"), "min_trained_minus_permuted": min_of(gaps, "runs"),
            "min_train_acc": min_of([exact(r.metrics["train/acc"], 1, "run") for r in runs], "runs"),
            "max_test_acc": max_of(accs, "runs")}


SPEC = PaperSpec(name="toy", title="A toy paper (tests only)", claims=CLAIMS, plan=plan, measure=measure,
                 build_module=build_module, result_columns={"mlp": ("test/acc", "toy/*")})


@contextlib.contextmanager
def toy_paper() -> Iterator[PaperSpec]:
    """Register the toy paper and its config folder; both are removed afterwards."""
    registry.PAPERS["toy"] = SPEC
    config.CONFIG_DIRS["toy"] = CONFIGS
    try:
        yield SPEC
    finally:
        registry.PAPERS.pop("toy", None)
        config.CONFIG_DIRS.pop("toy", None)
