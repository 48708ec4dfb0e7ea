#!/usr/bin/env python3
"""Exit 0 when an HTTP endpoint answers 2xx, 1 otherwise: the containers' healthcheck.

Slim Python images carry neither curl nor wget. Without an argument it asks the worker's
/health on TILLSYNC_WEB_PORT (6066), which answers 503 until the worker holds its partitions;
the simulators are asked at their /_sim/health.

    tillsync-healthcheck                                  # the worker
    tillsync-healthcheck http://127.0.0.1:8701/_sim/health
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request


def default_url() -> str:
    return f"http://127.0.0.1:{os.environ.get('TILLSYNC_WEB_PORT', '6066')}/health"


def check(url: str, timeout: float = 4.0) -> str | None:
    """None when `url` answers 2xx, else what went wrong."""
    # no proxy: the endpoint is this container's own, whatever http_proxy says
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"{url}: HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"
    return None if 200 <= status < 300 else f"{url}: HTTP {status}"


def main(argv: list[str]) -> int:
    problem = check(argv[0] if argv else default_url())
    if problem:
        print(problem, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
