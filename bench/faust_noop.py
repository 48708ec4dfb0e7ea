"""The framework's own ceiling: a Faust agent that only counts the records of a topic.

Run by ``bench.stock_pipeline`` as a second baseline beside raw aiokafka, on the same topic of
the same broker, with the worker's Faust settings that matter (RocksDB off: nothing is stored).
It prints one line, ``NOOP <events> <seconds> <cpu seconds>``, once it has counted ``N``
records, and exits.

    TOPIC=<topic> N=<count> BOOTSTRAP=127.0.0.1:9092 python -m bench.faust_noop worker -l warn
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid

import faust

TOPIC = os.environ.get("TOPIC", "noop")
N = int(os.environ.get("N", "0"))

app = faust.App(
    f"noop-{uuid.uuid4().hex[:8]}",
    broker=f"kafka://{os.environ.get('BOOTSTRAP', '127.0.0.1:9092')}",
    store="memory://",
    # Faust makes its data dir even with nothing to store: keep it out of the working tree
    datadir=tempfile.mkdtemp(prefix="tillsync-noop-"),
    value_serializer="raw",
    key_serializer="raw",
    consumer_auto_offset_reset="earliest",
    web_enabled=False,
    producer_linger=0.005,
)
topic = app.topic(TOPIC, key_type=bytes, value_type=bytes)
_state: dict[str, float] = {"n": 0.0}


@app.agent(topic)
async def count(stream: faust.StreamT[bytes]) -> None:
    async for _ in stream.events():
        if _state["n"] == 0:
            _state["began"], _state["cpu"] = time.monotonic(), time.process_time()
        _state["n"] += 1
        if _state["n"] >= N:
            seconds = time.monotonic() - _state["began"]
            cpu = time.process_time() - _state["cpu"]
            print(f"NOOP {int(_state['n'])} {seconds:.3f} {cpu:.3f}", flush=True)
            os._exit(0)


if __name__ == "__main__":
    app.main()
