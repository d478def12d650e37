"""The group committer's commits never checkpoint the SQLite WAL themselves; the
WalCheckpointer keeps the WAL from growing without bound."""

from __future__ import annotations

import os
from pathlib import Path

from realtime.store.engine import create_engine
from realtime.store.ledger import Ledger
from realtime.store.migrate import migrate


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


async def test_wal_stays_small_while_the_committer_writes(tmp_path: Path) -> None:
    db = tmp_path / "realtime.db"
    ledger = Ledger(create_engine(f"sqlite+aiosqlite:///{db}"), history_size=100, history_ttl=3600)
    await migrate(ledger.engine)
    wal = Path(f"{db}-wal")
    biggest = 0
    try:
        for i in range(1500):
            message = {
                "type": "progress_update",
                "jobId": f"j{i}",
                "stage": "indexing",
                "progress": 5,
                # Pages enough that an unchecked WAL would pass 10 MB.
                "message": os.urandom(1000).hex(),
            }
            await ledger.publish(f"u{i % 50}", message, create=True)
            biggest = max(biggest, size(wal))
        checkpointer = ledger.committer._checkpointer
        assert checkpointer is not None and checkpointer.checkpoints > 0
    finally:
        await ledger.close()
    # Without the committer finishing checkpoints the WAL reaches ~70 MB here; with it, 1.5-4 MB
    # on an idle machine and up to ~5.5 MB with the rest of the suite running beside it.
    assert biggest < 8 << 20, f"WAL grew to {biggest} bytes"
