"""`reports/<paper>/`: scorecard.json, figures/*.png and index.html, rebuilt from the run dirs; `reports/index.html`.

    reports/<paper>/scorecard.json   the claims checked against the finished runs (see common.claims)
    reports/<paper>/claims.png       the claims as intervals against their thresholds (checks: checks.png)
    reports/<paper>/figures/*.png    the cross-run figures the paper's `measure` draws
    reports/<paper>/reproduction.json  how long the last `repro reproduce` took, where (its results page quotes it)
    reports/<paper>/index.html       claims table, figures, every run (self-contained: images embedded)
    reports/index.html               every paper with its scorecard summary (`repro report --all`)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from common.claims import scorecard
from common.errors import UserError
from common.registry import PaperSpec
from common.report.collect import Collected, collect_any_scale
from common.report.forest import draw_forest
from common.report.html import index_page, paper_page
from common.rundir import now, write_json_atomic, write_text_atomic
from common.stats import Measured

REPRODUCTION_FILE = "reproduction.json"


@dataclass(frozen=True)
class PaperReport:
    collected: Collected
    rows: list[dict]  # the scorecard
    measured: dict[str, Measured]  # everything the paper's measure computed (claim metrics and the rest)
    figures: list[Path]  # the paper's cross-run figures
    forests: list[Path]  # claims.png (paper claims and controls), checks.png
    folder: Path  # reports/<paper>

    @property
    def html(self) -> Path:
        return self.folder / "index.html"


def build_paper_report(collected: Collected, reports_root: str | Path) -> PaperReport:
    """Measure the claims on the finished runs, draw the paper's figures, write scorecard.json and index.html."""
    spec, folder = collected.paper, Path(reports_root) / collected.paper.name
    figure_dir = folder / "figures"
    for stale in figure_dir.glob("*.png"):  # a figure the current runs no longer support must not linger
        stale.unlink()
    measured = spec.measure(collected.results, collected.scale, figure_dir)
    rows = scorecard(spec.claims, measured, collected.scale)
    write_json_atomic(folder / "scorecard.json", rows)
    figures = sorted(figure_dir.glob("*.png"))
    forests = []
    for name, kinds, title in (("claims", ("paper", "control"), "paper claims and controls"),
                               ("checks", ("check",), "checks")):
        (folder / f"{name}.png").unlink(missing_ok=True)
        at_scale = [r for r in rows if r["kind"] in kinds and r["expected_scale"] == collected.scale]
        drawn = draw_forest(at_scale, spec.claims, folder / f"{name}.png",
                            f"{spec.name}, {collected.scale} scale: {title} (95 % intervals; shaded: the claim's side)")
        forests += [drawn] if drawn else []
    report = PaperReport(collected, rows, measured, figures, forests, folder)
    write_text_atomic(folder / "index.html", paper_page(report, now()))
    return report


def build_index(papers: dict[str, PaperSpec], scale: str | None, overrides: list[str], runs_root: str | None,
                reports_root: str | Path) -> tuple[Path, dict[str, PaperReport | None]]:
    """Rebuild the report of every paper that has runs, then `reports/index.html` over all papers; returns the
    index and each paper's report (None: no runs yet)."""
    entries, reports = [], {}
    for name, spec in sorted(papers.items()):
        try:
            reports[name] = build_paper_report(collect_any_scale(spec, scale, overrides, runs_root), reports_root)
        except UserError as err:  # no runs yet: listed with the command that makes them
            print(f"{name}: {err}", file=sys.stderr)
            reports[name] = None
            entries.append((name, spec.title, None, f"repro reproduce {name} --scale {scale or 'smoke'}"))
            continue
        print(f"{name}: {reports[name].html}")
        entries.append((name, spec.title, reports[name].rows, f"{name}/index.html"))
    index = Path(reports_root) / "index.html"
    write_text_atomic(index, index_page(entries, now()))
    return index, reports

