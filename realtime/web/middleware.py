"""The HTTP edge's two middlewares: every error as one JSON shape, and CORS."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from ..domain.errors import DomainError
from ..logs import Outage
from ..store.engine import is_unavailable

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HTTPError(DomainError):
    """A refusal of the HTTP edge itself (no token, wrong key, not yours)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


CODES = {
    400: "invalid",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


def json_error(
    status: int, code: str, message: str, fields: dict[str, Any] | None = None
) -> web.Response:
    body: dict[str, Any] = {"error": code, "message": message}
    if fields is not None:
        body["fields"] = fields
    return web.json_response(body, status=status)


def error_middleware(outage: Outage, timeout: float) -> Any:
    """Every error leaves as JSON: {"error": CODE, "message": TEXT[, "fields": {...}]}. An API
    call that cannot get the database within `timeout` seconds, or whose database is down or
    full, is 503 `unavailable` (one log line per outage), never a hang and never a 500."""

    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        bounded = request.path.startswith(BOUNDED)
        try:
            if not bounded:
                return await _answer(request, handler)
            async with asyncio.timeout(timeout):
                resp = await _answer(request, handler)
            outage.ok()
            return resp
        except TimeoutError as exc:
            outage.failed(f"{request.method} {request.path}", exc or TimeoutError("timed out"))
        except Exception as exc:
            if not is_unavailable(exc):
                raise
            outage.failed(f"{request.method} {request.path}", exc)
        return json_error(503, "unavailable", "the service cannot answer right now; try again")

    return errors


# Paths whose handlers use the database: bounded in time.
BOUNDED = ("/api/", "/demo/")


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        return json_error(exc.status, exc.code, exc.message, exc.fields)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.content_type == "application/json":
            raise
        code = CODES.get(exc.status, "error")
        resp = json_error(exc.status, code, exc.reason or code)
        if "Allow" in exc.headers:  # 405: which methods the path takes (RFC 9110)
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        if is_unavailable(exc) or isinstance(exc, TimeoutError):
            raise  # 503, counted by the outage above
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal", "internal server error")


def cors_middleware(origins: tuple[str, ...] | None) -> Any:
    """CORS for the HTTP API; same origin only unless REALTIME_CORS_ORIGINS says otherwise."""

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        allowed = (
            origins is not None and origin is not None and ("*" in origins or origin in origins)
        )
        if request.method == "OPTIONS" and allowed:
            resp: web.StreamResponse = web.Response(status=204)
            resp.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            resp.headers["Access-Control-Allow-Headers"] = "Authorization, Content-Type, X-API-Key"
            resp.headers["Access-Control-Max-Age"] = "600"
        else:
            resp = await handler(request)
        if allowed and origin is not None:
            resp.headers["Access-Control-Allow-Origin"] = "*" if "*" in origins else origin  # type: ignore[operator]
            resp.headers["Vary"] = "Origin"
        return resp

    return cors


def polling_limit(max_bytes: int, drop: Callable[[str], Awaitable[None]]) -> Any:
    """A long-polling POST over the payload limit is answered 413 at once and its session
    ended. (python-engineio would wait, forever, for the client to read a CLOSE packet.)"""

    @web.middleware
    async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if (
            request.method == "POST"
            and request.path.startswith("/socket.io")
            and (request.content_length or 0) > max_bytes
        ):
            sid = request.query.get("sid")
            if sid:
                await drop(sid)
            resp = json_error(413, "too_large", f"payloads are limited to {max_bytes} bytes")
            resp.force_close()
            return resp
        return await handler(request)

    return limit


def own_origins(environ: dict[str, Any]) -> set[str]:
    """The origins a page served by this node has: its Host, as seen directly and through a
    proxy (X-Forwarded-Proto/-Host), the way python-engineio computes same-origin."""
    host = environ.get("HTTP_HOST")
    if not host:
        return set()
    scheme = environ.get("wsgi.url_scheme", "http")
    out = {f"{scheme}://{host}"}
    fwd_scheme = str(environ.get("HTTP_X_FORWARDED_PROTO", scheme)).split(",")[0].strip()
    fwd_host = str(environ.get("HTTP_X_FORWARDED_HOST", host)).split(",")[0].strip()
    out.add(f"{fwd_scheme}://{fwd_host}")
    return out


class SocketOrigins:
    """python-engineio's origin check for REALTIME_CORS_ORIGINS: the listed origins and always
    the node's own (a configured list alone would refuse the service's own demo page)."""

    def __init__(self, origins: tuple[str, ...]) -> None:
        self.origins = frozenset(origins)

    def __call__(self, origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None:
            return True
        return "*" in self.origins or origin in self.origins or origin in own_origins(environ)
