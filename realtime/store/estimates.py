"""The estimator's model, as this process last read it from `stage_samples`.

Every write that fills in an estimatedCompletion needs the model; reading 350 sample rows per
transaction would cost more than the transaction. So it is re-read at most every REFRESH
seconds (samples other processes record reach this one within that), and at once after this
process recorded samples itself.
"""

from __future__ import annotations

import time

from sqlalchemy import Connection

from ..domain import eta
from .queue import load_model

REFRESH = 5.0


class Estimates:
    def __init__(self, refresh: float = REFRESH) -> None:
        self.refresh = refresh
        self._model = eta.NOMINAL_MODEL
        self._read_at: float | None = None

    def model(self, conn: Connection) -> eta.Model:
        """The model, re-read in the caller's transaction when it is stale."""
        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= self.refresh:
            self._model = load_model(conn)
            self._read_at = now
        return self._model

    def stale(self) -> None:
        """Samples were just recorded: read the model again next time."""
        self._read_at = None
