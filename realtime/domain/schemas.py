"""marshmallow schemas for everything that crosses the wire, in and out."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlparse

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

from .errors import Invalid
from .job import MESSAGE_TYPES, STAGES
from .times import parse_iso

ID_RE = r"^[A-Za-z0-9_.:@-]{1,64}$"
# Seqs are 64-bit integers in the store.
MAX_SEQ = 2**63 - 1
USER_ID_RE = r"^[A-Za-z0-9_.:@-]{1,128}$"
USER_ID = validate.Regexp(USER_ID_RE, error="1-128 of A-Z a-z 0-9 _ . : @ -")
JOB_ID = validate.Regexp(ID_RE, error="1-64 of A-Z a-z 0-9 _ . : @ -")
VIDEO_ID_RE = re.compile(r"^[A-Za-z0-9_-]{11}$")
YOUTUBE_HOSTS = {"youtube.com", "www.youtube.com", "m.youtube.com", "music.youtube.com"}
PATH_PREFIXES = ("/shorts/", "/embed/", "/live/")


def youtube_video_id(url: str) -> str | None:
    """The 11-character video id of a YouTube video URL, or None when it is not one."""
    url = url.strip()
    if "://" not in url:
        url = "https://" + url
    try:
        parsed = urlparse(url)
    except ValueError:
        return None
    if parsed.scheme not in ("http", "https"):
        return None
    host = (parsed.hostname or "").lower()
    candidate: str | None = None
    if host in ("youtu.be", "www.youtu.be"):
        candidate = parsed.path.lstrip("/").split("/", 1)[0]
    elif host in YOUTUBE_HOSTS:
        if parsed.path in ("/watch", "/watch/"):
            values = parse_qs(parsed.query).get("v")
            candidate = values[0] if values else None
        else:
            for prefix in PATH_PREFIXES:
                if parsed.path.startswith(prefix):
                    candidate = parsed.path[len(prefix) :].split("/", 1)[0]
    if candidate and VIDEO_ID_RE.match(candidate):
        return candidate
    return None


class IsoDateTime(fields.String):
    """An ISO-8601 timestamp kept as text; validated on load."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kw)
        try:
            parse_iso(text)
        except ValueError:
            raise ValidationError("not an ISO-8601 timestamp") from None
        return text


class _Strict(Schema):
    class Meta:
        unknown = RAISE


# ---- client -> server (Socket.IO) -------------------------------------------------------------


class ConnectAuth(Schema):
    """`auth` of a Socket.IO connect. Extra keys are ignored so clients can evolve."""

    class Meta:
        unknown = "exclude"

    token = fields.String(required=True, validate=validate.Length(min=1, max=4096))
    lastSeq = fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=validate.Range(0, MAX_SEQ)
    )
    epoch = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))


class AckBody(_Strict):
    seq = fields.Integer(required=True, strict=True, validate=validate.Range(0, MAX_SEQ))


class ResumeBody(_Strict):
    lastSeq = fields.Integer(required=True, strict=True, validate=validate.Range(0, MAX_SEQ))
    epoch = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=64))


# ---- publishers -> server ---------------------------------------------------------------------


class _MessageIn(_Strict):
    type = fields.String(required=True, validate=validate.OneOf(MESSAGE_TYPES))
    jobId = fields.String(required=True, validate=JOB_ID)


class ProgressUpdateIn(_MessageIn):
    stage = fields.String(required=True, validate=validate.OneOf(STAGES))
    progress = fields.Integer(required=True, strict=True, validate=validate.Range(0, 100))
    message = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))
    estimatedCompletion = IsoDateTime(allow_none=True)
    videoTitle = fields.String(allow_none=True, validate=validate.Length(max=500))
    videoDurationSeconds = fields.Float(
        allow_none=True, validate=validate.Range(min=0, max=10**6, min_inclusive=False)
    )


class QueueUpdateIn(_MessageIn):
    position = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    queueLength = fields.Integer(required=True, strict=True, validate=validate.Range(min=0))
    estimatedWaitSeconds = fields.Float(load_default=None, allow_none=True)
    estimatedStart = IsoDateTime(load_default=None, allow_none=True)


class ProcessingCompleteIn(_MessageIn):
    videoTitle = fields.String(allow_none=True, validate=validate.Length(max=500))
    durationSeconds = fields.Float(load_default=None, allow_none=True)
    result = fields.Dict(load_default=None, allow_none=True)


class ProcessingErrorIn(_MessageIn):
    error = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    code = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9_.-]{1,64}$"))
    willRetry = fields.Boolean(required=True)
    retryAt = IsoDateTime(load_default=None, allow_none=True)
    # Counted by the server; accepted and ignored so a client can echo a received message.
    attempt = fields.Integer(load_default=None, allow_none=True)
    maxAttempts = fields.Integer(load_default=None, allow_none=True)
    cancelledBy = fields.String(
        allow_none=True,
        validate=USER_ID,
        metadata={"description": "code cancelled only: the user who cancelled the job"},
    )


MESSAGE_SCHEMAS: dict[str, type[Schema]] = {
    "progress_update": ProgressUpdateIn,
    "queue_update": QueueUpdateIn,
    "processing_complete": ProcessingCompleteIn,
    "processing_error": ProcessingErrorIn,
}


# Schema instances hold no per-load state; building one costs more than the load itself.
_MESSAGE_LOADERS: dict[str, Schema] = {k: v() for k, v in MESSAGE_SCHEMAS.items()}


_PROGRESS_KEYS = frozenset(ProgressUpdateIn().fields)
_PROGRESS_REQUIRED = frozenset({"type", "jobId", "stage", "progress"})
_STAGE_SET = frozenset(STAGES)
_JOB_ID = re.compile(ID_RE)


def _text(value: Any, limit: int) -> bool:
    return value is None or (type(value) is str and len(value) <= limit)


def _fast_progress(raw: dict[str, Any]) -> dict[str, Any] | None:
    """ProgressUpdateIn's load for the plain case, a tenth of marshmallow's cost (the hot
    path of every publish): the same result when it answers, None when it is not sure (then
    marshmallow decides, and words the errors)."""
    if not (_PROGRESS_REQUIRED <= raw.keys() <= _PROGRESS_KEYS):
        return None
    job_id, progress = raw["jobId"], raw["progress"]
    if (
        type(job_id) is not str
        or not _JOB_ID.match(job_id)
        or raw["stage"] not in _STAGE_SET
        or type(raw["stage"]) is not str
        or type(progress) is not int
        or not 0 <= progress <= 100
        or not _text(raw.get("message"), 500)
        or not _text(raw.get("videoTitle"), 500)
    ):
        return None
    out = dict(raw)
    out.setdefault("message", None)
    eta = raw.get("estimatedCompletion")
    if eta is not None:
        if type(eta) is not str:
            return None
        try:
            parse_iso(eta)
        except ValueError:
            return None
    if "videoDurationSeconds" in raw:
        seconds = raw["videoDurationSeconds"]
        if seconds is not None:
            if type(seconds) not in (int, float) or not 0 < seconds <= 10**6:
                return None
            out["videoDurationSeconds"] = float(seconds)
    return out


def load_message(raw: Any) -> dict[str, Any]:
    """Validate one publishable message; raises ValidationError with field problems."""
    if not isinstance(raw, dict):
        raise ValidationError({"message": ["must be an object"]})
    kind = raw.get("type")
    if kind == "progress_update":
        fast = _fast_progress(raw)
        if fast is not None:
            return fast
    schema = _MESSAGE_LOADERS.get(kind) if isinstance(kind, str) else None
    if schema is None:
        raise ValidationError({"type": [f"must be one of: {', '.join(MESSAGE_TYPES)}"]})
    loaded: dict[str, Any] = schema.load(raw)
    return loaded


def validated(message: dict[str, Any]) -> dict[str, Any]:
    """Shape-check a message; turn marshmallow's error into our Invalid."""
    try:
        return load_message(message)
    except ValidationError as exc:
        fields = exc.messages if isinstance(exc.messages, dict) else {"message": exc.messages}
        raise Invalid("invalid message: " + flatten(fields), fields) from None


def flatten(fields: dict[str, Any]) -> str:
    """Field problems as one line: `name: problem; problem, other: problem`."""
    parts = []
    for name, problems in fields.items():
        text = "; ".join(str(p) for p in problems) if isinstance(problems, list) else str(problems)
        parts.append(f"{name}: {text}")
    return ", ".join(parts)


class PublishBody(_Strict):
    userId = fields.String(required=True, validate=USER_ID)
    message = fields.Dict(
        required=True,
        metadata={
            "description": "one of the four job messages, without seq and ts",
            "oneOf": [
                {"$ref": f"#/components/schemas/{name}"}
                for name in (
                    "ProgressUpdateIn",
                    "QueueUpdateIn",
                    "ProcessingCompleteIn",
                    "ProcessingErrorIn",
                )
            ],
        },
    )

    @validates_schema
    def _message(self, data: dict[str, Any], **_: Any) -> None:
        try:
            data["message"] = load_message(data["message"])
        except ValidationError as exc:
            raise ValidationError({"message": exc.messages}) from None


class SubmitJobBody(_Strict):
    videoUrl = fields.String(
        required=True,
        validate=validate.Length(min=1, max=2048),
        metadata={
            "description": "a YouTube video URL: youtube.com/watch?v=ID, youtu.be/ID, "
            "youtube.com/shorts/ID, /embed/ID or /live/ID (also the m. and music. hosts); ID "
            "is the 11-character video id",
            "examples": ["https://www.youtube.com/watch?v=dQw4w9WgXcQ"],
        },
    )
    title = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=500))

    @validates("videoUrl")
    def _youtube(self, value: str, **_: Any) -> None:
        if youtube_video_id(value) is None:
            raise ValidationError("not a YouTube video URL")


class DemoTokenBody(_Strict):
    """Either a display name (any text: the user id is derived from it) or a user id."""

    name = fields.String(
        validate=validate.Length(min=1, max=100),
        metadata={"description": "a display name, as people type it"},
    )
    userId = fields.String(validate=USER_ID)

    @validates_schema
    def _one(self, data: dict[str, Any], **_: Any) -> None:
        if not (data.get("name") or "").strip() and not data.get("userId"):
            raise ValidationError("type a name to sign in with", "name")


class StatusAllQuery(Schema):
    class Meta:
        unknown = RAISE

    since = fields.Integer(load_default=None, validate=validate.Range(min=0, max=MAX_SEQ))
    epoch = fields.String(load_default=None, validate=validate.Length(max=64))


# ---- server -> client -------------------------------------------------------------------------
# Loaded by the tests against what the server actually sends, so the shapes cannot drift.


class _Out(_Strict):
    type = fields.String(required=True)
    seq = fields.Integer(required=True)
    jobId = fields.String(required=True)
    ts = IsoDateTime(required=True)


class ProgressUpdateOut(_Out):
    stage = fields.String(required=True, validate=validate.OneOf(STAGES))
    progress = fields.Integer(required=True, validate=validate.Range(0, 100))
    message = fields.String(required=True)
    estimatedCompletion = IsoDateTime(required=True, allow_none=True)
    videoTitle = fields.String(required=True, allow_none=True)
    videoDurationSeconds = fields.Float()  # only when the publisher reported it


class QueueUpdateOut(_Out):
    position = fields.Integer(required=True)
    queueLength = fields.Integer(required=True)
    estimatedWaitSeconds = fields.Float(required=True, allow_none=True)
    estimatedStart = IsoDateTime(required=True, allow_none=True)


class ProcessingCompleteOut(_Out):
    videoTitle = fields.String(required=True, allow_none=True)
    durationSeconds = fields.Float(required=True)
    result = fields.Dict(required=True)


class ProcessingErrorOut(_Out):
    error = fields.String(required=True)
    code = fields.String(required=True)
    attempt = fields.Integer(required=True)
    maxAttempts = fields.Integer(required=True)
    willRetry = fields.Boolean(required=True)
    retryAt = IsoDateTime(required=True, allow_none=True)
    cancelledBy = fields.String(allow_none=True)  # code cancelled only


class JobStateOut(_Strict):
    jobId = fields.String(required=True)
    status = fields.String(
        required=True,
        validate=validate.OneOf(("queued", "processing", "retrying", "completed", "failed")),
    )
    stage = fields.String(required=True, allow_none=True)
    progress = fields.Integer(required=True)
    videoTitle = fields.String(required=True, allow_none=True)
    estimatedCompletion = IsoDateTime(required=True, allow_none=True)
    position = fields.Integer(required=True, allow_none=True)
    error = fields.String(required=True, allow_none=True)
    result = fields.Dict()  # completed jobs only
    videoUrl = fields.String(required=True, allow_none=True)
    submittedAt = IsoDateTime(required=True, allow_none=True)
    finishedAt = IsoDateTime(required=True, allow_none=True)
    cancelledBy = fields.String(allow_none=True)  # cancelled jobs only: who cancelled it


class JobDetailOut(JobStateOut):
    attempt = fields.Integer(required=True)
    maxAttempts = fields.Integer(required=True)


class SnapshotOut(_Strict):
    type = fields.Constant("snapshot", required=True)
    jobs = fields.List(fields.Nested(JobStateOut), required=True)
    lastSeq = fields.Integer(required=True)
    epoch = fields.String(required=True)
    ts = IsoDateTime(required=True)


class ReplayCompleteOut(_Strict):
    type = fields.Constant("replay_complete", required=True)
    fromSeq = fields.Integer(required=True)
    toSeq = fields.Integer(required=True)
    epoch = fields.String(required=True)
    recovered = fields.Boolean(required=True)
    omitted = fields.Integer(required=True)
    ts = IsoDateTime(required=True)


OUT_SCHEMAS: dict[str, type[Schema]] = {
    "progress_update": ProgressUpdateOut,
    "queue_update": QueueUpdateOut,
    "processing_complete": ProcessingCompleteOut,
    "processing_error": ProcessingErrorOut,
    "snapshot": SnapshotOut,
    "replay_complete": ReplayCompleteOut,
}


# ---- HTTP answers (what /openapi.json documents) ----------------------------------------------


class ErrorOut(_Strict):
    error = fields.String(required=True, metadata={"description": "a stable code, e.g. invalid"})
    message = fields.String(required=True, metadata={"description": "for people"})
    problems = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        metadata={"description": "400 invalid only: the problems of each field"},
    )


class SubmitJobOut(_Strict):
    jobId = fields.String(required=True)
    status = fields.Constant("queued", required=True)
    position = fields.Integer(required=True)
    estimatedWaitSeconds = fields.Float(required=True, allow_none=True)


class StatusAllOut(_Strict):
    messages = fields.List(fields.Dict(), required=True)
    lastSeq = fields.Integer(required=True)
    epoch = fields.String(required=True)
    omitted = fields.Integer(required=True)
    recovered = fields.Boolean(required=True)


class QueuedJobOut(_Strict):
    jobId = fields.String(required=True)
    position = fields.Integer(required=True)
    estimatedWaitSeconds = fields.Float(required=True, allow_none=True)
    estimatedStart = IsoDateTime(required=True, allow_none=True)


class QueueStatusOut(_Strict):
    queueLength = fields.Integer(required=True)
    jobs = fields.List(fields.Nested(QueuedJobOut), required=True)


class PublishOut(_Strict):
    seq = fields.Integer(required=True)


class HealthOut(_Strict):
    status = fields.Constant("ok", required=True)


class ReadyOut(_Strict):
    status = fields.String(required=True, validate=validate.OneOf(("ok", "unavailable")))
    checks = fields.Dict(keys=fields.String(), values=fields.Boolean(), required=True)


class ClearedOut(_Strict):
    cleared = fields.Integer(required=True)


class InfoOut(_Strict):
    demo = fields.Boolean(required=True)
    version = fields.String(required=True)


class DemoTokenOut(_Strict):
    token = fields.String(required=True)
    userId = fields.String(required=True)
    name = fields.String(required=True)
