"""Command line: serve, worker, token, migrate, and the publishing verbs publish, submit,
complete, fail, cancel.

Exit codes: 0 success; 2 bad input or configuration (one line on stderr); 1 runtime failure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, NoReturn

from .config import ConfigError, Settings, load_settings, redacted

EXIT_OK, EXIT_RUNTIME, EXIT_USAGE = 0, 1, 2


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, not argparse's usage block: scripts read the last line of stderr.
        self.exit(EXIT_USAGE, f"{self.prog}: {message}\n")


def _port(args: argparse.Namespace) -> int:
    if args.port is not None:
        return int(args.port)
    raw = os.environ.get("PORT")
    if not raw:
        return 8080
    try:
        port = int(raw)
    except ValueError:
        raise CliError(f"PORT: expected an integer, got {raw!r}") from None
    if not 0 < port < 65536:
        raise CliError(f"PORT: out of range: {port}")
    return port


def _serve_settings(args: argparse.Namespace) -> Settings:
    settings = load_settings()
    if args.demo:
        # Demo tokens get a key of this node's own (web/demo.py), never REALTIME_JWT_SECRET.
        settings = replace(settings, demo=True)
    elif not settings.jwt_secret:
        raise CliError(
            "REALTIME_JWT_SECRET: not set; set it, or pass --demo for an ephemeral secret"
        )
    return settings


async def _serve(settings: Settings, host: str, port: int) -> None:
    from aiohttp import web

    from .store.engine import is_unavailable
    from .web.app import create_app, drain
    from .web.gcpacer import GcPacer
    from .web.keys import ADDRESS_CAP, GATEWAY

    app = create_app(settings)
    # keepalive_timeout also bounds a connection that never completes a request (aiohttp
    # starts that clock at connect): idle sockets and slowloris peers are closed.
    runner = web.AppRunner(
        app,
        shutdown_timeout=2.0,
        handle_signals=False,
        keepalive_timeout=settings.handshake_timeout,
    )
    try:
        await runner.setup()  # migrates first: the database must answer
    except Exception as exc:
        if not is_unavailable(exc):
            raise
        with contextlib.suppress(Exception):
            await runner.cleanup()
        detail = (str(getattr(exc, "orig", None) or exc).splitlines() or [""])[0]
        raise CliError(
            f"database unavailable: {detail or type(exc).__name__}", EXIT_RUNTIME
        ) from None
    loop = asyncio.get_running_loop()
    # Our own listener rather than web.TCPSite: each accepted socket passes the per-address
    # cap (web/addresses.py) before aiohttp sees it.
    listener = await loop.create_server(
        app[ADDRESS_CAP].protocol_factory(runner.server),  # type: ignore[arg-type]
        host,
        port,
        backlog=1024,
        reuse_address=True,
    )
    # Process-wide, so run by the process that owns the heap, not by create_app.
    pacer = asyncio.create_task(GcPacer(lambda: len(app[GATEWAY].sessions)).run())
    logging.getLogger("realtime").info(
        "serving on http://%s:%s (%s); database %s",
        host,
        port,
        "demo" if settings.demo else "production",
        redacted(settings.database_url),
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    # Drain: readiness 503 and connects refused at once; clients are moved off while the
    # listener still accepts (so a load balancer sees 503, not refused sockets); then stop.
    try:
        await asyncio.wait_for(drain(app), settings.drain_seconds / 2)
    except Exception as exc:
        logging.getLogger("realtime").warning("drain: %s", exc)
    await asyncio.sleep(0.2)
    listener.close()
    try:
        await asyncio.wait_for(runner.cleanup(), settings.drain_seconds / 2)
    except TimeoutError:
        # Whatever is still open is cut when the process exits; every client reconnects
        # elsewhere with its lastSeq, so nothing is lost by not waiting longer.
        logging.getLogger("realtime").warning("drain: connections still open at exit")
    pacer.cancel()


def use_uvloop() -> None:
    """uvloop when it is installed (the `fast` extra)."""
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _serve_settings(args)
    port = _port(args)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    use_uvloop()
    asyncio.run(_serve(settings, args.host, port))
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from .workers.demo import run_worker

    if args.concurrency < 1:
        raise CliError("--concurrency: must be at least 1")
    if not args.speed > 0:
        raise CliError("--speed: must be greater than 0")
    settings = load_settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(run_worker(settings, concurrency=args.concurrency, speed=args.speed))
    return EXIT_OK


def cmd_token(args: argparse.Namespace) -> int:
    from .web.auth import USER_ID_RE, Auth

    settings = load_settings()
    if not settings.jwt_secret:
        raise CliError("REALTIME_JWT_SECRET: not set; tokens are signed with it")
    if not USER_ID_RE.match(args.user_id):
        raise CliError("USER_ID: must be 1-128 of A-Z a-z 0-9 _ . : @ -")
    if args.ttl < 1:
        raise CliError("--ttl: must be at least 1 second")
    print(Auth(settings.jwt_secret).issue(args.user_id, ttl=args.ttl, admin=args.admin))
    return EXIT_OK


def _stored(args: argparse.Namespace, job_id: str, seq: int) -> None:
    if args.json:
        print(json.dumps({"jobId": job_id, "seq": seq}))
    else:
        print(f"stored seq {seq} for job {job_id}")


def _tracked(args: argparse.Namespace, work: Callable[[Any], Awaitable[int]]) -> int:
    """Run one Tracker call on the configured store and say what it stored."""
    from .tracker import Tracker

    async def run(settings: Settings) -> int:
        async with Tracker.from_settings(settings) as tracker:
            seq = await work(tracker)
        _stored(args, args.job, seq)
        return EXIT_OK

    return _run_db(run)


def _user(value: str, flag: str = "--user") -> str:
    from .web.auth import USER_ID_RE

    if not USER_ID_RE.match(value):
        raise CliError(f"{flag}: must be 1-128 of A-Z a-z 0-9 _ . : @ -")
    return value


def cmd_publish(args: argparse.Namespace) -> int:
    user = _user(args.user)
    return _tracked(
        args,
        lambda t: t.update_progress(
            args.job,
            args.stage,
            args.progress,
            args.message,
            user_id=user,
            video_title=args.title,
            video_duration=args.video_duration,
        ),
    )


def cmd_complete(args: argparse.Namespace) -> int:
    result = None
    if args.result is not None:
        try:
            result = json.loads(args.result)
        except ValueError:
            raise CliError("--result: not valid JSON") from None
        if not isinstance(result, dict):
            raise CliError("--result: must be a JSON object")
    return _tracked(args, lambda t: t.complete(args.job, result))


def cmd_fail(args: argparse.Namespace) -> int:
    if args.retry_in is not None and (args.retry_in < 0 or not args.will_retry):
        raise CliError("--retry-in: needs --will-retry and a number of seconds >= 0")
    return _tracked(
        args,
        lambda t: t.fail(
            args.job, args.error, code=args.code, will_retry=args.will_retry, retry_in=args.retry_in
        ),
    )


def cmd_cancel(args: argparse.Namespace) -> int:
    return _tracked(args, lambda t: t.cancel(args.job))


def cmd_submit(args: argparse.Namespace) -> int:
    from .tracker import Tracker

    user = _user(args.user)

    async def run(settings: Settings) -> int:
        async with Tracker.from_settings(settings) as tracker:
            job_id = await tracker.submit(user, args.url, args.title)
        print(json.dumps({"jobId": job_id}) if args.json else job_id)
        return EXIT_OK

    return _run_db(run)


async def _migrate(settings: Settings) -> int:
    from .store.engine import create_engine
    from .store.migrate import describe, migrate

    engine = create_engine(settings.database_url)
    try:
        before, after = await migrate(engine)
    finally:
        await engine.dispose()
    print(describe(before, after))
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    return _run_db(_migrate)


def _run_db(fn: Callable[[Settings], Awaitable[int]]) -> int:
    """Run a database command, mapping domain errors to 2 and infrastructure errors to 1."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    from .domain.errors import DomainError

    settings = load_settings()
    try:
        return asyncio.run(asyncio.wait_for(fn(settings), max(10.0, 2 * settings.db_timeout)))
    except DomainError as exc:
        raise CliError(exc.message) from None
    except (OperationalError, InterfaceError, DBAPIError, OSError, TimeoutError) as exc:
        detail = (
            str(getattr(exc, "orig", None) or exc).splitlines()[0]
            if str(exc)
            else type(exc).__name__
        )
        raise CliError(f"database unavailable: {detail}", EXIT_RUNTIME) from None


def build_parser() -> argparse.ArgumentParser:
    from .domain.job import STAGES

    p = _Parser(prog="python -m realtime", description="Real-time job progress service.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("serve", help="run the web process (HTTP API + Socket.IO)")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=None, help="default: $PORT, else 8080")
    s.add_argument("--demo", action="store_true", help="ephemeral secret, /demo/token enabled")
    s.set_defaults(fn=cmd_serve)

    w = sub.add_parser("worker", help="run the demo processing pipeline")
    w.add_argument("--concurrency", type=int, default=2)
    w.add_argument("--speed", type=float, default=1.0)
    w.set_defaults(fn=cmd_worker)

    t = sub.add_parser("token", help="print a signed access token")
    t.add_argument("user_id", metavar="USER_ID")
    t.add_argument("--ttl", type=int, default=3600)
    t.add_argument("--admin", action="store_true")
    t.set_defaults(fn=cmd_token)

    as_json: dict[str, Any] = {"action": "store_true", "help": "print what was stored as JSON"}
    pub = sub.add_parser("publish", help="store and fan out one progress_update")
    pub.add_argument("--user", required=True)
    pub.add_argument("--job", required=True)
    pub.add_argument("--stage", required=True, choices=STAGES, metavar="STAGE")
    pub.add_argument("--progress", required=True, type=int)
    pub.add_argument("--message", default=None)
    pub.add_argument("--title", default=None, help="the video's title (videoTitle)")
    pub.add_argument(
        "--video-duration", type=float, default=None, help="the video's length in seconds"
    )
    pub.add_argument("--json", **as_json)
    pub.set_defaults(fn=cmd_publish)

    sb = sub.add_parser("submit", help="queue a job for a user; prints its job id")
    sb.add_argument("--user", required=True)
    sb.add_argument("--url", required=True, help="a YouTube video URL")
    sb.add_argument("--title", default=None)
    sb.add_argument("--json", **as_json)
    sb.set_defaults(fn=cmd_submit)

    c = sub.add_parser("complete", help="store a job's processing_complete")
    c.add_argument("--job", required=True)
    c.add_argument("--result", default=None, help="the result as a JSON object")
    c.add_argument("--json", **as_json)
    c.set_defaults(fn=cmd_complete)

    f = sub.add_parser("fail", help="store a job's processing_error")
    f.add_argument("--job", required=True)
    f.add_argument("--error", required=True)
    f.add_argument("--code", required=True)
    f.add_argument("--will-retry", action="store_true")
    f.add_argument("--retry-in", type=float, default=None, metavar="SECONDS")
    f.add_argument("--json", **as_json)
    f.set_defaults(fn=cmd_fail)

    x = sub.add_parser("cancel", help="end a job with processing_error cancelled")
    x.add_argument("--job", required=True)
    x.add_argument("--json", **as_json)
    x.set_defaults(fn=cmd_cancel)

    m = sub.add_parser("migrate", help="create or upgrade the database schema")
    m.set_defaults(fn=cmd_migrate)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args: Any = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except (ConfigError, CliError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code if isinstance(exc, CliError) else EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
