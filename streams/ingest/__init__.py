"""Ingestion: the HTTP receivers that put each platform's messages, unchanged, on raw topics."""

from __future__ import annotations

from tillsync.streams.context import Context


def register(ctx: Context) -> None:
    from tillsync.streams.ingest import receivers

    receivers.register(ctx)
