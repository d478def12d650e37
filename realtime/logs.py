"""Log lines that a flood cannot multiply: bad input from peers, and outages of a dependency.

- `RateLimitedLog`: the first of a kind of bad input, then at most a line a minute with a count.
- `Outage`: one line when a dependency fails, one a minute while it lasts (how many requests it
  refused), one when it is back: one log line per outage, not per request.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("realtime")

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


class RateLimitedLog:
    """A log line for the first of a kind of bad input, then at most one a minute with a count:
    a peer sending garbage must not flood the log."""

    def __init__(self, what: str, every: float = 60.0, logger: logging.Logger = log) -> None:
        self.what = what
        self.logger = logger
        self.every = every
        self.count = 0
        self._said = -every

    def note(self, exc: BaseException) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self._said >= self.every:
            self._said = now
            detail = (str(exc).splitlines() or [""])[0][:200] or type(exc).__name__
            self.logger.warning("%s (%d so far): %s", self.what, self.count, detail)
