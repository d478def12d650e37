"""The publishing API a backend worker calls: store first, then fan out.

Light on purpose: a Celery or RQ task that imports it loads the store and the Redis client,
never the web server (aiohttp, python-socketio, python-engineio, prometheus_client).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from .broadcast.base import Broadcast, NoBroadcast
from .broadcast.outbox import Outbox
from .config import Settings, load_settings
from .domain import messages as msg
from .domain.errors import Invalid
from .domain.schemas import SubmitJobBody, flatten, validated
from .store.engine import create_engine
from .store.ledger import Ledger
from .store.migrate import migrate


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

            broadcast = RedisBroadcast(settings.redis_url)
        return cls(ledger, broadcast, owns_engine=True)

    @classmethod
    def from_env(cls) -> Tracker:
        return cls.from_settings(load_settings())

    async def __aenter__(self) -> Tracker:
        if self._owns_engine:
            await migrate(self.ledger.engine)
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
    ) -> int:
        m = msg.progress_update(job_id, stage, progress, message=message)
        return await self.publish(m, user_id=user_id, create=user_id is not None)

    async def fail(
        self,
        job_id: str,
        error: str,
        *,
        code: str,
        will_retry: bool,
        retry_at: float | None = None,
    ) -> int:
        m = msg.processing_error(job_id, error, code=code, will_retry=will_retry, retry_at=retry_at)
        return await self.publish(m)

    async def complete(self, job_id: str, result: dict[str, Any] | None = None) -> int:
        return await self.publish(msg.processing_complete(job_id, result=result))
