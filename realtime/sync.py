"""SyncTracker: Tracker's methods, blocking, for Celery, RQ, threads and plain scripts.

One event loop per process runs in a thread of its own, started on first use, with one
Tracker on it; every call is handed to that loop and waited for, so a SyncTracker is safe
to share between the threads of a process and keeps the Tracker's guarantee (stored, then
sent; fan-out trouble never fails a call).

After a fork (Celery's prefork pool, RQ's work horse) the child has no such thread and must
not touch the parent's connections: the first call in the child starts a loop and a Tracker
of its own and leaves the parent's alone.
"""

from __future__ import annotations

import asyncio
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import TimeoutError as FutureTimeout
from types import TracebackType
from typing import Any, TypeVar

from .config import Settings, load_settings
from .tracker import Tracker

T = TypeVar("T")

# A call that has not finished after this many seconds raises TimeoutError (the store's own
# bounds are far shorter; this only keeps a task from hanging forever).
CALL_TIMEOUT = 60.0


class _Runner:
    """The loop thread and its Tracker, for one process."""

    def __init__(self, settings: Settings, timeout: float) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="realtime-sync-tracker", daemon=True
        )
        self.thread.start()
        self.tracker = Tracker.from_settings(settings)
        try:
            self.call(self.tracker.__aenter__(), timeout)
        except BaseException:
            self.loop.call_soon_threadsafe(self.loop.stop)
            raise

    def call(self, work: Awaitable[T], timeout: float) -> T:
        async def run() -> T:
            return await work

        future = asyncio.run_coroutine_threadsafe(run(), self.loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise TimeoutError(f"realtime: no answer within {timeout:g} s") from None

    def close(self, timeout: float) -> None:
        try:
            self.call(self.tracker.close(), timeout)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout)
            if not self.thread.is_alive():
                self.loop.close()


class SyncTracker:
    """`tracker = SyncTracker.from_env()` once (module level of your tasks is fine), then
    `tracker.update_progress(job_id, "transcript_generation", 40)` from any thread or
    forked worker. Errors are those of Tracker: `realtime.DomainError` and its subclasses."""

    def __init__(self, settings: Settings, *, timeout: float = CALL_TIMEOUT) -> None:
        self.settings = settings
        self.timeout = timeout
        self._lock = threading.Lock()
        self._runner: _Runner | None = None
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _forked(ref))

    @classmethod
    def from_env(cls, *, timeout: float = CALL_TIMEOUT) -> SyncTracker:
        return cls(load_settings(), timeout=timeout)

    def _after_fork(self) -> None:
        # The parent's loop thread does not exist in this process, and its connections are
        # the parent's: forget them (never close them from here) and start afresh on use.
        self._lock = threading.Lock()
        self._runner = None

    def _call(self, fn: Callable[[Tracker], Awaitable[T]]) -> T:
        with self._lock:
            runner = self._runner
            if runner is None or runner.pid != os.getpid():
                runner = self._runner = _Runner(self.settings, self.timeout)
        if threading.current_thread() is runner.thread:
            raise RuntimeError("SyncTracker called from its own loop: use Tracker in async code")
        return runner.call(fn(runner.tracker), self.timeout)

    def close(self) -> None:
        """Close the store and Redis connections and stop the loop thread (idempotent)."""
        with self._lock:
            runner, self._runner = self._runner, None
        if runner is not None and runner.pid == os.getpid():
            runner.close(self.timeout)

    def __enter__(self) -> SyncTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---- Tracker's methods, blocking ---------------------------------------------------------

    def publish(
        self, message: dict[str, Any], *, user_id: str | None = None, create: bool = False
    ) -> int:
        return self._call(lambda t: t.publish(message, user_id=user_id, create=create))

    def submit(self, user_id: str, video_url: str, title: str | None = None) -> str:
        return self._call(lambda t: t.submit(user_id, video_url, title))

    def update_progress(
        self,
        job_id: str,
        stage: str,
        progress: int,
        message: str | None = None,
        *,
        user_id: str | None = None,
        video_title: str | None = None,
        video_duration: float | None = None,
        estimated_completion: float | None = None,
    ) -> int:
        return self._call(
            lambda t: t.update_progress(
                job_id,
                stage,
                progress,
                message,
                user_id=user_id,
                video_title=video_title,
                video_duration=video_duration,
                estimated_completion=estimated_completion,
            )
        )

    def fail(
        self,
        job_id: str,
        error: str,
        *,
        code: str,
        will_retry: bool,
        retry_at: float | None = None,
        retry_in: float | None = None,
    ) -> int:
        return self._call(
            lambda t: t.fail(
                job_id,
                error,
                code=code,
                will_retry=will_retry,
                retry_at=retry_at,
                retry_in=retry_in,
            )
        )

    def complete(self, job_id: str, result: dict[str, Any] | None = None) -> int:
        return self._call(lambda t: t.complete(job_id, result))

    def cancel(self, job_id: str) -> int:
        return self._call(lambda t: t.cancel(job_id))

    def heartbeat(
        self, job_id: str | None = None, *, slots: int | None = None, pipeline: str = "default"
    ) -> None:
        self._call(lambda t: t.heartbeat(job_id, slots=slots, pipeline=pipeline))


def _forked(ref: weakref.ref[SyncTracker]) -> None:
    tracker = ref()
    if tracker is not None:
        tracker._after_fork()
