"""`repro`: list, run, sweep, reproduce.

    repro list [--json]
    repro run <paper>/<experiment> [key=value ...] [--show]
    repro sweep <paper>/<experiment> key=a,b,c ...
    repro reproduce <paper> [--scale smoke|paper]
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
import warnings
from pathlib import Path

from common.claims import format_table, scorecard
from common.config import compose
from common.errors import UserError
from common.registry import discover, get_paper, parse_target
from common.rundir import run_dir_of, write_json_atomic

# emitted when lightning is imported under torch 2.14; nothing a user can act on
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


def cmd_list(args: argparse.Namespace) -> int:
    papers = discover()
    listing = {name: {"title": spec.title, "experiments": spec.experiments,
                      "claims": [{"id": c.id, "statement": c.statement, "source": c.source} for c in spec.claims]}
               for name, spec in sorted(papers.items())}
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    for name, entry in listing.items():
        print(f"{name}: {entry['title']}")
        print(f"  experiments: {', '.join(entry['experiments'])}")
        for claim in entry["claims"]:
            print(f"  - {claim['id']}: {claim['statement']} [{claim['source']}]")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from common.train import run_experiment  # heavy imports only for commands that train

    spec, experiment = parse_target(args.target)
    cfg = compose(spec.name, experiment, args.overrides)
    if args.show:
        from omegaconf import OmegaConf
        print(OmegaConf.to_yaml(cfg))
        return 0
    from lightning.pytorch.utilities import rank_zero_only

    summary = run_experiment(spec, experiment, cfg)
    if rank_zero_only.rank == 0:  # under DDP every rank runs this command
        _print_result(run_dir_of(cfg.run.root, spec.name, experiment, cfg.run.id), summary)
    return 0


def _print_result(run_dir: Path, summary: dict) -> None:
    metrics = summary.get("metrics", {})
    shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()) if k.endswith("acc"))
    print(f"{summary['status']}: {run_dir}" + (f"\n  {shown}" if shown else ""))


def expand_grid(overrides: list[str]) -> list[list[str]]:
    """`["a=1,2", "b=x"]` -> `[["a=1", "b=x"], ["a=2", "b=x"]]` (a value in [...] is one list value)."""
    axes = []
    for item in overrides:
        key, _, value = item.partition("=")
        values = [value] if value.startswith("[") else value.split(",")
        axes.append([f"{key}={v}" for v in values])
    return [list(point) for point in itertools.product(*axes)]


def cmd_sweep(args: argparse.Namespace) -> int:
    from common.train import run_experiment

    spec, experiment = parse_target(args.target)
    grid = expand_grid(args.overrides)
    configs = [compose(spec.name, experiment, point) for point in grid]  # every point validated first
    failed = 0
    for i, (point, cfg) in enumerate(zip(grid, configs, strict=True), start=1):
        print(f"[sweep {i}/{len(grid)}] {spec.name}/{experiment} {' '.join(point)}", flush=True)
        try:
            summary = run_experiment(spec, experiment, cfg)
        except UserError as err:
            print(f"  failed: {err}", file=sys.stderr)
            failed += 1
            continue
        _print_result(run_dir_of(cfg.run.root, spec.name, experiment, cfg.run.id), summary)
    print(f"sweep done: {len(grid) - failed} of {len(grid)} runs finished")
    return 1 if failed else 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    from common.train import run_experiment

    spec = get_paper(args.paper)
    plans = spec.plan(args.scale)
    extra = [f"run.root={args.runs}"] if args.runs else []
    configs = [compose(spec.name, p.experiment, [*p.overrides, *extra]) for p in plans]
    results, started = {}, time.perf_counter()
    for i, (plan, cfg) in enumerate(zip(plans, configs, strict=True), start=1):
        elapsed = time.perf_counter() - started
        print(f"[{spec.name} {i}/{len(plans)} | {elapsed:.0f}s elapsed] {plan.experiment} "
              f"{' '.join(plan.overrides)}", flush=True)
        try:
            summary = run_experiment(spec, plan.experiment, cfg)
        except UserError as err:
            print(f"  failed, its claims stay not_run: {err}", file=sys.stderr)
            continue
        results[plan] = summary["metrics"]
    out = Path(args.reports) / spec.name
    rows = scorecard(spec.claims, spec.measure(results, args.scale, out / "figures"), args.scale)
    write_json_atomic(out / "scorecard.json", rows)
    print(f"\n{spec.title}: claims at {args.scale} scale ({len(results)}/{len(plans)} runs, "
          f"{time.perf_counter() - started:.0f}s)\n{format_table(rows)}\nscorecard: {out / 'scorecard.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="repro", description="Reproduce science-of-deep-learning papers.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("list", help="papers, their experiments and claims")
    p.add_argument("--json", action="store_true", help="one JSON object {paper: {experiments, claims}}")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("run", help="one run: repro run <paper>/<experiment> [key=value ...]")
    p.add_argument("target")
    p.add_argument("overrides", nargs="*", help="config overrides, key=value")
    p.add_argument("--show", action="store_true", help="print the composed config and exit")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("sweep", help="a grid of runs: repro sweep <paper>/<experiment> key=a,b,c ...")
    p.add_argument("target")
    p.add_argument("overrides", nargs="+", help="key=v1,v2,... (the grid is their product)")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("reproduce", help="every run a paper's claims need, then its scorecard")
    p.add_argument("paper")
    p.add_argument("--scale", choices=("smoke", "paper"), default="smoke")
    p.add_argument("--runs", default=None, help="run root (default: the config's run.root, runs/)")
    p.add_argument("--reports", default="reports", help="where reports/<paper>/scorecard.json goes")
    p.set_defaults(func=cmd_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
