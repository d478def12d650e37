"""Wire schemas: YouTube URLs, publishable messages, client events."""

from typing import Any

import pytest
from marshmallow import ValidationError

from realtime.domain.schemas import AckBody, ConnectAuth, load_message, youtube_video_id


@pytest.mark.parametrize(
    ("url", "vid"),
    [
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("http://youtube.com/watch?v=dQw4w9WgXcQ&fail=indexing", "dQw4w9WgXcQ"),
        ("youtu.be/dQw4w9WgXcQ?t=3", "dQw4w9WgXcQ"),
        ("https://m.youtube.com/shorts/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://music.youtube.com/watch?v=dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://www.youtube.com/embed/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://www.youtube.com/live/dQw4w9WgXcQ", "dQw4w9WgXcQ"),
        ("https://www.youtube.com/watch?v=tooshort", None),
        ("https://vimeo.com/watch?v=dQw4w9WgXcQ", None),
        ("https://www.youtube.com/channel/UCxyz", None),
        ("ftp://youtube.com/watch?v=dQw4w9WgXcQ", None),
        ("https://youtube.com.evil.example/watch?v=dQw4w9WgXcQ", None),
    ],
)
def test_youtube_video_id(url: str, vid: str | None) -> None:
    assert youtube_video_id(url) == vid


def test_progress_message_bounds() -> None:
    ok = {"type": "progress_update", "jobId": "j", "stage": "indexing", "progress": 100}
    assert load_message(ok)["progress"] == 100
    for bad in (
        {**ok, "progress": -1},
        {**ok, "progress": 101},
        {**ok, "progress": 5.5},
        {**ok, "stage": "nope"},
        {**ok, "unknown": 1},
        {**ok, "type": "snapshot"},
        {**ok, "jobId": "has space"},
    ):
        with pytest.raises(ValidationError):
            load_message(bad)


def test_error_message_needs_code_and_will_retry() -> None:
    with pytest.raises(ValidationError) as exc:
        load_message({"type": "processing_error", "jobId": "j", "error": "boom"})
    assert {"code", "willRetry"} <= set(exc.value.messages)  # type: ignore[arg-type]


def test_connect_auth_ignores_extra_keys_and_acks_need_integers() -> None:
    assert ConnectAuth().load({"token": "t", "lastSeq": 3, "epoch": "e", "x": 1})["lastSeq"] == 3
    with pytest.raises(ValidationError):
        AckBody().load({"seq": "3"})


def test_the_fast_progress_path_agrees_with_marshmallow_on_every_input() -> None:
    """Publishes take a hand-written path for plain progress updates; whatever it accepts
    must load exactly as the schema loads it, and nothing the schema refuses may pass."""
    import random

    from marshmallow import ValidationError

    from realtime.domain.schemas import ProgressUpdateIn, _fast_progress

    rng = random.Random(7)
    values: dict[str, list[Any]] = {
        "jobId": ["j1", "a" * 64, "a" * 65, "bad id", "j\n", "", 5, None],
        "stage": ["indexing", "transcript_generation", "nope", 3, None],
        "progress": [0, 50, 100, -1, 101, 5.0, True, "5", None],
        "message": ["hi", "x" * 500, "x" * 501, None, 7],
        "estimatedCompletion": ["2026-12-02T06:00:00Z", "soon", None, 1],
        "videoTitle": ["t", "x" * 501, None, b"t"],
        "videoDurationSeconds": [
            1,
            0.5,
            0,
            -1,
            10**6,
            10**6 + 1,
            float("nan"),
            float("inf"),
            True,
            "9",
            None,
        ],
        "extra": ["x"],
    }
    schema = ProgressUpdateIn()
    accepted = 0
    for _ in range(8000):
        raw: dict[str, Any] = {"type": "progress_update"}
        for key, options in values.items():
            if (key in ("jobId", "stage", "progress") and rng.random() < 0.9) or rng.random() < 0.3:
                raw[key] = rng.choice(options)
        fast = _fast_progress(raw)
        try:
            slow = schema.load(raw)
        except ValidationError:
            assert fast is None, raw
            continue
        if fast is not None:
            accepted += 1
            assert fast == slow and all(type(fast[k]) is type(slow[k]) for k in slow), raw
    assert accepted > 50  # the fast path does take the plain cases
