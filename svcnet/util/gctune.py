"""Garbage-collector settings for long-running server processes."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Garbage-collector settings for a long-running server process; call after startup.

    The API server holds every stored object and the watch history in memory; CPython's cyclic
    collector would otherwise walk them over and over (a full collection each time the heap grew
    by a quarter, a young one every 700 allocations — a handful of requests). ``gc.freeze()``
    moves what startup loaded out of the collector's sight, and a larger young generation makes
    young collections ten times rarer. Reference counting frees everything acyclic at once
    whatever the thresholds, so memory does not grow with them. Process-wide: only for a
    process that runs a server (never inside a test run).
    """
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, 10_000), middle, old)
