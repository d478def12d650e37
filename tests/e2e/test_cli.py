"""The command line: exit codes, one-line errors, and cross-process delivery to live clients."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from realtime.web.auth import Auth
from tests.support import SECRET


async def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("REALTIME_")}
    full_env.update({"REALTIME_JWT_SECRET": SECRET, **(env or {})})
    p = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "realtime",
        *args,
        env=full_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(p.communicate(), 60)
    assert p.returncode is not None
    return p.returncode, out.decode(), err.decode()


async def test_token_prints_a_verifiable_token() -> None:
    code, out, _ = await run("token", "alice", "--ttl", "60", "--admin")
    who = Auth(SECRET).verify(out.strip())
    assert code == 0 and who.user_id == "alice" and who.admin


async def test_token_without_secret_or_bad_user_exits_2() -> None:
    code, _, err = await run("token", "alice", env={"REALTIME_JWT_SECRET": ""})
    assert code == 2 and "REALTIME_JWT_SECRET" in err and len(err.strip().splitlines()) == 1
    code, _, err = await run("token", "bad user")
    assert code == 2 and len(err.strip().splitlines()) == 1


async def test_bad_configuration_names_the_variable() -> None:
    for var, value in [
        ("REALTIME_HISTORY_TTL", "soon"),
        ("REALTIME_DATABASE_URL", "mysql://x"),
        ("REALTIME_REDIS_URL", "http://x"),
        ("REALTIME_MAX_CONNECTIONS_PER_USER", "0"),
        ("REALTIME_CORS_ORIGINS", "not an origin"),
    ]:
        code, _, err = await run("migrate", env={var: value})
        assert code == 2 and var in err and len(err.strip().splitlines()) == 1, (var, err)


async def test_serve_refuses_to_start_without_secret(tmp_path: Any) -> None:
    code, _, err = await run("serve", "--port", "1", env={"REALTIME_JWT_SECRET": ""})
    assert code == 2 and "REALTIME_JWT_SECRET" in err


async def test_publish_exit_codes(tmp_path: Any) -> None:
    env = {"REALTIME_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db"}
    ok = await run(
        "publish",
        "--user",
        "u1",
        "--job",
        "j1",
        "--stage",
        "url_validation",
        "--progress",
        "10",
        env=env,
    )
    assert ok[0] == 0 and ok[1].strip() == "stored seq 1 for job j1", ok
    for bad in (
        ["--stage", "nope", "--progress", "10"],
        ["--stage", "url_validation", "--progress", "101"],
        ["--stage", "url_validation", "--progress", "5"],  # lower than 10 in the same attempt
        ["--stage", "url_validation", "--progress", "ten"],
    ):
        code, _, err = await run("publish", "--user", "u1", "--job", "j1", *bad, env=env)
        assert code == 2 and len(err.strip().splitlines()) == 1, (bad, err)
    code, _, err = await run(
        "publish", "--user", "u2", "--job", "j1", "--stage", "indexing", "--progress", "50", env=env
    )
    assert code == 2 and "another user" in err


async def test_publish_with_database_down_exits_1() -> None:
    env = {"REALTIME_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:1/none"}
    code, _, err = await run(
        "publish", "--user", "u", "--job", "j", "--stage", "indexing", "--progress", "1", env=env
    )
    assert code == 1 and "database unavailable" in err and len(err.strip().splitlines()) == 1


async def test_migrate_says_what_it_did_and_is_idempotent(tmp_path: Any) -> None:
    env = {"REALTIME_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/m.db"}
    code, out, _ = await run("migrate", env=env)
    assert code == 0 and out.strip().startswith("database schema created (revision ")
    code, out, _ = await run("migrate", env=env)
    assert code == 0 and out.strip().startswith("database schema is up to date (revision ")


async def test_submit_complete_fail_and_cancel_verbs(tmp_path: Any) -> None:
    env = {"REALTIME_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db"}
    url = "https://youtu.be/dQw4w9WgXcQ"
    code, out, err = await run("submit", "--user", "u1", "--url", url, "--title", "T", env=env)
    assert code == 0, err
    first = out.strip()
    assert len(first) == 32
    code, out, err = await run("submit", "--user", "u1", "--url", url, "--json", env=env)
    second = json.loads(out)["jobId"]
    code, out, err = await run(
        "fail",
        "--job",
        first,
        "--error",
        "boom",
        "--code",
        "x_failed",
        "--will-retry",
        "--retry-in",
        "30",
        "--json",
        env=env,
    )
    assert code == 0 and json.loads(out) == {"jobId": first, "seq": 3}, err
    code, out, err = await run("complete", "--job", first, "--result", '{"url": "/r"}', env=env)
    assert code == 0 and out.strip() == f"stored seq 4 for job {first}", err
    code, out, err = await run("cancel", "--job", second, env=env)
    assert code == 0 and out.strip() == f"stored seq 5 for job {second}", err
    # Bad input: one line, exit 2; a finished job refuses with 2 as well.
    for argv in (
        ["submit", "--user", "u1", "--url", "https://example.com/x"],
        ["complete", "--job", first, "--result", "[1]"],
        ["complete", "--job", first],
        ["fail", "--job", "nope", "--error", "e", "--code", "c"],
        ["fail", "--job", first, "--error", "e", "--code", "c", "--retry-in", "5"],
        ["cancel", "--job", second],
    ):
        code, _, err = await run(*argv, env=env)
        assert code == 2 and len(err.strip().splitlines()) == 1, (argv, err)


async def test_cli_publish_reaches_a_live_client_without_redis(server: Any, connect: Any) -> None:
    client = await connect(server, "cli-user")
    from realtime.web.keys import SETTINGS

    env = {"REALTIME_DATABASE_URL": server.app[SETTINGS].database_url}
    for p in (10, 20, 30):
        code, _, err = await run(
            "publish",
            "--user",
            "cli-user",
            "--job",
            "cj",
            "--stage",
            "transcript_generation",
            "--progress",
            str(p),
            env=env,
        )
        assert code == 0, err
    await client.wait_for(lambda: len(client.seqs()) == 3, 5)
    assert client.seqs() == [1, 2, 3]
    assert [m["progress"] for m in client.of("progress_update")] == [10, 20, 30]
