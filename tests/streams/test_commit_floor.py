"""Faust's consumer never commits past a record an agent took and has not acknowledged.

The agents acknowledge out of order (a sink acknowledges a record once written or superseded;
the orders agent an ``orders/paid`` webhook at once, and the ``orders/create`` before it only
once the order is read). Faust 0.15.3 commits the first run of acknowledged offsets whatever
lies before it when the partition has no commit yet, and steps over one record that is not
acknowledged at the head of the others: a fresh-clone CI run lost four orders that way
(``test_restart_window``: the create of each at offsets 0 and 1 of a fresh partition, and at
offset 2 under a commit of 2 with the ``orders/paid`` at 3 acknowledged; the worker was killed
before their reads).
"""

from __future__ import annotations

from collections.abc import Iterator

import faust
import pytest
from faust.types import TP, Message

from tillsync.streams import commit_floor

TOPIC = "orders"
PART = TP(TOPIC, 0)


@pytest.fixture
def consumer() -> Iterator[faust.types.transports.ConsumerT]:
    commit_floor.install()
    app = faust.App("commit-floor-test", broker="kafka://127.0.0.1:1")
    app.topic(TOPIC)  # acknowledgements counted for it
    app.consumer_generation_id = 1
    consumer = app.consumer
    consumer._committed_offset.clear()
    yield consumer


def _taken(consumer: faust.types.transports.ConsumerT, offset: int, generation: int = 1) -> Message:
    message = Message(
        TOPIC,
        0,
        offset,
        timestamp=0.0,
        timestamp_type=0,
        headers=None,
        key=None,
        value=None,
        checksum=None,
        tp=PART,
        generation_id=generation,
    )
    consumer.track_message(message)  # what a stream does when it hands a record to an agent
    return message


def _ack(consumer: faust.types.transports.ConsumerT, message: Message) -> None:
    consumer.ack(message)  # a message's last reference let go (``ConsumerMessage.on_final_ack``)


def _commit(consumer: faust.types.transports.ConsumerT) -> int | None:
    return consumer._filter_committable_offsets([PART]).get(PART)


def _acks_on(consumer: faust.types.transports.ConsumerT) -> None:
    consumer.app.topics.acks_enabled_for = lambda topic: True  # type: ignore[method-assign]


def test_a_fresh_partition_commits_nothing_past_a_record_not_acknowledged(consumer) -> None:
    _acks_on(consumer)
    create, other, paid = (_taken(consumer, n) for n in range(3))
    _ack(consumer, other)
    _ack(consumer, paid)
    assert _commit(consumer) is None  # Faust alone: 3, and the create is lost at a restart

    _ack(consumer, create)
    assert _commit(consumer) == 3


def test_one_record_not_acknowledged_at_the_head_holds_the_commit(consumer) -> None:
    _acks_on(consumer)
    consumer._committed_offset[PART] = 2
    create, paid = _taken(consumer, 2), _taken(consumer, 3)
    _ack(consumer, paid)
    assert _commit(consumer) is None  # Faust alone: 4

    _ack(consumer, create)
    assert _commit(consumer) == 4


def test_the_commit_goes_up_to_the_first_record_not_acknowledged(consumer) -> None:
    _acks_on(consumer)
    taken = [_taken(consumer, n) for n in range(6)]
    for n in (0, 1, 2, 4, 5):
        _ack(consumer, taken[n])
    assert _commit(consumer) == 3
    _ack(consumer, taken[3])
    assert _commit(consumer) == 6


def test_a_record_of_an_earlier_generation_holds_nothing_back(consumer) -> None:
    # taken before a rebalance and never acknowledged: Faust seeks to the committed offset,
    # and the new generation's copy is the one that counts
    _acks_on(consumer)
    stale = _taken(consumer, 0, generation=0)
    fresh = [_taken(consumer, n) for n in range(3)]
    for message in fresh:
        _ack(consumer, message)
    assert _commit(consumer) == 3
    assert not stale.acked
