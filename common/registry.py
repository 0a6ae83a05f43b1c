"""Paper name -> its spec. The CLI knows papers only through this registry.

Each package under `papers/` registers itself on import with one `register(PaperSpec(...))` call;
`discover()` imports them all by walking the `papers` namespace, so `common` holds no import of any
paper.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from common.claims import Claim, validate_claims
from common.config import experiment_names
from common.errors import UserError


@dataclass(frozen=True)
class RunPlan:
    """One run a reproduction needs: `repro run <paper>/<experiment> <overrides...>`."""

    experiment: str
    overrides: tuple[str, ...] = ()


@dataclass(frozen=True)
class PaperSpec:
    """What a paper contributes to the suite.

    build_module(cfg, datamodule) -> its LightningModule (for experiments that train). A module may define
    `analyze(datamodule, run_dir) -> dict[str, float]`: run once after fit + test, its metrics
    join summary.json (e.g. the rainbow resampling study).
    plan(scale) -> the runs its claims need; measure(results, scale, figure_dir) -> {metric: Measured} from the
    finished runs (`results` maps each RunPlan to its `common.outcomes.RunResult`: final metrics and per-example
    test scores); every claim metric is a `common.stats.Measured` (value, SE, n); it may draw figures into
    `figure_dir`.
    computations: experiments that train nothing (synthetic studies): name -> fn(cfg, figure_dir)
    returning metrics; they leave the same run dir (config.yaml, metrics.csv, summary.json, figures/).
    build_datamodule(cfg) -> the paper's own LightningDataModule (synthetic tasks); None: the shared image
    datamodule built from `cfg.data`.
    result_columns: experiment -> the final metrics (fnmatch patterns) its runs show in the results page's run
    tables (default: test/acc).
    """

    name: str
    title: str
    claims: tuple[Claim, ...]
    plan: Callable[[str], list[RunPlan]]
    measure: Callable[..., dict[str, float]]
    build_module: Callable[[DictConfig, Any], Any] | None = None
    computations: dict[str, Callable[[DictConfig, Any], dict[str, float]]] = field(default_factory=dict)
    build_datamodule: Callable[[DictConfig], Any] | None = None
    result_columns: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_claims(self.name, self.claims)

    @property
    def experiments(self) -> list[str]:
        return experiment_names(self.name)


PAPERS: dict[str, PaperSpec] = {}
BROKEN: dict[str, str] = {}  # paper package -> why it failed to import (the other papers stay usable)


def register(spec: PaperSpec) -> PaperSpec:
    """Add a paper to the registry; a second paper of the same name is refused."""
    if spec.name in PAPERS and PAPERS[spec.name] is not spec:
        raise ValueError(f"A paper named '{spec.name}' is registered already: every paper needs its own name.")
    PAPERS[spec.name] = spec
    return spec


def discover() -> dict[str, PaperSpec]:
    """Import every paper package (each registers itself) and return the registry. A package that fails to
    import is named on stderr once and left out (`BROKEN` says why); the others are returned."""
    package = importlib.import_module("papers")
    for info in pkgutil.iter_modules(package.__path__):
        if info.ispkg and info.name not in BROKEN:
            try:
                importlib.import_module(f"papers.{info.name}")
            except Exception as err:  # noqa: BLE001 - any error in one paper must not hide the others
                BROKEN[info.name] = f"{type(err).__name__}: {err}"
                print(f"warning: paper package papers/{info.name} failed to import and is left out "
                      f"({BROKEN[info.name]})", file=sys.stderr)
    return PAPERS


def get_paper(name: str) -> PaperSpec:
    papers = discover()
    if name in BROKEN:
        raise UserError(f"The paper package papers/{name} fails to import ({BROKEN[name]}): fix it to use '{name}'.")
    if name not in papers:
        raise UserError(f"Unknown paper '{name}'. Valid papers: {', '.join(sorted(papers)) or '(none)'}. "
                        "`repro list` shows them with their experiments.")
    return papers[name]


def parse_target(target: str) -> tuple[PaperSpec, str]:
    """'paper/experiment' -> (spec, experiment), or a UserError listing the valid choices."""
    if "/" not in target:
        raise UserError(f"'{target}' is not of the form <paper>/<experiment>, e.g. rainbow/mlp. "
                        "`repro list` shows every paper and experiment.")
    paper, experiment = target.split("/", 1)
    spec = get_paper(paper)
    if experiment not in spec.experiments:
        raise UserError(f"Unknown experiment '{experiment}' of paper '{paper}'. "
                        f"Valid experiments: {', '.join(spec.experiments)}.")
    return spec, experiment
