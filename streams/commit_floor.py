"""A commit never passes a record an agent took and has not acknowledged.

Faust commits, per partition, the first run of consecutive acknowledged offsets
(``Consumer._new_offset``). It checks that the run starts at the committed offset only when
the partition has a commit other than 0, and then lets one missing offset through (for a
transaction marker). The agents here acknowledge out of order: a sink once a record is written
or superseded, the orders agent an ``orders/paid`` webhook at once and the ``orders/create``
before it once the order is read. So Faust 0.15.3 committed past records still in work: a
fresh-clone CI run lost four orders whose creates sat at offsets 0 and 1 of a partition with no
commit yet, or at offset 2 under a commit of 2 with offset 3 acknowledged, when the worker was
killed before their reads (``tests/e2e/test_restart_window.py``).

The floor of a partition is the lowest offset of a record of this generation that a stream has
taken (``Consumer.track_message``) and not acknowledged. Records above it wait in Faust's
acknowledged list until the floor moves. Records a stream has not taken yet cannot be passed:
a partition's records reach its stream in order, and none after them is acknowledged first.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from faust.transport import consumer as faust_consumer
from faust.types import TP

_original_new_offset = faust_consumer.Consumer._new_offset


def floors(consumer: Any) -> dict[TP, int]:
    """Per partition, the lowest offset taken by a stream and not acknowledged yet."""
    generation = consumer.app.consumer_generation_id
    out: dict[TP, int] = {}
    # a copy: acknowledgements from the consumer thread change the set
    for message in list(consumer._unacked_messages):
        if message.acked or message.generation_id != generation:
            continue  # an earlier generation's record is fetched again after the rebalance
        tp = message.tp
        if tp not in out or message.offset < out[tp]:
            out[tp] = message.offset
    return out


def new_offset(consumer: Any, tp: TP, floor: int | None) -> int | None:
    """Faust's next commit for ``tp``, kept at or below ``floor``."""
    if floor is None:
        return _original_new_offset(consumer, tp)
    acked: list[int] = consumer._acked[tp]
    above = [offset for offset in acked if offset >= floor]
    if not above:
        offset = _original_new_offset(consumer, tp)
    else:
        acked[:] = [offset for offset in acked if offset < floor]
        try:
            offset = _original_new_offset(consumer, tp) if acked else None
        finally:
            acked.extend(above)
            acked.sort()
    if offset is not None and offset > floor:
        return floor  # a gap Faust filled in (``_gap``) cannot pass a record in work either
    return offset


def _filter_committable_offsets(self: Any, tps: Iterable[TP]) -> dict[TP, int]:
    lowest = floors(self)
    commit_offsets: dict[TP, int] = {}
    for tp in tps:
        offset = new_offset(self, tp, lowest.get(tp))
        if offset is not None and self._should_commit(tp, offset):
            commit_offsets[tp] = offset
    return commit_offsets


def install() -> None:
    faust_consumer.Consumer._filter_committable_offsets = _filter_committable_offsets  # type: ignore[method-assign]
