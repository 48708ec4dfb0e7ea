"""How many small inventorySetQuantities calls per second the Shopify simulator serves.

The simulator runs in its own process (one core, as in the demo); the load comes from
``--clients`` concurrent httpx clients in each of ``--load-processes`` processes, sending one-entry
``inventorySetQuantities`` mutations with a fresh ``@idempotent`` key over real HTTP.
The bucket uses the ``unlimited`` plan so the figure is the simulator's, not Shopify's limit.

    .venv/bin/python bench/sim_shopify.py --seconds 10 --clients 8 --load-processes 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TOKEN = "shpat_bench_token"
SECRET = "bench-secret"


def _settings(port: int) -> Any:
    from tillsync.schemas.settings import Settings

    return Settings(
        shopify_access_token=TOKEN,
        shopify_app_secret=SECRET,
        shopify_url=f"http://127.0.0.1:{port}",
    )


def _serve(port: int, ready: Any) -> None:
    from tillsync_sim.shopify import ShopifySimulator

    async def run() -> None:
        sim = ShopifySimulator(_settings(port), plan="unlimited")
        sim.seed(
            {
                "locations": [{"name": "Store"}],
                "products": [
                    {"title": "Bench", "variants": [{"sku": "BENCH-1", "inventory": {"Store": 10}}]}
                ],
            }
        )
        await sim.start("127.0.0.1", port)
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(run())


async def _load(port: int, seconds: float, clients: int) -> tuple[int, int, float]:
    from tillsync.connectors.shopify import documents as docs

    url = f"http://127.0.0.1:{port}/admin/api/2026-04/graphql.json"
    headers = {"X-Shopify-Access-Token": TOKEN}
    ok = failed = 0
    async with httpx.AsyncClient(
        limits=httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    ) as http:
        ids = (await http.get(f"http://127.0.0.1:{port}/_sim/state/ids")).json()
        item = ids["variants"]["BENCH-1"]["inventory_item_id"]
        loc = ids["locations"]["Store"]

        # The request is serialised once and only the key and quantity are spliced in, and
        # success is checked on the raw bytes: the load generator's CPU is the scarce resource
        # on a small machine, and what is measured is the simulator.
        template = json.dumps(
            {
                "query": docs.INVENTORY_SET_QUANTITIES,
                "variables": {
                    "key": "@KEY@",
                    "input": {
                        "name": "available",
                        "reason": "correction",
                        "referenceDocumentUri": "gid://tillsync/Bench/1",
                        "quantities": [
                            {
                                "inventoryItemId": item,
                                "locationId": loc,
                                "quantity": 424242,
                                "changeFromQuantity": None,
                            }
                        ],
                    },
                },
            }
        )
        head, tail = template.split('"@KEY@"')
        tail_a, tail_b = tail.split("424242")
        request_headers = {**headers, "Content-Type": "application/json"}

        def body(n: int) -> bytes:
            return f'{head}"{uuid.uuid4()}"{tail_a}{n % 100}{tail_b}'.encode()

        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal ok, failed
            n = 0
            while time.monotonic() < deadline:
                n += 1
                r = await http.post(url, content=body(n), headers=request_headers)
                if r.status_code == 200 and b'"userErrors": []' in r.content:
                    ok += 1
                else:
                    failed += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return ok, failed, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients per process")
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument(
        "--load-processes",
        type=int,
        default=2,
        help="client processes; httpx itself costs about as much CPU as the sim",
    )
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    server = ctx.Process(target=_serve, args=(args.port, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise SystemExit("simulator did not start")
        cpu_before = _cpu_seconds(server.pid)
        with ctx.Pool(args.load_processes) as pool:
            results = pool.starmap(
                _run_load, [(args.port, args.seconds, args.clients)] * args.load_processes
            )
        sim_cpu = _cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.join(5)
    ok = sum(r[0] for r in results)
    failed = sum(r[1] for r in results)
    elapsed = max(r[2] for r in results)
    print(
        f"inventorySetQuantities (1 entry): {ok / elapsed:,.0f} req/s served "
        f"({ok} ok, {failed} failed in {elapsed:.1f}s; "
        f"{args.load_processes}x{args.clients} concurrent clients, sim on one core)"
    )
    served = ok + failed
    if sim_cpu > 0 and served:
        # the machine may be shared (load generators, other jobs); CPU time per request is the
        # simulator's own cost, so 1 / it is what one dedicated core would serve
        print(
            f"simulator CPU: {sim_cpu / served * 1e6:,.0f} us/request "
            f"=> {served / sim_cpu:,.0f} req/s per dedicated core"
        )
    print(
        "reproduce: .venv/bin/python bench/sim_shopify.py "
        f"--seconds {args.seconds:g} --clients {args.clients} "
        f"--load-processes {args.load_processes}"
    )


def _cpu_seconds(pid: int | None) -> float:
    """utime + stime of a process, from /proc (Linux); 0 where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _run_load(port: int, seconds: float, clients: int) -> tuple[int, int, float]:
    return asyncio.run(_load(port, seconds, clients))


if __name__ == "__main__":
    main()
