"""The OpenAPI 3.1 document of the HTTP API, generated from the marshmallow schemas the
handlers validate with, so the two cannot drift. Served at /openapi.json; /docs renders it."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from .. import __version__
from ..domain import schemas as s

# Answers every handler may give, on top of its own.
_ERRORS = {
    "400": "invalid: the body, query or path does not validate (see `fields`)",
    "401": "unauthorized: no token, a bad or expired one, or a wrong X-API-Key",
    "403": "forbidden: the path names another user and the token is not admin",
    "404": "not_found: no such job (or one of another user: never revealed)",
    "409": "conflict: the job is finished, or belongs to another user",
    "413": "too_large: the body is over the size limit",
    "415": "unsupported_media_type",
    "429": "rate_limited: too many requests from this address; wait a moment",
    "503": "unavailable: the database cannot answer right now; try again",
}

_PATHS: dict[str, dict[str, dict[str, Any]]] = {
    "/api/jobs": {
        "post": {
            "summary": "Submit a video: the job is queued and a queue_update is stored and sent",
            "security": "bearer",
            "body": "SubmitJobBody",
            "answers": {"202": ("the job is queued", "SubmitJobOut")},
            "errors": ("400", "401", "413", "415", "503"),
        }
    },
    "/api/jobs/{job_id}": {
        "get": {
            "summary": "A job's state (the snapshot entry, plus attempt and maxAttempts)",
            "security": "bearer",
            "answers": {"200": ("the job", "JobDetailOut")},
            "errors": ("400", "401", "404", "503"),
        }
    },
    "/api/jobs/{job_id}/cancel": {
        "post": {
            "summary": "Cancel a queued, retrying or running job (processing_error `cancelled`)",
            "security": "bearer",
            "answers": {"200": ("the job, now failed with error `cancelled`", "JobDetailOut")},
            "errors": ("400", "401", "404", "409", "503"),
        }
    },
    "/api/processing/clear-finished": {
        "post": {
            "summary": "Hide the user's finished jobs from their list on every device: every "
            "connection of the user gets a fresh snapshot without them",
            "security": "bearer",
            "answers": {"200": ("how many jobs were cleared", "ClearedOut")},
            "errors": ("401", "503"),
        }
    },
    "/api/info": {
        "get": {
            "summary": "What a page needs before signing in: is this a demo node",
            "answers": {"200": ("about this node", "InfoOut")},
        }
    },
    "/api/processing/status-all/{user_id}": {
        "get": {
            "summary": "The polling fallback: the latest message of each visible job, or with "
            "`since` and `epoch` the stored messages after that seq (compacted)",
            "security": "bearer",
            "query": s.StatusAllQuery,
            "answers": {"200": ("the messages", "StatusAllOut")},
            "errors": ("400", "401", "403", "503"),
        }
    },
    "/api/processing/queue-status/{user_id}": {
        "get": {
            "summary": "The global queue's length and this user's queued jobs",
            "security": "bearer",
            "answers": {"200": ("the queue", "QueueStatusOut")},
            "errors": ("400", "401", "403", "503"),
        }
    },
    "/api/publish": {
        "post": {
            "summary": "Store and send one message for a backend in any language",
            "security": "apiKey",
            "body": "PublishBody",
            "answers": {"202": ("stored with this seq", "PublishOut")},
            "errors": ("400", "401", "404", "409", "413", "415", "503"),
        }
    },
    "/demo/token": {
        "post": {
            "summary": "Demo mode only: a token for a display name (or a user id), signed "
            "with the demo node's own key; rate-limited per address",
            "body": "DemoTokenBody",
            "answers": {"200": ("the token and the user id derived from the name", "DemoTokenOut")},
            "errors": ("400", "404", "413", "415", "429"),
        }
    },
    "/healthz": {
        "get": {"summary": "The process runs", "answers": {"200": ("alive", "HealthOut")}}
    },
    "/readyz": {
        "get": {
            "summary": "Ready for traffic: the database answers and, with Redis, Redis and this "
            "node's subscription are alive; 503 otherwise and while draining",
            "answers": {
                "200": ("ready", "ReadyOut"),
                "503": ("not ready", "ReadyOut"),
            },
        }
    },
}

# Nested schemas first: apispec names them as it meets them.
_SCHEMAS = (
    "QueuedJobOut",
    "JobStateOut",
    "ErrorOut",
    "SubmitJobBody",
    "SubmitJobOut",
    "JobDetailOut",
    "StatusAllOut",
    "QueueStatusOut",
    "PublishBody",
    "PublishOut",
    "DemoTokenBody",
    "DemoTokenOut",
    "ClearedOut",
    "InfoOut",
    "HealthOut",
    "ReadyOut",
    "ProgressUpdateIn",
    "QueueUpdateIn",
    "ProcessingCompleteIn",
    "ProcessingErrorIn",
    "ProgressUpdateOut",
    "QueueUpdateOut",
    "ProcessingCompleteOut",
    "ProcessingErrorOut",
    "SnapshotOut",
    "ReplayCompleteOut",
)

_PATH_PARAMS = {
    "job_id": ("The job's id", s.ID_RE),
    "user_id": ("The user's id (the token's `sub`, unless the token is admin)", s.USER_ID_RE),
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(name: str) -> dict[str, Any]:
    return {"application/json": {"schema": _ref(name)}}


def _operation(path: str, spec: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": spec["summary"], "responses": {}}
    params = []
    for name, (text, pattern) in _PATH_PARAMS.items():
        if "{" + name + "}" in path:
            params.append(
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "description": text,
                    "schema": {"type": "string", "pattern": pattern},
                }
            )
    if "query" in spec:
        params.append({"in": "query", "schema": spec["query"]})
    if params:
        op["parameters"] = params
    if "body" in spec:
        op["requestBody"] = {"required": True, "content": _json(spec["body"])}
    if spec.get("security") == "bearer":
        op["security"] = [{"bearer": []}]
    elif spec.get("security") == "apiKey":
        op["security"] = [{"apiKey": []}]
    for status, (text, schema) in spec["answers"].items():
        op["responses"][status] = {"description": text, "content": _json(schema)}
    for status in spec.get("errors", ()):
        op["responses"][status] = {"description": _ERRORS[status], "content": _json("ErrorOut")}
    return op


def build() -> dict[str, Any]:
    """The whole document, as a dict ready for JSON."""
    spec = APISpec(
        title="realtime",
        version=__version__,
        openapi_version="3.1.0",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Real-time job progress for the video pipeline: the HTTP side. "
            "The Socket.IO side (events, auth, replay rules) is in docs/socketio.md.",
        },
    )
    for name in _SCHEMAS:
        spec.components.schema(name, schema=getattr(s, name))
    spec.components.security_scheme(
        "bearer",
        {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "An HS256 JWT whose `sub` is the user id, signed with "
            "REALTIME_JWT_SECRET; `admin: true` marks an operator.",
        },
    )
    spec.components.security_scheme(
        "apiKey",
        {
            "type": "apiKey",
            "in": "header",
            "name": "X-API-Key",
            "description": "REALTIME_API_KEY; the publish API is off (404) when it is not set.",
        },
    )
    for path, methods in _PATHS.items():
        spec.path(path=path, operations={m: _operation(path, op) for m, op in methods.items()})
    spec.path(
        path="/metrics",
        operations={
            "get": {
                "summary": "Prometheus text format: connections, messages stored, sent, "
                "replayed, publish-to-send latency",
                "responses": {
                    "200": {
                        "description": "metrics",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    )
    return spec.to_dict()
