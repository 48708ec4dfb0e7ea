"""Which worker runs a task that must run once in the whole deployment (a poll of Sitoo's
ledger or orders, the full reservations refresh): the one Faust assigned the only partition of
the task's topic, once its tables are recovered (the task's cursor is read from one)."""

from __future__ import annotations

from typing import Any

from faust.types import TP


def owns(app: Any, topic_name: str) -> bool:
    """This worker is assigned partition 0 of ``topic_name`` (as an active, not a standby)."""
    return TP(topic_name, 0) in app.assignor.assigned_actives()


def tables_recovered(app: Any) -> bool:
    """Faust has read this worker's tables back from their changelogs."""
    recovery = getattr(app.tables, "recovery", None)
    return recovery is not None and bool(recovery.completed.is_set())
