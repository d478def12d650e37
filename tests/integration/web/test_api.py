"""The HTTP API: status codes, JSON bodies, ownership rules, the polling fallback."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import ClientSession

from realtime.domain.schemas import JobDetailOut
from tests.support import API_KEY

VIDEO = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


async def submit(http: ClientSession, server: Any, user: str, url: str = VIDEO) -> dict[str, Any]:
    async with http.post(
        f"{server.url}/api/jobs", json={"videoUrl": url}, headers=server.headers(user)
    ) as r:
        assert r.status == 202, await r.text()
        return dict(await r.json())


async def test_submit_answers_202_with_position(server: Any, http: ClientSession) -> None:
    first = await submit(http, server, "ann")
    second = await submit(http, server, "ben")
    assert first["status"] == "queued" and first["position"] == 1
    assert second["position"] == 2
    assert first["estimatedWaitSeconds"] is None  # no live worker


@pytest.mark.parametrize(
    "body",
    [
        {"videoUrl": "https://example.com/watch?v=dQw4w9WgXcQ"},
        {"videoUrl": "https://youtube.com/watch?v=short"},
        {"videoUrl": ""},
        {},
        {"videoUrl": VIDEO, "extra": 1},
        [1, 2],
    ],
)
async def test_bad_job_bodies_get_400_with_fields(
    sqlite_server: Any, http: ClientSession, body: Any
) -> None:
    async with http.post(
        f"{sqlite_server.url}/api/jobs", json=body, headers=sqlite_server.headers("u")
    ) as r:
        assert r.status == 400
        data = await r.json()
        assert data["error"] == "invalid" and data["message"] and "fields" in data


async def test_non_json_body_is_a_clear_400(sqlite_server: Any, http: ClientSession) -> None:
    async with http.post(
        f"{sqlite_server.url}/api/jobs", data=b"{nope", headers=sqlite_server.headers("u")
    ) as r:
        assert r.status == 400 and (await r.json())["error"] == "invalid"


@pytest.mark.parametrize(
    "url",
    [
        "https://youtu.be/dQw4w9WgXcQ",
        "youtube.com/watch?v=dQw4w9WgXcQ&t=10",
        "https://m.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://music.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://www.youtube.com/shorts/dQw4w9WgXcQ",
        "https://www.youtube.com/embed/dQw4w9WgXcQ",
        "https://www.youtube.com/live/dQw4w9WgXcQ",
    ],
)
async def test_every_youtube_url_form_is_accepted(
    sqlite_server: Any, http: ClientSession, url: str
) -> None:
    await submit(http, sqlite_server, "u", url)


async def test_missing_or_bad_token_is_401_json(sqlite_server: Any, http: ClientSession) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}):
        async with http.get(
            f"{sqlite_server.url}/api/processing/status-all/u", headers=headers
        ) as r:
            assert r.status == 401
            assert (await r.json())["error"] == "unauthorized"


async def test_other_users_path_is_403_unless_admin(
    sqlite_server: Any, http: ClientSession
) -> None:
    s = sqlite_server
    for path in ("status-all", "queue-status"):
        async with http.get(f"{s.url}/api/processing/{path}/bob", headers=s.headers("alice")) as r:
            assert r.status == 403 and (await r.json())["error"] == "forbidden"
        async with http.get(
            f"{s.url}/api/processing/{path}/bob", headers=s.headers("root", admin=True)
        ) as r:
            assert r.status == 200


async def test_job_of_another_user_is_404(server: Any, http: ClientSession) -> None:
    job = await submit(http, server, "owner")
    url = f"{server.url}/api/jobs/{job['jobId']}"
    async with http.get(url, headers=server.headers("owner")) as r:
        assert r.status == 200
        body = await r.json()
        JobDetailOut().load(body)
        assert body["status"] == "queued" and body["position"] == 1 and body["maxAttempts"] == 3
    async with http.get(url, headers=server.headers("intruder")) as r:
        assert r.status == 404 and (await r.json())["error"] == "not_found"
    async with http.post(url + "/cancel", headers=server.headers("intruder")) as r:
        assert r.status == 404
    async with http.get(f"{server.url}/api/jobs/nope", headers=server.headers("owner")) as r:
        assert r.status == 404


async def test_cancel_ends_job_and_second_cancel_is_409(
    server: Any, http: ClientSession, connect: Any
) -> None:
    client = await connect(server, "canceller")
    job = await submit(http, server, "canceller")
    url = f"{server.url}/api/jobs/{job['jobId']}/cancel"
    async with http.post(url, headers=server.headers("canceller")) as r:
        assert r.status == 200
        body = await r.json()
        assert body["status"] == "failed" and body["error"] == "cancelled"
    await client.wait_for(lambda: bool(client.of("processing_error")))
    err = client.of("processing_error")[0]
    assert err["code"] == "cancelled" and err["willRetry"] is False and err["retryAt"] is None
    async with http.post(url, headers=server.headers("canceller")) as r:
        assert r.status == 409 and (await r.json())["error"] == "conflict"


async def test_status_all_without_since_lists_latest_per_job(
    server: Any, http: ClientSession
) -> None:
    a = await submit(http, server, "sam")
    b = await submit(http, server, "sam")
    await server.ledger.publish(
        "sam",
        {"type": "progress_update", "jobId": a["jobId"], "stage": "url_validation", "progress": 3},
    )
    async with http.get(
        f"{server.url}/api/processing/status-all/sam", headers=server.headers("sam")
    ) as r:
        body = await r.json()
    assert body["lastSeq"] == 3 and body["epoch"] and body["recovered"] is True
    latest = {m["jobId"]: m["type"] for m in body["messages"]}
    assert latest == {a["jobId"]: "progress_update", b["jobId"]: "queue_update"}


async def test_status_all_since_returns_compacted_tail(server: Any, http: ClientSession) -> None:
    job = await submit(http, server, "tia")
    for p in (1, 2, 3):
        await server.ledger.publish(
            "tia",
            {
                "type": "progress_update",
                "jobId": job["jobId"],
                "stage": "url_validation",
                "progress": p,
            },
        )
    base = f"{server.url}/api/processing/status-all/tia"
    async with http.get(base, headers=server.headers("tia")) as r:
        epoch = (await r.json())["epoch"]
    async with http.get(f"{base}?since=1&epoch={epoch}", headers=server.headers("tia")) as r:
        body = await r.json()
    assert (
        [m["seq"] for m in body["messages"]] == [4] and body["omitted"] == 2 and body["recovered"]
    )
    async with http.get(f"{base}?since=1&epoch=other", headers=server.headers("tia")) as r:
        body = await r.json()
    assert body["recovered"] is False and [m["seq"] for m in body["messages"]] == [4]
    async with http.get(f"{base}?since=abc", headers=server.headers("tia")) as r:
        assert r.status == 400


async def test_queue_status_is_global_but_lists_own_jobs(server: Any, http: ClientSession) -> None:
    await submit(http, server, "x1")
    mine = await submit(http, server, "x2")
    async with http.get(
        f"{server.url}/api/processing/queue-status/x2", headers=server.headers("x2")
    ) as r:
        body = await r.json()
    assert body["queueLength"] == 2
    assert body["jobs"] == [
        {
            "jobId": mine["jobId"],
            "position": 2,
            "estimatedWaitSeconds": None,
            "estimatedStart": None,
        }
    ]


async def test_publish_api_needs_key_and_validates(
    server: Any, http: ClientSession, connect: Any
) -> None:
    client = await connect(server, "pub")
    url = f"{server.url}/api/publish"
    msg = {
        "type": "progress_update",
        "jobId": "ext-1",
        "stage": "metadata_extraction",
        "progress": 10,
    }
    async with http.post(url, json={"userId": "pub", "message": msg}) as r:
        assert r.status == 401
    headers = {"X-API-Key": API_KEY}
    async with http.post(url, json={"userId": "pub", "message": msg}, headers=headers) as r:
        assert r.status == 202 and (await r.json()) == {"seq": 1}
    await client.wait_for(lambda: client.seqs() == [1])
    bad = [
        {**msg, "stage": "dancing"},
        {**msg, "progress": 101},
        {**msg, "progress": 5},  # lower than 10 within the attempt
        {**msg, "type": "snapshot"},
        {"type": "processing_complete", "jobId": "missing-job"},
    ]
    for m in bad:
        async with http.post(url, json={"userId": "pub", "message": m}, headers=headers) as r:
            assert r.status in (400, 404, 409), m
            assert (await r.json())["error"] in ("invalid", "not_found", "conflict")
    async with http.post(
        url, json={"userId": "someone-else", "message": {**msg, "progress": 50}}, headers=headers
    ) as r:
        assert r.status == 409
    assert await server.ledger.count_messages("pub") == 1
    assert client.seqs() == [1]


async def test_health_ready_metrics_and_index_need_no_token(
    sqlite_server: Any, http: ClientSession
) -> None:
    s = sqlite_server
    async with http.get(f"{s.url}/healthz") as r:
        assert r.status == 200
    async with http.get(f"{s.url}/readyz") as r:
        assert r.status == 200 and (await r.json())["checks"]["database"] is True
    async with http.get(f"{s.url}/metrics") as r:
        text = await r.text()
        assert (
            r.status == 200
            and "realtime_connections" in text
            and "realtime_publish_to_send_seconds" in text
        )
    async with http.get(f"{s.url}/") as r:
        assert r.status == 200 and "text/html" in r.headers["Content-Type"]


async def test_demo_token_only_in_demo_mode(
    start_server: Any, sqlite_url: str, http: ClientSession
) -> None:
    from realtime.web.auth import TokenError
    from tests.support import make_settings

    demo = await start_server(make_settings(sqlite_url, demo=True))
    async with http.post(f"{demo.url}/demo/token", json={"userId": "visitor"}) as r:
        assert r.status == 200
        token = (await r.json())["token"]
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{demo.url}/api/processing/queue-status/visitor", headers=headers) as r:
        assert r.status == 200, "the demo node accepts its own tokens"
    # ...signed with the node's own key, never the shared secret: nobody else takes them.
    with pytest.raises(TokenError):
        demo.auth.verify(token)
    prod = await start_server(make_settings(sqlite_url, demo=False))
    async with http.get(f"{prod.url}/api/processing/queue-status/visitor", headers=headers) as r:
        assert r.status == 401
    async with http.post(f"{demo.url}/demo/token", json={"userId": "bad id!"}) as r:
        assert r.status == 400
    async with http.post(f"{prod.url}/demo/token", json={"userId": "visitor"}) as r:
        assert r.status == 404 and (await r.json())["error"] == "not_found"


async def test_demo_sign_in_takes_names_as_people_type_them(
    start_server: Any, sqlite_url: str, http: ClientSession
) -> None:
    from tests.support import make_settings

    demo = await start_server(make_settings(sqlite_url, demo=True))
    ids = {}
    for name in ("Alice Smith", "Zoë Müller", "李小龍", "x" * 100, "  Alice   Smith "):
        async with http.post(f"{demo.url}/demo/token", json={"name": name}) as r:
            body = await r.json()
            assert r.status == 200, body
            assert body["name"] == " ".join(name.split())
            ids[name] = body["userId"]
    assert ids["Alice Smith"].startswith("alice-smith-")
    assert ids["Zoë Müller"].startswith("zoe-muller-")
    assert ids["  Alice   Smith "] == ids["Alice Smith"], "the same name is the same user"
    assert len(set(ids.values())) == 4
    for bad in ({"name": "   "}, {"name": "y" * 101}, {}):
        async with http.post(f"{demo.url}/demo/token", json=bad) as r:
            body = await r.json()
            assert r.status == 400 and "name" in body["fields"], body


async def test_demo_token_is_rate_limited(
    start_server: Any, sqlite_url: str, http: ClientSession
) -> None:
    from tests.support import make_settings

    demo = await start_server(make_settings(sqlite_url, demo=True))
    codes = []
    for i in range(40):
        async with http.post(f"{demo.url}/demo/token", json={"name": f"n{i}"}) as r:
            codes.append(r.status)
    assert codes[:10] == [200] * 10 and codes.count(429) >= 25, codes


async def test_job_states_say_where_when_and_who(server: Any, http: ClientSession) -> None:
    url = "https://youtu.be/dQw4w9WgXcQ"
    async with http.post(
        f"{server.url}/api/jobs", json={"videoUrl": url}, headers=server.headers("kim")
    ) as r:
        job_id = (await r.json())["jobId"]
    async with http.post(
        f"{server.url}/api/jobs/{job_id}/cancel", headers=server.headers("kim")
    ) as r:
        state = await r.json()
    assert state["videoUrl"] == url and state["submittedAt"].endswith("Z")
    assert state["finishedAt"] and state["cancelledBy"] == "kim" and state["error"] == "cancelled"
    from realtime.domain.schemas import JobDetailOut

    JobDetailOut().load(state)


async def test_clear_finished_hides_them_on_every_tab(
    server: Any, http: ClientSession, connect: Any
) -> None:
    from realtime.tracker import Tracker
    from realtime.web.keys import BROADCAST

    tracker = Tracker(server.ledger, server.app[BROADCAST])
    done = await tracker.submit("lee", "https://youtu.be/dQw4w9WgXcQ")
    await tracker.update_progress(done, "url_validation", 1)
    await tracker.complete(done, {"url": "/r"})
    running = await tracker.submit("lee", "https://youtu.be/dQw4w9WgXcQ")
    tabs = [await connect(server, "lee") for _ in range(2)]
    assert len(tabs[0].of("snapshot")[-1]["jobs"]) == 2
    async with http.post(
        f"{server.url}/api/processing/clear-finished", headers=server.headers("lee")
    ) as r:
        assert r.status == 200 and (await r.json()) == {"cleared": 1}
    for tab in tabs:
        await tab.wait_for(lambda t=tab: len(t.of("snapshot")) == 2)
        assert [j["jobId"] for j in tab.of("snapshot")[-1]["jobs"]] == [running]
        assert tab.of("replay_complete")[-1]["recovered"] is True
    late = await connect(server, "lee")
    assert [j["jobId"] for j in late.of("snapshot")[-1]["jobs"]] == [running], "remembered"


async def test_a_body_over_the_limit_is_413_json(sqlite_server: Any, http: ClientSession) -> None:
    big = {"videoUrl": "https://youtu.be/dQw4w9WgXcQ", "title": "x" * 70_000}
    async with http.post(
        f"{sqlite_server.url}/api/jobs", json=big, headers=sqlite_server.headers("big")
    ) as r:
        assert r.status == 413 and (await r.json())["error"] == "too_large"


async def test_a_locked_database_is_503_within_the_timeout_and_readyz_answers(
    start_server: Any, sqlite_url: str, http: ClientSession
) -> None:
    import sqlite3
    import time

    from tests.support import API_KEY, make_settings

    server = await start_server(make_settings(sqlite_url, db_timeout=1.0))
    path = sqlite_url.split(":///", 1)[1]
    holder = sqlite3.connect(path, timeout=1, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds SQLite's write lock
    message = {"type": "progress_update", "jobId": "j", "stage": "indexing", "progress": 1}
    body = {"userId": "locked", "message": message}
    try:
        t0 = time.monotonic()
        async with http.post(
            f"{server.url}/api/publish", json=body, headers={"X-API-Key": API_KEY}
        ) as r:
            answer = await r.json()
        assert r.status == 503 and answer["error"] == "unavailable", answer
        assert time.monotonic() - t0 < 3.0
        t0 = time.monotonic()
        async with http.get(f"{server.url}/readyz") as r:
            await r.read()
        assert time.monotonic() - t0 < 2.0
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    async with http.post(
        f"{server.url}/api/publish", json=body, headers={"X-API-Key": API_KEY}
    ) as r:
        assert r.status == 202, await r.text()
