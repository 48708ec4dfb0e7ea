"""setuptools' build backend, less one notice on editable installs.

The product installs its top-level folders (streams/, connectors/, schemas/) as
`tillsync.streams` and so on through `package-dir`; an editable install of such a mapping goes
through setuptools' import finder, which prints an "Editable installation" notice on every
install, warning that a folder named like the package in the working directory may shadow it.
Here that folder *is* the package (`tillsync/`), so the notice says nothing to act on; every
other warning of setuptools still shows.
"""

from __future__ import annotations

import warnings
from typing import Any

from setuptools import build_meta
from setuptools.build_meta import *  # noqa: F403  (the backend's other hooks, unchanged)


def build_editable(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Editable installation")
        return build_meta.build_editable(wheel_directory, config_settings, metadata_directory)
