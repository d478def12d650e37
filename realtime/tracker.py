"""The publishing API a backend worker calls: store first, then fan out."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from marshmallow import ValidationError

from .broadcast import Broadcast, NoBroadcast, RedisBroadcast
from .config import Settings, load_settings
from .db import create_engine
from .jobs import Invalid, iso
from .ledger import Ledger
from .migrate import migrate
from .schemas import SubmitJobBody, load_message
from .stream import Stored


def validated(message: dict[str, Any]) -> dict[str, Any]:
    """Shape-check a message; turn marshmallow's error into our Invalid."""
    try:
        return load_message(message)
    except ValidationError as exc:
        fields = exc.messages if isinstance(exc.messages, dict) else {"message": exc.messages}
        raise Invalid("invalid message: " + _flatten(fields), fields) from None


def _flatten(fields: dict[str, Any]) -> str:
    parts = []
    for name, problems in fields.items():
        text = "; ".join(str(p) for p in problems) if isinstance(problems, list) else str(problems)
        parts.append(f"{name}: {text}")
    return ", ".join(parts)


class Tracker:
    """`async with Tracker.from_env() as t: await t.update_progress(...)`.

    Every call validates, stores the message (raising DomainError subclasses when it cannot),
    then fans it out; fan-out trouble never fails the call.
    """

    def __init__(self, ledger: Ledger, broadcast: Broadcast, *, owns_engine: bool = False) -> None:
        self.ledger = ledger
        self.broadcast = broadcast
        self._owns_engine = owns_engine

    @classmethod
    def from_settings(cls, settings: Settings) -> Tracker:
        engine = create_engine(settings.database_url)
        ledger = Ledger(
            engine, history_size=settings.history_size, history_ttl=settings.history_ttl
        )
        broadcast: Broadcast = (
            RedisBroadcast(settings.redis_url) if settings.redis_url else NoBroadcast()
        )
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
        await self.broadcast.close()
        if self._owns_engine:
            await self.ledger.close()

    async def _send(self, stored: Stored) -> int:
        await self.broadcast.send([stored])
        return stored.seq

    async def publish(
        self, message: dict[str, Any], *, user_id: str | None = None, create: bool = False
    ) -> int:
        """Store and fan out one message of any publishable type; returns its seq."""
        stored = await self.ledger.publish(user_id, validated(message), create=create)
        return await self._send(stored)

    async def submit(self, user_id: str, video_url: str, title: str | None = None) -> str:
        errors = SubmitJobBody().validate({"videoUrl": video_url, "title": title})
        if errors:
            raise Invalid("invalid job: " + _flatten(errors), errors)
        job, stored = await self.ledger.submit(user_id, video_url.strip(), title)
        await self._send(stored)
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
        m: dict[str, Any] = {
            "type": "progress_update",
            "jobId": job_id,
            "stage": stage,
            "progress": progress,
        }
        if message is not None:
            m["message"] = message
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
        m: dict[str, Any] = {
            "type": "processing_error",
            "jobId": job_id,
            "error": error,
            "code": code,
            "willRetry": will_retry,
        }
        if retry_at is not None:
            m["retryAt"] = iso(retry_at)
        return await self.publish(m)

    async def complete(self, job_id: str, result: dict[str, Any] | None = None) -> int:
        m: dict[str, Any] = {"type": "processing_complete", "jobId": job_id}
        if result is not None:
            m["result"] = result
        return await self.publish(m)
