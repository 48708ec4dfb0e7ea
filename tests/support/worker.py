"""A tillsync worker as a real process, for end-to-end tests: the product's own `Child`, plus
what a test needs (its URL, SIGKILL, the tail of its log)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tillsync_sim.procs import Child, free_port

REPO = Path(__file__).resolve().parents[2]


class WorkerProcess(Child):
    def __init__(self, env: dict[str, str], data_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        super().__init__(
            log_path.stem,
            ["worker"],
            log_path.parent,
            {**env, "TILLSYNC_WEB_PORT": str(self.port), "TILLSYNC_DATA_DIR": str(data_dir)},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 90.0) -> None:
        super().start()
        t0 = time.monotonic()
        try:
            self.wait_http(f"{self.url}/health", ready_timeout)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}\n{self.tail()}") from None
        print(f"worker ready in {time.monotonic() - t0:.1f}s")

    def get(self, path: str) -> Any:
        return httpx.get(f"{self.url}{path}", timeout=5.0).json()

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, no final commit, no flush."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
