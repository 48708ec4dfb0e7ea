"""`tillsync sim shopify` command: documented options, and it serves when started."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from tillsync_sim.shopify.cli import command

from .conftest import SEED

REPO = Path(__file__).resolve().parents[3]


def test_help_documents_every_option() -> None:
    result = CliRunner().invoke(command, ["--help"])
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--webhook-url",
        "--plan",
        "--seed",
        "--rng-seed",
        "--faults",
        "--webhook-retry-base",
    ):
        assert option in result.output
    for param in command.params:
        assert getattr(param, "help", None), f"{param.name} has no help"


def test_missing_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TILLSYNC_CONFIG", "TILLSYNC_SHOPIFY_ACCESS_TOKEN", "TILLSYNC_SHOPIFY_APP_SECRET"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(command, ["--port", "0"])
    assert result.exit_code != 0
    assert "shopify_access_token" in result.output


def test_process_serves_seeded_shop(tmp_path: Path) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps(SEED))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILLSYNC_")}
    env.update(TILLSYNC_SHOPIFY_ACCESS_TOKEN="cli-token", TILLSYNC_SHOPIFY_APP_SECRET="s")
    code = "from tillsync_sim.shopify.cli import command; command()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--seed", str(seed), "--plan", "plus"],
        cwd=REPO,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if "GraphQL " in line:
                url = line.rsplit("GraphQL ", 1)[1].rstrip(")\n")
            elif not line and proc.poll() is not None:
                break
        assert url, "simulator did not report its URL"
        r = httpx.post(
            url,
            json={"query": "{ locations(first: 5) { nodes { name } } }"},
            headers={"X-Shopify-Access-Token": "cli-token"},
        )
        names = [n["name"] for n in r.json()["data"]["locations"]["nodes"]]
        assert names == ["Store Stockholm", "Warehouse"]
        assert r.json()["extensions"]["cost"]["throttleStatus"]["restoreRate"] == 1000.0
    finally:
        proc.terminate()
        proc.wait(10)
