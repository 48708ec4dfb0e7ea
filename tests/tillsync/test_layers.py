"""The layer contracts of `make check` (import-linter, pyproject.toml) hold on the tree and
fail on a wrong import: schemas <- connectors <- streams <- CLI, and no product import of the
simulators."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.json.gz", "openapi-description", "build")


def _installed_layout(root: Path) -> Path:
    """The packages as they install (what grimp walks): the top-level folders inside tillsync/."""
    shutil.copytree(REPO / "tillsync", root / "tillsync", ignore=IGNORE)
    for folder in ("streams", "connectors", "schemas"):
        shutil.copytree(REPO / folder, root / "tillsync" / folder, ignore=IGNORE)
    shutil.copytree(
        REPO / "simulators", root / "tillsync_sim", ignore=IGNORE, ignore_dangling_symlinks=True
    )
    return root


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", str(REPO / "pyproject.toml")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_tree_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_installed_layout(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "wrong_import", "contract"),
    [
        ("connectors/shopify/ids.py", "import tillsync.streams.topics", "product layers"),
        ("schemas/money.py", "import tillsync.cli", "product layers"),
        ("streams/topics.py", "import tillsync_sim.shopify", "never imports the simulators"),
    ],
)
def test_a_wrong_import_breaks_a_contract(
    tmp_path: Path, module: str, wrong_import: str, contract: str
) -> None:
    root = _installed_layout(tmp_path)
    target = root / "tillsync" / module
    target.write_text(target.read_text() + f"\n{wrong_import}  # deliberately wrong\n")
    result = _lint(root)
    assert result.returncode != 0
    assert f"{contract}" in result.stdout and "BROKEN" in result.stdout, result.stdout
