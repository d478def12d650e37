"""Compaction of a replay: a later message for a job makes its earlier progress redundant."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def compact(batch: Iterable[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
    """Drop each progress_update that a later message in `batch` for the same job supersedes.
    Every other type is kept. Returns the kept messages (in order) and how many were dropped."""
    items = list(batch)
    seen_later: set[Any] = set()
    keep_flags = [True] * len(items)
    for i in range(len(items) - 1, -1, -1):
        m = items[i]
        job = m.get("jobId")
        if m.get("type") == "progress_update" and job in seen_later:
            keep_flags[i] = False
        seen_later.add(job)
    kept = [m for m, k in zip(items, keep_flags, strict=True) if k]
    return kept, len(items) - len(kept)
