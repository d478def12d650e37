"""The supervised background loop: logs and goes on, stops on cancel."""

from __future__ import annotations

import asyncio
import logging

import pytest

from realtime.loops import supervise


async def test_a_failing_step_is_logged_and_the_loop_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = 0
    fourth = asyncio.Event()

    async def step() -> None:
        nonlocal calls
        calls += 1
        if calls == 4:
            fourth.set()
        if calls <= 2:
            raise RuntimeError(f"boom {calls}")

    caplog.set_level(logging.WARNING)
    task = asyncio.create_task(supervise("job", step, every=0.001, run_first=True))
    await asyncio.wait_for(fourth.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    lines = [r.getMessage() for r in caplog.records]
    assert lines[:3] == ["job: boom 1", "job: boom 2", "job: working again after 2 failure(s)"]
    assert caplog.records[0].exc_info is not None, "the first failure in a row has its traceback"
    assert not caplog.records[1].exc_info


async def test_wake_runs_the_step_before_the_interval() -> None:
    ran = asyncio.Event()
    wake = asyncio.Event()

    async def step() -> None:
        ran.set()

    task = asyncio.create_task(supervise("job", step, every=60.0, wake=wake))
    await asyncio.sleep(0.01)
    assert not ran.is_set()
    wake.set()
    await asyncio.wait_for(ran.wait(), 1.0)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
