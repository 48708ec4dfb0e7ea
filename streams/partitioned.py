"""Table access for agents that take events in batches.

Faust keeps a table entry in the partition of the event being processed: its RocksDB store
reads and writes the database of ``current_event()``'s partition, and the changelog record goes
to that partition. An agent that takes a batch (``stream.take_events``) has no single current
event, so it names, per key, an event of that key's partition (topics keyed like the table are
co-partitioned with it). Outside any event a read looks the key up in every local partition.

Faust offers no public way to set the current event; the context variable it reads is private,
so it is touched here and nowhere else.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import faust
from faust.streams import _current_event


@contextmanager
def in_partition_of(event: faust.EventT) -> Iterator[None]:
    """Table reads and writes inside go to ``event``'s partition."""
    token = _current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        _current_event.reset(token)


@contextmanager
def any_partition() -> Iterator[None]:
    """Table reads inside find a key in whichever local partition holds it (no writes)."""
    token = _current_event.set(None)
    try:
        yield
    finally:
        _current_event.reset(token)
