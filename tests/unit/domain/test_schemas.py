"""Wire schemas: YouTube URLs, publishable messages, client events."""

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
