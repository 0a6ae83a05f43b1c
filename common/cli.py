"""`repro`: list, run, sweep, reproduce, submit, report.

    repro list [--json]
    repro run <paper>/<experiment> [key=value ...] [--show]
    repro sweep <paper>/<experiment> key=a,b,c ... [--slurm [--throttle N] SLURM-OPTIONS]
    repro reproduce <paper> [--scale smoke|paper] [key=value ...] [--slurm [--throttle N] SLURM-OPTIONS]
    repro submit <paper>/<experiment> [key=value ...] SLURM-OPTIONS
    repro report <paper> [--scale S] [--runs DIR] [--markdown [PATH]] [--wandb ENTITY/PROJECT [--dry-run] [--sync]]
    repro report --all
        SLURM-OPTIONS: --nodes N --gpus-per-node G [--tasks-per-node T] [--cpus-per-task C] [--time T]
                       [--account A] [--partition P] [--hold] [--dry-run] [--no-snapshot]
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
import time
import warnings
from pathlib import Path

from omegaconf import DictConfig

from common.claims import format_table
from common.config import compose
from common.errors import Preempted, UserError
from common.registry import discover, get_paper, parse_target
from common.report.collect import collect_any_scale, collect_runs
from common.report.local import REPRODUCTION_FILE, build_index, build_paper_report
from common.report.wandb_report import parse_wandb_target, publish_wandb_report
from common.rundir import REPO_ROOT, machine, now, read_summary, run_dir_of, write_json_atomic
from common.slurm import (
    Resources,
    check_overrides,
    render,
    repro_command,
    requeue,
    require_sbatch,
    sbatch,
    submit_script,
)
from common.snapshot import Snapshot, snapshot_code

EXIT_PREEMPTED = 75  # EX_TEMPFAIL: stopped early, resumes when run again (a requeued job does)

# emitted when lightning is imported under torch 2.14; nothing a user can act on
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")


def cmd_list(args: argparse.Namespace) -> int:
    papers = discover()
    listing = {name: {"title": spec.title, "experiments": spec.experiments,
                      "claims": [{"id": c.id, "kind": c.kind, "statement": c.statement, "source": c.source}
                                 for c in spec.claims]}
               for name, spec in sorted(papers.items())}
    if args.json:
        print(json.dumps(listing, indent=2))
        return 0
    for name, entry in listing.items():
        print(f"{name}: {entry['title']}")
        print(f"  experiments: {', '.join(entry['experiments'])}")
        for claim in entry["claims"]:
            print(f"  - {claim['id']} [{claim['kind']}]: {claim['statement']} ({claim['source']})")
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
    spec, experiment = parse_target(args.target)
    grid = expand_grid(args.overrides)
    configs = [compose(spec.name, experiment, point) for point in grid]  # every point validated first
    if args.slurm:
        _submit_runs(args, spec.name, f"{spec.name}-{experiment}", [[experiment, *point] for point in grid], configs,
                     "the same `repro sweep` command without --slurm runs the grid in sequence")
        return 0
    from common.train import run_experiment

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
    spec = get_paper(args.paper)
    plans = spec.plan(args.scale)
    extra = [*args.overrides, *([f"run.root={args.runs}"] if args.runs else [])]
    runs = [[p.experiment, *p.overrides, *extra] for p in plans]
    configs = [compose(spec.name, run[0], run[1:]) for run in runs]
    if args.slurm:
        return _submit_reproduction(args, spec.name, runs, configs)
    from common.train import run_experiment

    results, reused, started = {}, 0, time.perf_counter()
    for i, (plan, cfg) in enumerate(zip(plans, configs, strict=True), start=1):
        elapsed = time.perf_counter() - started
        print(f"[{spec.name} {i}/{len(plans)} | {elapsed:.0f}s elapsed] {plan.experiment} "
              f"{' '.join(plan.overrides)}", flush=True)
        previous = read_summary(run_dir_of(cfg.run.root, spec.name, plan.experiment, cfg.run.id))
        reused += bool(previous and previous.get("status") == "finished")
        try:
            summary = run_experiment(spec, plan.experiment, cfg)
        except UserError as err:
            print(f"  failed, its claims stay not_run: {err}", file=sys.stderr)
            continue
        results[plan] = summary["metrics"]
    report = build_paper_report(collect_runs(spec, args.scale, args.overrides, args.runs), args.reports)
    seconds = time.perf_counter() - started
    write_json_atomic(report.folder / REPRODUCTION_FILE, {
        "command": shlex.join(["repro", "reproduce", spec.name, "--scale", args.scale, *args.overrides]),
        "scale": args.scale, "seconds": round(seconds, 1), "runs": len(plans), "finished": len(results),
        "reused": reused, "ended": now(), "machine": machine()})
    print(f"\n{spec.title}: claims at {args.scale} scale ({len(results)}/{len(plans)} runs, {seconds:.0f}s)\n"
          f"{format_table(report.rows)}\nscorecard: {report.folder / 'scorecard.json'}\nreport:    {report.html}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    if args.paper and "=" in args.paper:  # `repro report --all key=value`: argparse took the override for a paper
        args.paper, args.overrides = None, [args.paper, *args.overrides]
    if args.all:
        if args.paper or args.wandb:
            raise UserError("`repro report --all` builds every paper's local report and the index over them; "
                            "give it no paper and no --wandb (use `repro report <paper> --wandb ...` per paper).")
        index, reports = build_index(discover(), args.scale, args.overrides, args.runs, args.reports)
        print(f"index: {index}")
        if args.markdown is not None:
            from common.report.markdown import index_markdown, write_results

            path = Path(args.markdown or Path(args.reports) / "RESULTS.md")
            command = shlex.join(["repro", "report", "--all", *(["--scale", args.scale] if args.scale else []),
                                  *args.overrides, *(["--runs", args.runs] if args.runs else []), "--markdown",
                                  str(path)])
            print(f"results index: {write_results(path, index_markdown(reports, command))}")
        return 0
    if not args.paper:
        raise UserError(f"Name a paper (one of {', '.join(sorted(discover()))}) or use --all.")
    if (args.dry_run or args.sync) and not args.wandb:
        raise UserError("--dry-run and --sync go with --wandb ENTITY/PROJECT.")
    target = parse_wandb_target(args.wandb) if args.wandb else None  # checked before any work
    spec = get_paper(args.paper)
    report = build_paper_report(collect_any_scale(spec, args.scale, args.overrides, args.runs), args.reports)
    print(f"{spec.title}: claims at {report.collected.scale} scale\n{format_table(report.rows)}\n"
          f"report: {report.html}")
    if args.markdown is not None:
        from common.report.markdown import results_markdown, write_results

        path = Path(args.markdown or Path(args.reports) / spec.name / "RESULTS.md")
        command = shlex.join(["repro", "report", spec.name, "--scale", report.collected.scale, *args.overrides,
                              *(["--runs", args.runs] if args.runs else []), "--markdown", str(path)])
        print(f"results page: {write_results(path, results_markdown(report, command))}")
    if target is not None:
        publish_wandb_report(report, *target, dry_run=args.dry_run, sync=args.sync)
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    spec, experiment = parse_target(args.target)
    cfg = compose(spec.name, experiment, args.overrides)
    _submit_runs(args, spec.name, f"{spec.name}-{experiment}", [[experiment, *args.overrides]], [cfg],
                 shlex.join(["repro", "run", args.target, *args.overrides]))
    return 0


def _resources(args: argparse.Namespace) -> Resources:
    return Resources(nodes=args.nodes, gpus_per_node=args.gpus_per_node, tasks_per_node=args.tasks_per_node,
                     cpus_per_task=args.cpus_per_task, time=args.time, account=args.account, partition=args.partition,
                     hold=args.hold)


def _submit_runs(args: argparse.Namespace, paper: str, job_name: str, runs: list[list[str]],
                 configs: list[DictConfig], local_hint: str) -> str | None:
    """Submit `runs` (`[experiment, key=value, ...]` each) as one job, or as a job array of one task per run, and
    print the job id, script, log and run dirs; with --dry-run print the script instead (returns None)."""
    for run in runs:
        check_overrides(run[1:])
    run_dirs = [run_dir_of(cfg.run.root, paper, run[0], cfg.run.id) for run, cfg in zip(runs, configs, strict=True)]
    shared = sorted({str(d) for d in run_dirs if run_dirs.count(d) > 1})
    if shared:  # concurrent tasks would fight over it: the run dir lock would fail all but one
        raise UserError(f"Several runs would share the same run dir {shared[0]}: their overrides differ only in "
                        "keys that do not name a run (run.*, logger.*, ...). Give each run its own run.id.")
    folder = Path(configs[0].run.root).absolute() / "slurm"  # the scripts, logs and code snapshots of every job
    log = "%x-%A_%a.out" if len(runs) > 1 else "%x-%j.out"
    if not args.dry_run:
        require_sbatch(local_hint)  # before the code is copied
    code = _snapshot(args, folder)
    text = render(paper, _resources(args), runs, job_name=job_name, output=str(folder / log),
                  throttle=getattr(args, "throttle", None), repro=shlex.join(repro_command(code is not None)),
                  workdir=Path.cwd(), code=code and code.path)
    if args.dry_run:
        print(text, end="")
        return None
    job, script = submit_script(text, folder, job_name, local_hint)
    tasks = f"job array {job} ({len(runs)} tasks)" if len(runs) > 1 else f"job {job}"
    print(f"submitted {tasks}: {job_name}\n  script: {script}\n  log:    "
          f"{folder / log.replace('%x', job_name).replace('%A', job).replace('%j', job).replace('%a', '<task>')}\n"
          f"  code:   {f'snapshot {code.id} at {code.path}' if code else 'the live working tree (--no-snapshot)'}")
    for i, run_dir in enumerate(run_dirs):
        print(f"  {f'{job}_{i}' if len(runs) > 1 else 'run'}: {run_dir}")
    return job


def _snapshot(args: argparse.Namespace, folder: Path) -> Snapshot | None:
    """The code snapshot the jobs run (None with --no-snapshot); a dry run only names it."""
    if args.no_snapshot:
        return None
    return snapshot_code(REPO_ROOT, folder / "code", write=not args.dry_run)


def _submit_reproduction(args: argparse.Namespace, paper: str, runs: list[list[str]],
                         configs: list[DictConfig]) -> int:
    """Every run as one job array, then the scorecard job, which starts once every run has succeeded."""
    hint = "the same `repro reproduce` command without --slurm runs everything here"
    runs_job = _submit_runs(args, paper, f"{paper}-reproduce", runs, configs, hint)
    res = _resources(args)
    code = _snapshot(args, Path(configs[0].run.root).absolute() / "slurm")
    python = ["env", f"PYTHONPATH={code.path}", *repro_command(True)] if code else repro_command()
    report = [*python, "report", paper, "--scale", args.scale, "--reports",
              str(Path(args.reports).absolute()), *(["--runs", args.runs] if args.runs else []), *args.overrides]
    options = [f"--job-name={paper}-report", f"--dependency=afterok:{runs_job or '<job id of the runs>'}",
               "--nodes=1", "--ntasks=1", f"--cpus-per-task={res.cpus_per_task}", f"--time={res.time}",
               *([f"--account={res.account}"] if res.account else []),
               *([f"--partition={res.partition}"] if res.partition else []),
               f"--output={Path(configs[0].run.root).absolute() / 'slurm' / '%x-%j.out'}", f"--chdir={Path.cwd()}",
               "--wrap", shlex.join(report)]
    if runs_job is None:
        print(f"\n# then the scorecard and report job:\n{shlex.join(['sbatch', *options])}")
        return 0
    report_job = sbatch(options, hint)
    print(f"submitted job {report_job}: {paper}-report, the scorecard and report once job {runs_job} has succeeded "
          f"(afterok)\n  writes: {Path(args.reports).absolute() / paper / 'scorecard.json'}")
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
    slurm = _slurm_options()
    p = sub.add_parser("sweep", parents=[slurm], help="a grid of runs: repro sweep <paper>/<experiment> key=a,b,c ...")
    p.add_argument("target")
    p.add_argument("overrides", nargs="+", help="key=v1,v2,... (the grid is their product)")
    _add_slurm_switch(p, "submit the grid as one Slurm job array (one task, and run dir, per point)")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("reproduce", parents=[slurm], help="every run a paper's claims need, then its scorecard")
    p.add_argument("paper")
    p.add_argument("overrides", nargs="*", help="key=value for every run (e.g. data.root=/data)")
    p.add_argument("--scale", choices=("smoke", "paper"), default="smoke")
    p.add_argument("--runs", default=None, help="run root (default: the config's run.root, runs/)")
    p.add_argument("--reports", default="reports", help="where reports/<paper>/scorecard.json goes")
    _add_slurm_switch(p, "submit the runs as one Slurm job array, then the scorecard as a job that waits for them")
    p.set_defaults(func=cmd_reproduce)
    p = sub.add_parser("submit", parents=[slurm], help="submit one run to Slurm: repro submit <paper>/<experiment> "
                       "--nodes N --gpus-per-node G [key=value ...]")
    p.add_argument("target")
    p.add_argument("overrides", nargs="*", help="config overrides, key=value")
    p.set_defaults(func=cmd_submit)
    p = sub.add_parser("report", help="the local HTML report of a paper from its run dirs (and a W&B report)")
    p.add_argument("paper", nargs="?", help="a paper (or --all)")
    p.add_argument("overrides", nargs="*", help="the key=value given to `repro reproduce` (they name the runs)")
    p.add_argument("--all", action="store_true", help="every paper's report, and reports/index.html over them")
    p.add_argument("--scale", choices=("smoke", "paper"), default=None,
                   help="default: the scale with the most finished runs")
    p.add_argument("--runs", default=None, help="run root (default: the config's run.root, runs/)")
    p.add_argument("--reports", default="reports", help="where reports/<paper>/index.html goes")
    p.add_argument("--markdown", metavar="PATH", nargs="?", const="", default=None,
                   help="also write the scorecard and run tables as Markdown (default reports/<paper>/RESULTS.md; "
                        "with --all: one row per paper, default reports/RESULTS.md); a file that holds the "
                        "section's markers keeps everything outside them")
    p.add_argument("--wandb", metavar="ENTITY/PROJECT", default=None,
                   help="also build a W&B report of the same panels, saved to that project")
    p.add_argument("--dry-run", action="store_true",
                   help="with --wandb: write reports/<paper>/wandb_report.json, touch no network")
    p.add_argument("--sync", action="store_true", help="with --wandb: first upload the runs' offline W&B logs")
    p.set_defaults(func=cmd_report)
    return parser


def _slurm_options() -> argparse.ArgumentParser:
    """The resources of each Slurm job (`repro submit`, and `sweep` / `reproduce` with --slurm)."""
    parser = argparse.ArgumentParser(add_help=False)
    g = parser.add_argument_group("Slurm (repro submit; sweep and reproduce with --slurm)")
    g.add_argument("--nodes", type=int, default=Resources.nodes, help="nodes per run (trainer.num_nodes)")
    g.add_argument("--gpus-per-node", type=int, default=Resources.gpus_per_node,
                   help="GPUs per node, one task (trainer device) each; 0: train on CPU cores")
    g.add_argument("--tasks-per-node", type=int, default=None,
                   help="tasks (trainer devices) per node; default: one per GPU, or 1 without GPUs")
    g.add_argument("--cpus-per-task", type=int, default=Resources.cpus_per_task)
    g.add_argument("--time", default=Resources.time, help="wall-clock limit per job, [days-]hours:minutes:seconds")
    g.add_argument("--account", default=None)
    g.add_argument("--partition", default=None)
    g.add_argument("--hold", action="store_true", help="submit held: the jobs start after `scontrol release`")
    g.add_argument("--dry-run", action="store_true", help="print the batch script, submit nothing")
    g.add_argument("--no-snapshot", action="store_true",
                   help="run the live working tree when the job starts, not a copy of the code as it is now")
    return parser


def _add_slurm_switch(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--slurm", action="store_true", help=what)
    parser.add_argument("--throttle", type=int, default=None, help="with --slurm: at most N array tasks at once")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    # argparse matches `nargs="*"` overrides (as none) before any option: key=value after options land here
    if rest and hasattr(args, "overrides") and not any(item.startswith("-") for item in rest):
        args.overrides = [*args.overrides, *rest]
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return args.func(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except Preempted as stop:
        from lightning.pytorch.utilities import rank_zero_only  # loaded already: only a run raises Preempted

        if rank_zero_only.rank == 0:  # under DDP every rank stops; one requeues the job
            print(f"preempted: {stop} {requeue()}", file=sys.stderr)
        return EXIT_PREEMPTED
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
