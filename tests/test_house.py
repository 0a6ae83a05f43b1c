"""House rules that can be checked mechanically (DESIGN.md: one paper, one place; size)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_common_imports_nothing_from_papers() -> None:
    for path in (ROOT / "common").rglob("*.py"):
        assert not any(m == "papers" or m.startswith("papers.") for m in imported_modules(path)), path


def test_papers_never_import_another_paper() -> None:
    for paper_dir in (p for p in (ROOT / "papers").iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        for path in paper_dir.rglob("*.py"):
            others = {m.split(".")[1] for m in imported_modules(path) if m.startswith("papers.")}
            assert others <= {paper_dir.name}, f"{path} imports {others - {paper_dir.name}}"


def test_core_algorithms_are_plain_torch() -> None:
    for name in ("resample.py", "scattering.py"):
        assert not any(m.startswith(("lightning", "pytorch_lightning")) for m in
                       imported_modules(ROOT / "papers" / "rainbow" / name)), name


@pytest.mark.parametrize("folder", ["common", "papers"])
def test_no_file_over_500_lines(folder: str) -> None:
    for path in (ROOT / folder).rglob("*.py"):
        assert len(path.read_text().splitlines()) <= 500, path
