"""The publishing API a backend worker calls: store first, then fan out.

Light on purpose: a Celery or RQ task that imports it loads the store and the Redis client,
never the web server (aiohttp, python-socketio, python-engineio, prometheus_client).
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Any

from .broadcast.base import Broadcast, NoBroadcast
from .broadcast.outbox import Outbox
from .config import Settings, load_settings
from .domain import messages as msg
from .domain.errors import Invalid, NotFound
from .domain.schemas import SubmitJobBody, flatten, validated
from .domain.times import iso
from .store.claims import Claims
from .store.engine import create_engine, sqlite_path
from .store.ledger import Ledger
from .store.migrate import ensure_schema


class Tracker:
    """`async with Tracker.from_env() as t: await t.update_progress(...)`.

    Every call validates, stores the message (raising DomainError subclasses when it cannot),
    then fans it out; fan-out trouble never fails the call.
    """

    def __init__(self, ledger: Ledger, broadcast: Broadcast, *, owns_engine: bool = False) -> None:
        self.ledger = ledger
        self.broadcast = broadcast
        self.outbox = Outbox(broadcast)
        self._owns_engine = owns_engine

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracker:
        engine = create_engine(settings.database_url)
        ledger = Ledger(
            engine, history_size=settings.history_size, history_ttl=settings.history_ttl
        )
        broadcast: Broadcast = NoBroadcast()
        if settings.redis_url:
            from .broadcast.redis import RedisBroadcast
            from .broadcast.signing import channel_key

            broadcast = RedisBroadcast(settings.redis_url, key=channel_key(settings.jwt_secret))
        return cls(ledger, broadcast, owns_engine=True)

    @classmethod
    def from_env(cls) -> Tracker:
        return cls.from_settings(load_settings())

    async def __aenter__(self) -> Tracker:
        if self._owns_engine:
            path = sqlite_path(self.ledger.engine)
            fresh = path is not None and not path.exists()
            await ensure_schema(self.ledger.engine)
            if fresh:
                # Almost always a mistake: the server's database is elsewhere.
                print(
                    f"warning: realtime: created a new SQLite database at {path}; "
                    "set REALTIME_DATABASE_URL to the server's database",
                    file=sys.stderr,
                )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self.outbox.close()
        if self._owns_engine:
            await self.ledger.close()

    async def publish(
        self, message: dict[str, Any], *, user_id: str | None = None, create: bool = False
    ) -> int:
        """Store and fan out one message of any publishable type; returns its seq."""
        checked = validated(message)
        stored = await self.outbox.put(self.ledger.publish(user_id, checked, create=create))
        return stored.seq

    async def submit(self, user_id: str, video_url: str, title: str | None = None) -> str:
        errors = SubmitJobBody().validate({"videoUrl": video_url, "title": title})
        if errors:
            raise Invalid("invalid job: " + flatten(errors), errors)
        job, stored = await self.ledger.submit(user_id, video_url.strip(), title)
        await self.outbox.send([stored])
        return job.job_id

    async def update_progress(
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
        """A job moved. `video_title` names it (the metadata stage knows it); the video's
        length in seconds (`video_duration`) lets the estimates scale with it; without
        `estimated_completion` (epoch seconds) the server estimates from history."""
        m = msg.progress_update(
            job_id,
            stage,
            progress,
            message=message,
            video_title=video_title,
            video_duration=video_duration,
            estimated_completion=iso(estimated_completion),
        )
        return await self.publish(m, user_id=user_id, create=user_id is not None)

    async def fail(
        self,
        job_id: str,
        error: str,
        *,
        code: str,
        will_retry: bool,
        retry_at: float | None = None,
        retry_in: float | None = None,
    ) -> int:
        """The attempt failed. With `will_retry`, give when the next attempt runs as
        `retry_in` seconds from now or `retry_at` (epoch seconds), as your task queue
        schedules it; without either the server assumes its own backoff."""
        if retry_in is not None:
            if retry_at is not None:
                raise Invalid("give retry_in or retry_at, not both", {"retryAt": ["both given"]})
            retry_at = self.ledger.clock() + max(float(retry_in), 0.0)
        m = msg.processing_error(job_id, error, code=code, will_retry=will_retry, retry_at=retry_at)
        return await self.publish(m)

    async def complete(self, job_id: str, result: dict[str, Any] | None = None) -> int:
        return await self.publish(msg.processing_complete(job_id, result=result))

    async def cancel(self, job_id: str) -> int:
        """End the job with processing_error `cancelled` (the user's Cancel, from a backend)."""
        stored = await self.outbox.put(self.ledger.cancel(None, job_id))
        return stored.seq

    async def heartbeat(
        self, job_id: str | None = None, *, slots: int | None = None, pipeline: str = "default"
    ) -> None:
        """Keep `job_id` alive through a long stage without moving its bar (a job silent for
        REALTIME_STALL_SECONDS ends as `stalled`); with `slots`, declare how many jobs this
        pipeline runs at once (queue estimates use it for WORKER_LIVE_SECONDS, 15 s, so send
        it at least that often). Stores no message."""
        if slots is not None:
            if slots < 1:
                raise Invalid("slots must be at least 1", {"slots": ["must be at least 1"]})
            await Claims(self.ledger).heartbeat(
                f"pipeline:{pipeline}", concurrency=slots, speed=1.0
            )
        if job_id is not None and not await self.ledger.heartbeat(job_id):
            raise NotFound(f"job {job_id} is not processing or retrying", {"jobId": ["not active"]})
