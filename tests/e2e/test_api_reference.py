"""/openapi.json is a valid OpenAPI 3.1 document of every HTTP path, and a live server answers
as it says: schemathesis fuzzes every operation with real tokens (no 5xx, every status code and
body as documented). The docs/ pages are what the code generates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from realtime.web import reference
from realtime.web.auth import Auth
from tests.support import API_KEY, SECRET, free_port, stop_process

BIN = Path(sys.executable).parent


@pytest.fixture
def live(tmp_path: Path) -> Any:
    """`python -m realtime serve` (production mode, SQLite, publish API on) on a free port."""
    port = free_port()
    env = {
        **os.environ,
        "REALTIME_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/api.db",
        "REALTIME_JWT_SECRET": SECRET,
        "REALTIME_API_KEY": API_KEY,
    }
    env.pop("REALTIME_REDIS_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "serve.log", "wb"),  # noqa: SIM115 - lives as long as the server
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
    yield url
    stop_process(proc)


def fetch(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


def test_the_document_is_valid_and_covers_every_route(live: str) -> None:
    doc = fetch(f"{live}/openapi.json")
    validate(doc)
    assert doc["openapi"].startswith("3.1")
    documented = {(p, m.upper()) for p, ops in doc["paths"].items() for m in ops}
    from realtime.config import Settings
    from realtime.web.app import create_app

    app = create_app(Settings(jwt_secret=SECRET, database_url="sqlite+aiosqlite:///:memory:"))
    served = {
        (r.resource.canonical, r.method)
        for r in app.router.routes()
        if r.method in ("GET", "POST") and r.resource is not None
    }
    undocumented = {
        (p, m)
        for p, m in served
        if (p, m) not in documented and not p.startswith(("/socket.io", "/assets"))
    }
    pages = {("/", "GET"), ("/docs", "GET"), ("/openapi.json", "GET"), ("/mindmap/{job_id}", "GET")}
    assert undocumented <= pages, undocumented
    schemes = doc["components"]["securitySchemes"]
    assert schemes["bearer"]["scheme"] == "bearer" and schemes["apiKey"]["name"] == "X-API-Key"


@pytest.mark.timeout(300)
def test_schemathesis_finds_no_server_error_and_no_undocumented_answer(
    live: str, tmp_path: Path
) -> None:
    token = Auth(SECRET).issue("fuzz-admin", ttl=3600, admin=True)
    result = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "run",
            f"{live}/openapi.json",
            "--header",
            f"Authorization: Bearer {token}",
            "--header",
            f"X-API-Key: {API_KEY}",
            "--checks",
            "all",
            # Schema-valid is not always acceptable here: a videoUrl must also be a YouTube
            # video URL, a message's fields depend on its type. Every answer is still checked.
            "--exclude-checks",
            "positive_data_acceptance",
            "--max-examples",
            "25",
            "--max-time",
            "90",
            "--workers",
            "1",
            "--seed",
            "1",
            "--suppress-health-check",
            "all",
            "--warnings",
            "off",
        ],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_the_docs_pages_are_what_the_code_generates() -> None:
    for name, page in reference.PAGES.items():
        path = reference.DOCS / name
        assert path.read_text() == page(), f"docs/{name} is stale: run make docs"
    config = (reference.DOCS / "configuration.md").read_text()
    from realtime.config import VARIABLES

    for name, default, _ in VARIABLES:
        assert f"`{name}` | `{default}`" in config
