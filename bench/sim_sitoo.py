"""How many paged GETs per second the Sitoo simulator serves over real HTTP.

Starts the simulator as its own process (as `tillsync sim sitoo` runs it), seeded with --skus
products, then client processes GET one warehouse's items
(`warehouseitems.json?start=..&num=100`, walking the pages) for --seconds and print the rate.
Target: >= 1,000 requests/second.

Two kinds of client, one after the other: httpx.AsyncClient (what tillsync uses) and plain
keep-alive HTTP/1.1 sockets. On a small machine httpx spends several times more CPU per request
than the simulator, so the httpx figure measures the client; the socket figure and the
simulator's CPU per request (read from /_sim/health) measure the server.

    .venv/bin/python bench/sim_sitoo.py
    .venv/bin/python bench/sim_sitoo.py --url http://127.0.0.1:8702 --client httpx
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import subprocess
import sys
import time
from multiprocessing import Process, Queue
from pathlib import Path

import httpx

from tillsync_sim.procs import free_port

ROOT = Path(__file__).resolve().parent.parent
ACCOUNT, API_ID, PASSWORD = 90001, "90001-1", "bench-password"


def start_sim(port: int, skus: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "TILLSYNC_SITOO_ACCOUNT_ID": str(ACCOUNT),
        "TILLSYNC_SITOO_API_ID": API_ID,
        "TILLSYNC_SITOO_API_PASSWORD": PASSWORD,
    }
    env.pop("TILLSYNC_CONFIG", None)
    cmd = [
        sys.executable,
        "-m",
        "tillsync_sim.sitoo.cli",
        "--port",
        str(port),
        "--rate",
        "0",
        "--stores",
        "1",
        "--skus",
        str(skus),
    ]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)


async def wait_ready(base: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as http:
        while True:
            try:
                if (await http.get(f"{base}/_sim/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("simulator did not start")
            await asyncio.sleep(0.05)


async def worker(base: str, num: int, total: int, stop: float, counts: list[int], idx: int) -> None:
    path = f"/v2/accounts/{ACCOUNT}/sites/1/warehouses/1/warehouseitems.json"
    pages = max(1, total // num)
    # a fixed Authorization header and prebuilt URLs keep httpx's per-request work small
    token = base64.b64encode(f"{API_ID}:{PASSWORD}".encode()).decode()
    urls = [f"{base}{path}?start={p * num}&num={num}" for p in range(pages)]
    async with httpx.AsyncClient(headers={"Authorization": f"Basic {token}"}) as http:
        n = idx
        while time.monotonic() < stop:
            resp = await http.get(urls[n % pages])
            # decoding every body would measure httpx's JSON speed more than the simulator
            if resp.status_code != 200 or (n % 50 == 0 and len(resp.json()["items"]) != num):
                raise SystemExit(f"unexpected answer {resp.status_code}: {resp.text[:200]}")
            counts[idx] += 1
            n += 1


async def raw_worker(
    base: str, num: int, total: int, stop: float, counts: list[int], idx: int
) -> None:
    """Keep-alive HTTP/1.1 over asyncio streams: a client that costs far less CPU than httpx,
    so the figure shows what the simulator serves rather than what httpx can send."""
    host, port = base.removeprefix("http://").split(":")
    path = f"/v2/accounts/{ACCOUNT}/sites/1/warehouses/1/warehouseitems.json"
    token = base64.b64encode(f"{API_ID}:{PASSWORD}".encode()).decode()
    pages = max(1, total // num)
    requests = [
        (
            f"GET {path}?start={p * num}&num={num} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: Basic {token}\r\n\r\n"
        ).encode()
        for p in range(pages)
    ]
    reader, writer = await asyncio.open_connection(host, int(port))
    n = idx
    try:
        while time.monotonic() < stop:
            writer.write(requests[n % pages])
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise SystemExit(f"unexpected answer {head[:60]!r}")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            counts[idx] += 1
            n += 1
    finally:
        writer.close()


async def sim_cpu(base: str) -> tuple[float, int]:
    async with httpx.AsyncClient() as http:
        health = (await http.get(f"{base}/_sim/health")).json()
    return float(health["cpu_seconds"]), int(health["api_calls"])


def client_process(
    base: str, num: int, total: int, seconds: float, concurrency: int, raw: bool, out: Queue[int]
) -> None:
    """One process of ``concurrency`` clients; puts its request count on ``out``."""
    run_one = raw_worker if raw else worker

    async def go() -> int:
        warm = time.monotonic() + 0.5
        await asyncio.gather(
            *(run_one(base, num, total, warm, [0] * concurrency, i) for i in range(concurrency))
        )
        counts = [0] * concurrency
        stop = time.monotonic() + seconds
        await asyncio.gather(
            *(run_one(base, num, total, stop, counts, i) for i in range(concurrency))
        )
        return sum(counts)

    out.put(asyncio.run(go()))


async def measure(base: str, args: argparse.Namespace, raw: bool) -> None:
    cpu0, calls0 = await sim_cpu(base)
    out: Queue[int] = Queue()
    per_proc = max(1, args.concurrency // args.procs)
    clients = [
        Process(
            target=client_process,
            args=(base, args.num, args.skus, args.seconds, per_proc, raw, out),
        )
        for _ in range(args.procs)
    ]
    for c in clients:
        c.start()
    requests = sum(out.get(timeout=args.seconds + 60) for _ in clients)
    for c in clients:
        c.join()
    cpu1, calls1 = await sim_cpu(base)
    kind = "raw keep-alive sockets" if raw else "httpx.AsyncClient"
    print(
        f"{kind}: {requests / args.seconds:,.0f} paged GETs/s (warehouseitems num={args.num}, "
        f"{args.procs} processes x {per_proc} clients, {requests} requests in "
        f"{args.seconds:.1f}s; {os.cpu_count()} CPUs shared by server and clients)"
    )
    served = calls1 - calls0
    if cpu1 > cpu0 and served:
        print(
            f"  simulator CPU: {(cpu1 - cpu0) / served * 1e6:,.0f} us per request = "
            f"{served / (cpu1 - cpu0):,.0f} requests per CPU-second of the simulator process"
        )


async def run(args: argparse.Namespace) -> None:
    proc = None
    base = args.url
    if base is None:
        port = free_port()
        proc = start_sim(port, args.skus)
        base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base)
        if args.client in ("httpx", "both"):
            await measure(base, args, raw=False)
        if args.client in ("raw", "both"):
            await measure(base, args, raw=True)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
    argv = " ".join(sys.argv[1:])
    print(f"reproduce: .venv/bin/python bench/sim_sitoo.py {argv}".rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="benchmark a running simulator instead of starting one")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8, help="httpx clients in all")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument(
        "--client",
        choices=["httpx", "raw", "both"],
        default="both",
        help="httpx clients, light keep-alive socket clients, or both one after the other",
    )
    parser.add_argument("--num", type=int, default=100, help="page size (num)")
    parser.add_argument("--skus", type=int, default=1000, help="products seeded (stock rows)")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
