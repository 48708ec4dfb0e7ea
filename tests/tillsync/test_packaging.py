"""The wheels: what `pip install tillsync` ships, and what it must not.

Both distributions are built from a copy of the working tree (a `build/` left in the tree can
carry deleted modules into a wheel, and two test runs must not share one), offline and with the
virtualenv's own setuptools (`--no-build-isolation`: the dev extra brings the setuptools>=77
that [build-system] asks for). No Kafka is needed; the module runs in the normal suite.

    .venv/bin/pytest -q -s tests/tillsync/test_packaging.py   # also prints files per package
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message
from email.parser import Parser
from importlib import metadata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# where each source folder of the product lands in its wheel (pyproject.toml's package-dir)
PRODUCT_FOLDERS = {
    "tillsync": "tillsync",
    "streams": "tillsync/streams",
    "connectors": "tillsync/connectors",
    "schemas": "tillsync/schemas",
}
# the simulators' data that must never be in the product's wheel
SIMULATOR_DATA = (".json.gz", ".graphql", ".yaml", ".yml")
# what the copy leaves out: not part of any build, or a build's left-overs
SKIP_ANYWHERE = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
SKIP_AT_A_PROJECT_ROOT = {"var", "build", "dist", "tests", "bench", ".import_linter_cache"}
# a verbose build's output, as setuptools words its warnings; this environment sets
# PYTHONDONTWRITEBYTECODE, which distutils reports as "warning: ... byte-compiling is disabled"
NOT_A_WARNING = re.compile(r"byte-compiling is disabled")


@dataclass
class Wheel:
    path: Path
    source: Path  # the copy of the project folder it was built from
    build_output: str

    def names(self) -> list[str]:
        with zipfile.ZipFile(self.path) as zf:
            return [n for n in zf.namelist() if not n.endswith("/")]

    def read(self, name: str) -> str:
        with zipfile.ZipFile(self.path) as zf:
            return zf.read(name).decode()

    @property
    def dist_info(self) -> str:
        name, version = self.path.name.split("-")[:2]
        return f"{name}-{version}.dist-info"

    def metadata(self) -> Message:
        return Parser().parsestr(self.read(f"{self.dist_info}/METADATA"))


def _skip(root: Path) -> Callable[[str, list[str]], set[str]]:
    """shutil.copytree's `ignore` for a copy of `root`."""
    project_roots = {root, root / "simulators"}

    def ignore(folder: str, names: list[str]) -> set[str]:
        at_root = Path(folder) in project_roots
        return {
            n
            for n in names
            if n in SKIP_ANYWHERE
            or n.endswith(".egg-info")
            or (at_root and n in SKIP_AT_A_PROJECT_ROOT)
        }

    return ignore


def _build(project: Path, out: Path) -> Wheel:
    before = set(out.glob("*.whl"))
    done = subprocess.run(
        [
            sys.executable,
            *("-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation", "--no-index"),
            *("--wheel-dir", str(out), str(project)),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    (built,) = set(out.glob("*.whl")) - before
    return Wheel(built, project, output)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Wheel]:
    setuptools = metadata.version("setuptools")
    assert int(setuptools.split(".")[0]) >= 77, (
        f"setuptools {setuptools} is older than [build-system] asks for: `make setup` "
        "(pip install -e '.[dev]') brings the dev extra's setuptools>=77"
    )
    tmp = tmp_path_factory.mktemp("packaging")
    source = tmp / "src"
    shutil.copytree(REPO, source, symlinks=True, ignore=_skip(REPO))
    out = tmp / "dist"
    out.mkdir()
    return {
        "tillsync": _build(source, out),
        "tillsync-sim": _build(source / "simulators", out),
    }


def _sources(root: Path, pattern: str) -> list[Path]:
    """Files under `root` matching `pattern`, relative to it, less a build's output."""
    return sorted(
        p.relative_to(root)
        for p in root.rglob(pattern)
        if not {"build", "dist", "_backend"} & set(p.relative_to(root).parts)
    )


def _package_folders(root: Path) -> list[Path]:
    """The folders under `root` that are packages (hold an __init__.py), relative to it."""
    return [p.parent for p in _sources(root, "__init__.py")]


def _modules(root: Path) -> list[Path]:
    return _sources(root, "*.py")


def _files_per_package(names: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for name in names:
        parts = name.split("/")
        if parts[0].endswith(".dist-info"):
            counts[parts[0]] += 1
        elif len(parts) > 2 and parts[1] in {"streams", "connectors", "schemas"}:
            counts[f"{parts[0]}.{parts[1]}"] += 1
        else:
            counts[parts[0]] += 1
    return counts


def _print_counts(wheel: Wheel) -> None:
    counts = _files_per_package(wheel.names())
    print(f"\n{wheel.path.name}: {sum(counts.values())} files")
    for package, count in sorted(counts.items()):
        print(f"  {package:<36} {count:>4}")


def test_the_builds_print_no_warning(wheels: dict[str, Wheel]) -> None:
    for name, wheel in wheels.items():
        noise = [
            line.strip()
            for line in wheel.build_output.splitlines()
            if re.search(r"warn|deprecat", line, re.IGNORECASE) and not NOT_A_WARNING.search(line)
        ]
        assert not noise, f"{name}: " + "\n".join(noise)


def test_the_product_wheel_holds_the_product_only(wheels: dict[str, Wheel]) -> None:
    wheel = wheels["tillsync"]
    names = wheel.names()
    _print_counts(wheel)
    assert {n.split("/")[0] for n in names} == {"tillsync", wheel.dist_info}
    for name in names:
        assert "tillsync_sim" not in name and "simulators" not in name, name
        assert not name.endswith(SIMULATOR_DATA), f"simulator data in the product: {name}"
        assert "openapi" not in name.lower(), name


def test_every_package_folder_is_in_the_wheel(wheels: dict[str, Wheel]) -> None:
    """A package folder missing from pyproject.toml's explicit `packages` list builds without a
    word and installs without its modules; so does a module in a folder with no __init__.py."""
    wheel = wheels["tillsync"]
    names = set(wheel.names())
    expected_packages, expected_modules = set(), set()
    for folder, installed in PRODUCT_FOLDERS.items():
        root = wheel.source / folder
        for package in _package_folders(root):
            expected_packages.add((Path(installed) / package / "__init__.py").as_posix())
        for module in _modules(root):
            expected_modules.add((Path(installed) / module).as_posix())
    missing = sorted(expected_packages - names)
    assert not missing, f"package folders missing from pyproject.toml's `packages`: {missing}"
    assert not sorted(expected_modules - names), "modules outside any package"
    shipped = {n for n in names if n.endswith(".py")}
    assert shipped == expected_modules, sorted(shipped ^ expected_modules)


def test_the_declared_package_data_ships(wheels: dict[str, Wheel]) -> None:
    wheel = wheels["tillsync"]
    names = set(wheel.names())
    config = tomllib.loads((wheel.source / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, patterns in config.get("package-data", {}).items():
        folder = wheel.source / config["package-dir"][package]
        installed = Path(*package.split("."))
        for pattern in patterns:
            for path in folder.glob(pattern):
                assert (installed / path.relative_to(folder)).as_posix() in names, path


def test_the_product_wheel_carries_its_licence(wheels: dict[str, Wheel]) -> None:
    wheel = wheels["tillsync"]
    assert wheel.read(f"{wheel.dist_info}/licenses/LICENSE") == (REPO / "LICENSE").read_text()
    meta = wheel.metadata()
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["Name"] == "tillsync"
    entry_points = wheel.read(f"{wheel.dist_info}/entry_points.txt")
    assert "tillsync = tillsync.cli:main" in entry_points


def test_the_simulators_wheel_holds_their_code_and_data(wheels: dict[str, Wheel]) -> None:
    wheel = wheels["tillsync-sim"]
    names = set(wheel.names())
    _print_counts(wheel)
    assert {n.split("/")[0] for n in names} == {"tillsync_sim", wheel.dist_info}
    source = wheel.source  # the copy of simulators/
    for package in _package_folders(source):
        assert (Path("tillsync_sim") / package / "__init__.py").as_posix() in names, package
    # the Shopify Admin schema and the overlay the simulator's GraphQL schema is built from
    schema = source / "shopify" / "schema"
    data = [p for p in schema.iterdir() if p.name.endswith((".json.gz", ".graphql"))]
    assert {p.suffix for p in data} == {".gz", ".graphql"}
    for path in data:
        assert f"tillsync_sim/shopify/schema/{path.name}" in names, path.name
    # Sitoo's OpenAPI description, file for file (the contract checks resolve its $refs)
    openapi = source / "sitoo" / "openapi-description"
    files = [p.relative_to(source).as_posix() for p in openapi.rglob("*") if p.is_file()]
    assert len(files) > 10
    missing = [f for f in files if f"tillsync_sim/{f}" not in names]
    assert not missing, f"OpenAPI description files missing: {missing[:10]}"
    meta = wheel.metadata()
    assert meta["License-Expression"] == "Apache-2.0"
    for licence in (
        "LICENSE",
        "shopify/schema/LICENSE-admin-schema.txt",
        "sitoo/openapi-description/LICENSE",
    ):
        assert f"{wheel.dist_info}/licenses/{licence}" in names, licence
    assert "tillsync" in {re.split(r"[\s<>=!~;\[]", r)[0] for r in meta.get_all("Requires-Dist")}
    entry_points = wheel.read(f"{wheel.dist_info}/entry_points.txt")
    assert "[tillsync.commands]" in entry_points
    assert "sim = tillsync_sim.cli:sim" in entry_points
    assert "demo = tillsync_sim.cli:demo" in entry_points


def test_nothing_a_build_reads_is_ignored_by_git() -> None:
    """A clean clone must hold every file a build reads: a `build/` rule in .gitignore once hid
    the build backend's folder, so the tree built and a fresh clone could not."""
    if not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    needed: list[str] = []
    for project in (REPO, REPO / "simulators"):
        config = tomllib.loads((project / "pyproject.toml").read_text())
        for folder in config["build-system"].get("backend-path", []):
            backend = project / folder
            assert backend.is_dir(), backend
            needed += [p.relative_to(REPO).as_posix() for p in backend.resolve().rglob("*.py")]
        needed.append((project / "pyproject.toml").relative_to(REPO).as_posix())
    for folder in (*PRODUCT_FOLDERS, "simulators"):
        needed += [f"{folder}/{p}/__init__.py" for p in _package_folders(REPO / folder)]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *needed],
        cwd=REPO,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert not ignored, f"git ignores files the build needs: {ignored}"
