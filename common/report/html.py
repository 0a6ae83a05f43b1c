"""The local HTML report: one self-contained page per paper (images embedded), and an index over papers.

The page opens from disk in any browser, without a server: claims table (ours beside the paper's), the paper's
figures, then every run with its status, metrics, figures, config and a link to its run dir.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from common.claims import KINDS, Claim, count_statuses, format_interval, format_measured, headline
from common.report.collect import RunRecord
from common.report.forest import STATUS_COLOURS

if TYPE_CHECKING:
    from common.report.local import PaperReport

RUN_COLOURS = {"finished": "#1a7f37", "running": "#9a6700", "failed": "#cf222e", "unreadable": "#cf222e"}

STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1100px; padding: 0 1rem; color: #1f2328; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0 1.5rem; }
th, td { border: 1px solid #d0d7de; padding: .35rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
.status { color: #fff; border-radius: 1em; padding: .05rem .6rem; white-space: nowrap; font-size: 13px; }
.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { display: inline-block; margin: .5rem; max-width: 100%; vertical-align: top; }
figure img { max-width: 100%; max-height: 420px; border: 1px solid #d0d7de; }
figcaption { font-size: 13px; color: #59636e; }
pre { background: #f6f8fa; padding: .5rem; overflow: auto; max-height: 320px; font-size: 12px; }
.muted { color: #59636e; }
"""


def esc(value: object) -> str:
    return html.escape(str(value))


def badge(status: str, colours: dict[str, str]) -> str:
    colour = colours.get(status, "#8c959f")
    return f'<span class="status" style="background:{colour}">{esc(status.replace("_", " "))}</span>'


def embedded_image(path: Path, caption: str) -> str:
    """An <img> holding the PNG itself (a data: URL), so the page needs no file beside it."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img alt="{esc(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def page(title: str, body: Iterable[str]) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f'<link rel="icon" href="data:,"><style>{STYLE}</style></head>\n<body>\n'
            + "\n".join(body) + "\n</body></html>\n")


def claims_table(rows: list[dict], claims: Iterable[Claim], scale: str) -> str:
    """Scorecard rows with, beside our expectation at `scale`, the paper's own (paper-scale) number or inequality,
    the measured value ± SE, its 95 % interval and n."""
    paper = {c.id: c.expected.get("paper") for c in claims}
    head = (f"<tr><th>kind</th><th>claim</th><th>source</th><th>paper</th><th>expected at {esc(scale)} scale</th>"
            "<th>measured ± SE</th><th>95 % interval</th><th>n</th><th>status</th></tr>")
    cells = []
    for r in rows:
        expected = esc(r["expected"]) if r["expected"] and r.get("expected_scale") == scale else "—"
        published = esc(paper[r["id"]]) if paper.get(r["id"]) else "—"
        n = "—" if r["n"] is None else f"{r['n']} {esc(r['n_of'])}"
        note = f'<br><span class="muted">{esc(r["note"])}</span>' if r["note"] else ""
        cells.append(f'<tr id="claim-{esc(r["id"])}"><td>{esc(r["kind"])}</td><td><b>{esc(r["id"])}</b><br>'
                     f'{esc(r["statement"])}<br><span class="muted">metric: {esc(r["metric"])}</span></td>'
                     f'<td>{esc(r["source"])}</td><td class="num">{published}</td><td class="num">{expected}</td>'
                     f'<td class="num">{esc(format_measured(r))}</td><td class="num">{esc(format_interval(r))}</td>'
                     f"<td>{n}</td><td>{badge(r['status'], STATUS_COLOURS)}{note}</td></tr>")
    return f'<table class="claims">{head}{"".join(cells)}</table>'


def status_counts(rows: list[dict]) -> str:
    """Badges counting the paper claims by status."""
    return " ".join(f"{badge(s, STATUS_COLOURS)} {n}" for s, n in count_statuses(rows).items())


def _run_section(record: RunRecord, out_dir: Path) -> str:
    overrides = " ".join(record.plan.overrides) or "(defaults)"
    link = Path(os.path.relpath(record.run_dir.resolve(), out_dir.resolve())).as_posix()
    parts = [f"<h3>{esc(record.plan.experiment)} <code>{esc(overrides)}</code> "
             f"{badge(record.status, RUN_COLOURS)}</h3>"]
    if record.problem:
        parts.append(f"<p>{esc(record.problem)}</p>")
    if record.summary is None:
        if not record.problem:
            parts.append(f'<p class="muted">not run: no run dir at <code>{esc(record.run_dir)}</code></p>')
        return "\n".join(parts)
    s = record.summary
    parts.append(f'<p class="muted">run dir <a href="{esc(link)}/">{esc(record.run_dir)}</a> · started '
                 f'{esc(s.get("started", "?"))} · finished {esc(s.get("finished", "—"))} · git '
                 f'{esc(str(s.get("git_sha") or "?")[:10])}{" (dirty)" if s.get("git_dirty") else ""} · '
                 f'{esc(s.get("host", "?"))}</p>')
    if s.get("error"):
        parts.append(f"<pre>{esc(s['error'])}</pre>")
    metrics = s.get("metrics") or {}
    if metrics:
        rows = "".join(f'<tr><td>{esc(k)}</td><td class="num">{v:.6g}</td></tr>' if isinstance(v, int | float)
                       else f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in sorted(metrics.items()))
        parts.append(f"<details><summary>{len(metrics)} final metrics</summary><table>{rows}</table></details>")
    for png in sorted((record.run_dir / "figures").glob("*.png")):
        parts.append(embedded_image(png, f"{record.plan.experiment}: {png.stem}"))
    config = record.run_dir / "config.yaml"
    if config.exists():
        parts.append(f"<details><summary>config.yaml</summary><pre>{esc(config.read_text())}</pre></details>")
    return "\n".join(parts)


def paper_page(report: PaperReport, generated: str) -> str:
    """The report of one paper: its claims (as intervals against thresholds, then as tables, checks apart), the
    figures its `measure` drew, then every planned run."""
    collected, rows = report.collected, report.rows
    spec = collected.paper
    done = sum(r.finished for r in collected.runs)
    body = [f"<h1>{esc(spec.title)}</h1>",
            f'<p class="muted">{esc(spec.name)} · {esc(collected.scale)} scale · {done} of {len(collected.runs)} '
            f"planned runs finished · generated {esc(generated)}</p>",
            f"<h2>Claims</h2><p><b>{esc(headline(rows))}</b></p><p>paper claims: {status_counts(rows)}</p>"]
    body += [embedded_image(f, f"{f.stem}: 95 % intervals against thresholds") for f in report.forests]
    for kind, title in zip(KINDS, ("Paper claims", "Controls (ours)", "Checks"), strict=True):
        of_kind = [r for r in rows if r["kind"] == kind]
        if of_kind:
            body += [f"<h3>{title}</h3>", claims_table(of_kind, spec.claims, collected.scale)]
    body.append("<h2>Figures</h2>")
    body += [embedded_image(f, f.stem.replace("_", " ")) for f in report.figures] or [
        '<p class="muted">No cross-run figures: the per-run figures are below.</p>']
    body.append(f"<h2>Runs</h2><p class=\"muted\">re-create with <code>repro reproduce {esc(spec.name)} --scale "
                f"{esc(collected.scale)}</code></p>")
    body += [_run_section(r, report.folder) for r in collected.runs]
    return page(f"{spec.name} — reproduction report", body)


def index_page(entries: list[tuple[str, str, list[dict] | None, str]], generated: str) -> str:
    """An index over papers: (name, title, scorecard rows or None when not reproduced yet, link or hint); the paper
    claims counted by status."""
    head = "<tr><th>paper</th><th>paper claims</th><th>report</th></tr>"
    cells = []
    for name, title, rows, where in entries:
        summary = status_counts(rows) if rows is not None else '<span class="muted">no runs yet</span>'
        target = (f'<a href="{esc(where)}">{esc(where)}</a>' if rows is not None
                  else f"<code>{esc(where)}</code>")
        cells.append(f"<tr><td><b>{esc(name)}</b><br>{esc(title)}</td><td>{summary}</td><td>{target}</td></tr>")
    return page("Reproduction reports", [
        "<h1>Reproduction reports</h1>", f'<p class="muted">generated {esc(generated)}</p>',
        f'<table class="papers">{head}{"".join(cells)}</table>'])
