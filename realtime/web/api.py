"""HTTP handlers, thin: parse, call the ledger, hand what it stored to the outbox, answer JSON."""

from __future__ import annotations

import hmac
import re
from pathlib import Path
from typing import Any

from aiohttp import web
from marshmallow import Schema, ValidationError

from .. import codec
from ..domain.errors import Invalid, NotFound
from ..domain.job import DEMO, Job
from ..domain.schemas import (
    ID_RE,
    USER_ID_RE,
    DemoTokenBody,
    PublishBody,
    StatusAllQuery,
    SubmitJobBody,
)
from ..store import engine as db
from .auth import Identity, TokenError
from .demo import user_id_for
from .keys import (
    AUTH,
    BROADCAST,
    DEMO_AUTH,
    DEMO_LIMIT,
    ENGINE,
    LEDGER,
    METRICS,
    NOTIFIER,
    OPENAPI,
    OUTBOX,
    SETTINGS,
    STATE,
)
from .middleware import HTTPError

STATIC = Path(__file__).resolve().parent.parent / "static"


def _loads(text: str) -> Any:
    """JSON bodies through the codec; nesting too deep to decode is just not valid JSON."""
    try:
        return codec.loads(text)
    except RecursionError:
        raise ValueError("nested too deeply") from None


_USER_ID = re.compile(USER_ID_RE)
_JOB_ID = re.compile(ID_RE)

# ---- helpers -----------------------------------------------------------------------------------


def identity(request: web.Request) -> Identity:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPError(401, "unauthorized", "missing bearer token")
    try:
        return request.app[AUTH].verify(token.strip())
    except TokenError:
        raise HTTPError(401, "unauthorized", "invalid or expired token") from None


def path_id(request: web.Request, name: str, pattern: re.Pattern[str]) -> str:
    """A path parameter that must look like an id (400 otherwise, before any lookup)."""
    value = request.match_info[name]
    if not pattern.match(value):
        raise Invalid(f"invalid {name}", {name: [f"must match {pattern.pattern}"]})
    return value


def same_user(request: web.Request, who: Identity) -> str:
    user_id = path_id(request, "user_id", _USER_ID)
    if user_id != who.user_id and not who.admin:
        raise HTTPError(403, "forbidden", "that user is not you")
    return user_id


async def body(request: web.Request, schema: Schema, what: str = "request body") -> dict[str, Any]:
    """The JSON object in the request, validated by `schema`; Invalid (400) otherwise."""
    try:
        raw = await request.json(loads=_loads)
    except web.HTTPRequestEntityTooLarge:
        raise  # 413 too_large, as JSON (middleware)
    except Exception:
        raise Invalid("the body must be JSON", {"_body": ["not valid JSON"]}) from None
    if not isinstance(raw, dict):
        raise Invalid("the body must be a JSON object", {"_body": ["not an object"]})
    try:
        loaded: dict[str, Any] = schema.load(raw)
    except ValidationError as exc:
        raise Invalid(f"invalid {what}", exc.messages) from None  # type: ignore[arg-type]
    return loaded


def query(request: web.Request, schema: Schema) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(dict(request.query))
    except ValidationError as exc:
        raise Invalid("invalid query", exc.messages) from None  # type: ignore[arg-type]
    return loaded


# ---- jobs --------------------------------------------------------------------------------------


async def submit_job(request: web.Request) -> web.Response:
    who = identity(request)
    data = await body(request, SubmitJobBody())
    # On a demo node the demo worker runs the job; elsewhere the team's own pipeline does.
    pipeline = DEMO if request.app[SETTINGS].demo else None
    job, stored = await request.app[LEDGER].submit(
        who.user_id, data["videoUrl"].strip(), data["title"], pipeline=pipeline
    )
    await request.app[OUTBOX].send([stored])
    request.app[NOTIFIER].wake.set()
    p = stored.payload
    return web.json_response(
        {
            "jobId": job.job_id,
            "status": "queued",
            "position": p["position"],
            "estimatedWaitSeconds": p["estimatedWaitSeconds"],
        },
        status=202,
    )


async def _own_job(request: web.Request, who: Identity) -> tuple[Job, int | None]:
    job_id = path_id(request, "job_id", _JOB_ID)
    found = await request.app[LEDGER].job(job_id)
    if found is None or (found[0].user_id != who.user_id and not who.admin):
        raise NotFound("no such job")
    return found


async def get_job(request: web.Request) -> web.Response:
    who = identity(request)
    job, pos = await _own_job(request, who)
    return web.json_response(
        {**job.state(pos), "attempt": job.attempt, "maxAttempts": job.max_attempts}
    )


async def cancel_job(request: web.Request) -> web.Response:
    who = identity(request)
    job, _ = await _own_job(request, who)
    cancelling = request.app[LEDGER].cancel(job.user_id, job.job_id, by=who.user_id)
    await request.app[OUTBOX].put(cancelling)
    request.app[NOTIFIER].wake.set()
    found = await request.app[LEDGER].job(job.job_id)
    assert found is not None
    job = found[0]
    return web.json_response(
        {**job.state(None), "attempt": job.attempt, "maxAttempts": job.max_attempts}
    )


async def clear_finished(request: web.Request) -> web.Response:
    """Hide the user's finished jobs on every tab and device: each of their connections, on
    every node, gets a fresh snapshot without them."""
    who = identity(request)
    cleared = await request.app[LEDGER].clear_finished(who.user_id)
    await request.app[BROADCAST].refresh(who.user_id)
    return web.json_response({"cleared": cleared})


# ---- polling fallback --------------------------------------------------------------------------


async def status_all(request: web.Request) -> web.Response:
    who = identity(request)
    user_id = same_user(request, who)
    q = query(request, StatusAllQuery())
    return web.json_response(await request.app[LEDGER].status_all(user_id, q["since"], q["epoch"]))


async def queue_status(request: web.Request) -> web.Response:
    who = identity(request)
    user_id = same_user(request, who)
    return web.json_response(await request.app[LEDGER].queue_status(user_id))


# ---- publishing (backends) ---------------------------------------------------------------------


async def publish(request: web.Request) -> web.Response:
    key = request.app[SETTINGS].api_key
    if key is None:
        raise NotFound("the publish API is off (REALTIME_API_KEY is not set)")
    given = request.headers.get("X-API-Key", "")
    if not hmac.compare_digest(given.encode(), key.encode()):
        raise HTTPError(401, "unauthorized", "missing or wrong X-API-Key")
    # PublishBody has already loaded the message through its type's schema.
    data = await body(request, PublishBody(), "message")
    message = data["message"]
    create = message["type"] == "progress_update"
    stored = await request.app[OUTBOX].put(
        request.app[LEDGER].publish(data["userId"], message, create=create)
    )
    return web.json_response({"seq": stored.seq}, status=202)


# ---- operations --------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    checks: dict[str, bool] = {"draining": state.draining}
    checks["database"] = await db.ping(request.app[ENGINE], timeout=1.0)
    probe = state.subscription_alive
    if probe is not None:
        checks.update(await probe())
    ok = (
        checks["database"]
        and not state.draining
        and all(v for k, v in checks.items() if k not in ("draining", "database"))
    )
    return web.json_response(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status=200 if ok else 503
    )


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[METRICS].render(), headers={"Content-Type": "text/plain; version=0.0.4"}
    )


async def demo_token(request: web.Request) -> web.Response:
    issuer = request.app[DEMO_AUTH]
    if issuer is None:
        raise NotFound("demo mode is off")
    if not request.app[DEMO_LIMIT].take(request.remote or "?"):
        raise HTTPError(429, "rate_limited", "too many sign-ins from this address; wait a moment")
    data = await body(request, DemoTokenBody())
    name = " ".join((data.get("name") or "").split()) or data["userId"]
    user_id = data.get("userId") or user_id_for(name)
    token = issuer.issue(user_id, ttl=3600)
    return web.json_response({"token": token, "userId": user_id, "name": name})


async def info(request: web.Request) -> web.Response:
    """What the page needs to know about this node before signing in."""
    from .. import __version__

    return web.json_response({"demo": request.app[SETTINGS].demo, "version": __version__})


async def index(request: web.Request) -> web.StreamResponse:
    page = STATIC / "index.html"
    if page.is_file():
        return web.FileResponse(page, headers={"Cache-Control": "no-cache"})
    return web.Response(
        text="<!doctype html><title>realtime</title><p>The demo client is not built: run "
        "<code>make run</code> (or <code>make client</code>).</p>",
        content_type="text/html",
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI])


async def docs(request: web.Request) -> web.StreamResponse:
    page = STATIC / "docs.html"
    if page.is_file():
        return web.FileResponse(page, headers={"Cache-Control": "no-cache"})
    return web.Response(
        text="<!doctype html><title>realtime API</title><p>The API reference page is not "
        "built: run <code>make client</code>. The document itself is at "
        '<a href="/openapi.json">/openapi.json</a>.</p>',
        content_type="text/html",
    )


def setup_routes(app: web.Application) -> None:
    r = app.router
    r.add_post("/api/jobs", submit_job)
    r.add_get("/api/jobs/{job_id}", get_job)
    r.add_post("/api/jobs/{job_id}/cancel", cancel_job)
    r.add_post("/api/processing/clear-finished", clear_finished)
    r.add_get("/mindmap/{job_id}", index)  # the demo's result page: the same single page
    r.add_get("/api/processing/status-all/{user_id}", status_all)
    r.add_get("/api/processing/queue-status/{user_id}", queue_status)
    r.add_post("/api/publish", publish)
    r.add_get("/healthz", healthz)
    r.add_get("/readyz", readyz)
    r.add_get("/metrics", metrics)
    r.add_post("/demo/token", demo_token)
    r.add_get("/api/info", info)
    r.add_get("/openapi.json", openapi)
    r.add_get("/docs", docs)
    r.add_get("/", index)
    if (STATIC / "assets").is_dir():
        r.add_static("/assets/", STATIC / "assets")
