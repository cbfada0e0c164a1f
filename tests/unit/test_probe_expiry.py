"""Expiry (cleartext.probe.transport): asyncio.timeout's behaviour for one step, with one timer."""

from __future__ import annotations

import asyncio

import pytest

from cleartext.probe.transport import Expiry


async def _never() -> None:
    await asyncio.get_running_loop().create_future()


def test_it_expires_as_a_timeout_error() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError), Expiry(loop, 0.01):
            await _never()
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # its own cancel request is withdrawn
        await asyncio.sleep(0)  # and the task goes on

    asyncio.run(main())


def test_a_step_that_finishes_in_time_is_left_alone() -> None:
    async def main() -> str:
        loop = asyncio.get_running_loop()
        with Expiry(loop, 1.0):
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.02)  # the timer was cancelled: nothing fires later
        return "done"

    assert asyncio.run(main()) == "done"


def test_an_outer_deadline_still_wins() -> None:
    """The endpoint deadline (asyncio.timeout) around a step with its own Expiry: the outer one fires
    first and must end the whole block as its own timeout, not be swallowed by the inner step."""

    async def main() -> str:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(0.01):
                with Expiry(loop, 5.0):
                    await _never()
        except TimeoutError:
            return "outer"
        return "none"

    assert asyncio.run(main()) == "outer"


def test_an_outside_cancel_is_not_turned_into_a_timeout() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        with Expiry(loop, 5.0):
            await _never()

    async def runner() -> None:
        task = asyncio.ensure_future(main())
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(runner())
