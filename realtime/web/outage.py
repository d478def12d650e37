"""One log line per outage, not one per request: the first failure says what broke, a line a
minute while it lasts says how many requests it refused, and one says when it is over."""

from __future__ import annotations

import logging
import time

REPEAT_EVERY = 60.0


class Outage:
    def __init__(self, log: logging.Logger, what: str = "database") -> None:
        self.log = log
        self.what = what
        self.since: float | None = None
        self.refused = 0
        self._said = 0.0

    def failed(self, doing: str, exc: BaseException) -> None:
        now = time.monotonic()
        self.refused += 1
        detail = (str(exc).splitlines() or [""])[0][:200] or type(exc).__name__
        if self.since is None:
            self.since = self._said = now
            self.log.warning("%s unavailable (%s): %s", self.what, doing, detail)
        elif now - self._said >= REPEAT_EVERY:
            self._said = now
            self.log.warning(
                "%s still unavailable after %.0f s: %d requests refused; last: %s",
                self.what,
                now - self.since,
                self.refused,
                detail,
            )

    def ok(self) -> None:
        if self.since is not None:
            self.log.warning(
                "%s available again after %.0f s (%d requests refused meanwhile)",
                self.what,
                time.monotonic() - self.since,
                self.refused,
            )
            self.since = None
            self.refused = 0
