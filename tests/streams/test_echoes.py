from tillsync.streams.echoes import ECHO_WINDOW, Echoes


def test_the_echo_of_a_write_is_absorbed_once() -> None:
    echoes = Echoes()
    echoes.expect(1, 10, value=5, applied_at=100.4)
    assert echoes.absorb(1, 10, available=5, updated_at=100.0)
    # a second webhook with the same value is somebody else's change (or a redelivery)
    assert not echoes.absorb(1, 10, available=5, updated_at=100.0)


def test_a_different_value_place_or_time_is_not_an_echo() -> None:
    echoes = Echoes()
    echoes.expect(1, 10, value=5, applied_at=100.0)
    assert not echoes.absorb(1, 10, available=4, updated_at=100.0)
    assert not echoes.absorb(1, 11, available=5, updated_at=100.0)
    assert not echoes.absorb(2, 10, available=5, updated_at=100.0)
    assert not echoes.absorb(1, 10, available=5, updated_at=100.0 + ECHO_WINDOW + 1)
    # none of those used up the expectation
    assert echoes.absorb(1, 10, available=5, updated_at=100.0)


def test_only_the_newest_write_of_a_position_is_expected() -> None:
    echoes = Echoes()
    echoes.expect(1, 10, value=5, applied_at=100.0)
    echoes.expect(1, 10, value=6, applied_at=100.5)
    assert not echoes.absorb(1, 10, available=5, updated_at=100.0)
    assert echoes.absorb(1, 10, available=6, updated_at=100.0)


def test_capacity_bounds_memory_dropping_the_oldest() -> None:
    echoes = Echoes(capacity=2)
    for item in (1, 2, 3):
        echoes.expect(item, 10, value=1, applied_at=100.0)
    assert len(echoes) == 2
    assert not echoes.absorb(1, 10, available=1, updated_at=100.0)
    assert echoes.absorb(3, 10, available=1, updated_at=100.0)
