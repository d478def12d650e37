"""JSON for the hot paths: orjson when installed (the fast extra), the standard library
otherwise. Both write compact JSON with non-ASCII characters as UTF-8, so stored payloads and
wire frames read the same either way."""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - exercised by installs without the fast extra
    orjson = None  # type: ignore[assignment]


def _std_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


if orjson is not None:

    def dumps_bytes(obj: Any) -> bytes:
        try:
            return orjson.dumps(obj)
        except TypeError:  # e.g. an integer beyond 64 bits in a worker's result
            return _std_bytes(obj)

    loads = orjson.loads
else:  # pragma: no cover
    dumps_bytes = _std_bytes
    loads = json.loads


def dumps(obj: Any) -> str:
    return dumps_bytes(obj).decode()


class SocketIOJson:
    """The `json` module interface python-socketio's managers expect (dumps returns str)."""

    @staticmethod
    def dumps(obj: Any, **_kwargs: Any) -> str:
        return dumps(obj)

    @staticmethod
    def loads(s: str | bytes, **_kwargs: Any) -> Any:
        return loads(s)
