"""A Faust table as a writer's plain mapping of numbers (``MutableMapping[str, N]``), so the
writer's decisions run on a dict in a test and on the changelogged table in the worker."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Generic, TypeVar

import faust

N = TypeVar("N", int, float)


class TableMarks(MutableMapping[str, N], Generic[N]):
    """A missing key reads as absent (``KeyError``), not as the table's default, and each value
    as the number type the writer keeps (the JSON changelog gives back ints for floats)."""

    def __init__(self, table: faust.types.TableT, kind: Callable[[Any], N]) -> None:
        self._table = table
        self._kind: Callable[[Any], N] = kind

    def __getitem__(self, key: str) -> N:
        value = self._table.get(key)
        if value is None:
            raise KeyError(key)
        return self._kind(value)

    def __setitem__(self, key: str, value: N) -> None:
        self._table[key] = value

    def __delitem__(self, key: str) -> None:
        del self._table[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table)

    def __len__(self) -> int:
        return len(self._table)
