"""Run every benchmark in turn, each as its own process with its defaults (BENCHMARKS.md).

.venv/bin/python -m bench
.venv/bin/python -m bench --only stock_pipeline shopify_ceiling
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench import ROOT

# name -> command after the interpreter; each prints its figure, its baseline and how to rerun
BENCHES: dict[str, list[str]] = {
    "sim_shopify": ["bench/sim_shopify.py"],
    "sim_sitoo": ["bench/sim_sitoo.py"],
    "stock_pipeline": ["-m", "bench.stock_pipeline"],
    "stock_latency": ["-m", "bench.stock_latency"],
    "shopify_ceiling": ["-m", "bench.shopify_ceiling"],
    "oversell": ["-m", "bench.oversell"],
    "pickup_latency": ["-m", "bench.pickup_latency"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(BENCHES), default=list(BENCHES))
    args = parser.parse_args()
    failed: list[str] = []
    for name in args.only:
        print(f"== {name}", flush=True)
        began = time.monotonic()
        # one process per bench: a worker or simulator left behind by one cannot skew the next
        rc = subprocess.call([sys.executable, *BENCHES[name]], cwd=ROOT)
        print(f"== {name}: exit {rc} after {time.monotonic() - began:.0f}s\n", flush=True)
        if rc != 0:
            failed.append(name)
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
