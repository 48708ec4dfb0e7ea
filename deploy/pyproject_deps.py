"""Print the dependencies a pyproject.toml declares, one a line, for `pip install -r`.

The Dockerfile installs them from this list before it copies any source, so that a change to the
code does not install them again. Names given after the file are left out: the simulators'
dependency on tillsync, which their image installs from its own wheel.

    python deploy/pyproject_deps.py pyproject.toml
    python deploy/pyproject_deps.py simulators/pyproject.toml tillsync
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterable
from pathlib import Path


def requirement_name(requirement: str) -> str:
    """The normalised project name of a PEP 508 requirement (`Faust_Streaming[x]>=1` ->
    `faust-streaming`): it runs up to the first extra, version, marker or URL."""
    name = re.split(r"[\s\[(<>=!~;@]", requirement.strip(), maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


def dependencies(pyproject: Path, leave_out: Iterable[str] = ()) -> list[str]:
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    if "dependencies" in project.get("dynamic", []):
        raise SystemExit(f"{pyproject}: dependencies are dynamic; list them in [project]")
    skip = {requirement_name(name) for name in leave_out}
    return [r for r in project.get("dependencies", []) if requirement_name(r) not in skip]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    for requirement in dependencies(Path(argv[0]), argv[1:]):
        print(requirement)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
