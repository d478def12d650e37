"""Background loops, supervised: every long-running task of the service runs through `supervise`.

A step that raises is logged (with its traceback the first time in a row, one line after
that, and a line when it works again) and the loop goes on; cancelling the task stops it.
Nothing a background task does can end it silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """Wait for `event` at most `timeout` seconds; True when it is set. (Not asyncio.wait_for:
    on Python 3.11 it swallows a cancellation that arrives as the event is set, and the task
    never ends.)"""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()


async def supervise(
    name: str,
    step: Callable[[], Awaitable[object]],
    *,
    every: float | Callable[[], float],
    wake: asyncio.Event | None = None,
    run_first: bool = False,
    logger: logging.Logger = log,
) -> None:
    """Run `step` until cancelled: wait `every` seconds (or until `wake` is set), run it, and
    again; with `run_first`, run before the first wait. `every` may be a function, read
    before each wait."""
    failures = 0
    first = run_first
    while True:
        if not first:
            pause = every() if callable(every) else every
            if wake is not None:
                await wait_event(wake, pause)
                wake.clear()
            else:
                await asyncio.sleep(pause)
        first = False
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            failures += 1
            logger.warning("%s: %s", name, exc or type(exc).__name__, exc_info=failures == 1)
            continue
        if failures:
            logger.warning("%s: working again after %d failure(s)", name, failures)
            failures = 0
