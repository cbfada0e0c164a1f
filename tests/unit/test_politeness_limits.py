"""The politeness limiters on their own: per-host slots (order, hand-over, cancellation, forgetting idle
hosts), the rate limiter's no-wait path, and the gate's fast path that takes nothing when it says no."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from cleartext.politeness import Excluded, ExclusionList, Gate, HostLimiter, RateLimiter


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_host_slots_are_handed_over_in_order_and_forgotten_when_idle() -> None:
    async def main() -> list[int]:
        hosts = HostLimiter(2)
        assert hosts.try_acquire("192.0.2.1") and hosts.try_acquire("192.0.2.1")
        assert not hosts.try_acquire("192.0.2.1")  # full
        assert hosts.try_acquire("192.0.2.2")  # another host has its own slots
        order: list[int] = []

        async def waiter(i: int) -> None:
            await hosts.acquire("192.0.2.1")
            order.append(i)

        tasks = [asyncio.create_task(waiter(i)) for i in range(3)]
        await asyncio.sleep(0.01)
        assert order == [] and not hosts.try_acquire("192.0.2.1")  # queued ones come first
        hosts.release("192.0.2.1")
        await asyncio.sleep(0.01)
        assert order == [0]
        hosts.release("192.0.2.1")
        hosts.release("192.0.2.1")
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2]
        for _ in range(2):
            hosts.release("192.0.2.1")
        hosts.release("192.0.2.2")
        assert hosts._open == {} and hosts._waiters == {}  # nothing kept for idle hosts
        return order

    assert run(main()) == [0, 1, 2]


def test_a_cancelled_waiter_loses_its_place_without_leaking_a_slot() -> None:
    async def main() -> None:
        hosts = HostLimiter(1)
        assert hosts.try_acquire("a")
        first = asyncio.create_task(hosts.acquire("a"))
        second = asyncio.create_task(hosts.acquire("a"))
        await asyncio.sleep(0.01)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        hosts.release("a")  # goes to the second waiter, not to the cancelled one
        await asyncio.wait_for(second, 1)
        hosts.release("a")
        assert hosts._open == {} and hosts._waiters == {}

        # Cancelled just after the slot was handed over: the slot moves on, it is not lost.
        assert hosts.try_acquire("a")
        third = asyncio.create_task(hosts.acquire("a"))
        fourth = asyncio.create_task(hosts.acquire("a"))
        await asyncio.sleep(0.01)
        hosts.release("a")  # resolves third's future...
        third.cancel()  # ...but third is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await third
        await asyncio.wait_for(fourth, 1)
        hosts.release("a")
        assert hosts._open == {} and hosts._waiters == {}

    run(main())


def test_rate_limiter_no_wait_path_respects_the_interval() -> None:
    rate = RateLimiter(20)  # one slot per 50 ms
    assert rate.try_acquire()
    assert not rate.try_acquire()
    time.sleep(0.06)
    assert rate.try_acquire()
    assert RateLimiter(None).try_acquire() and RateLimiter(None).try_acquire()

    async def waited() -> float:
        return await rate.acquire()  # the slot after the one just taken

    assert run(waited()) > 0.01


def test_gate_fast_path_takes_nothing_when_it_declines(tmp_path: Path) -> None:
    excluded = tmp_path / "optout.txt"
    excluded.write_text("198.51.100.0/24\n")
    gate = Gate(ExclusionList(str(excluded)), rate=None, per_host=1)
    assert gate.admit_now("192.0.2.1")
    assert not gate.admit_now("192.0.2.1")  # the host's one slot is taken
    gate.after_close("192.0.2.1")
    assert gate.admit_now("192.0.2.1")
    gate.after_close("192.0.2.1")
    with pytest.raises(Excluded):
        gate.admit_now("198.51.100.7")
    assert gate.hosts is not None and gate.hosts._open == {}  # the refused one gave its slot back

    limited = Gate(None, rate=10, per_host=2)
    assert limited.admit_now("192.0.2.9")
    assert not limited.admit_now("192.0.2.9")  # the rate says wait: the host slot is given back
    assert limited.hosts is not None and limited.hosts._open == {"192.0.2.9": 1}


# --- the Internet-scale guard ------------------------------------------------------------------------


def _specs(*texts: str) -> list:  # type: ignore[type-arg]
    from cleartext.targets import parse_targets

    return parse_targets(list(texts), allow_reserved=True)


def test_guard_counts_addresses_once_and_a_slash_8_passes() -> None:
    from cleartext.politeness import LARGE_SCAN_ADDRESSES, internet_scale_rate, scan_addresses

    assert scan_addresses(_specs("10.0.0.0/8", "10.1.0.0/16", "mail.example.org")) == LARGE_SCAN_ADDRESSES + 1
    # A /8 is not Internet-scale; the rate stays what was asked (None: unlimited), nothing is demanded.
    guard = internet_scale_rate
    assert guard(_specs("10.0.0.0/8"), confirmed=False, exclude=None, rate=None) == (None, None)
    assert guard(_specs("192.168.0.0/16"), confirmed=False, exclude=None, rate=7.0) == (7.0, None)


@pytest.mark.parametrize(
    ("targets", "message"),
    [
        (("1.2.3.4/0",), "did you mean 1.2.3.4/32?"),
        (("1.2.3.4/7",), "1.2.3.4 has host bits set for /7: a typo?"),
        (("0.0.0.0/7",), "0.0.0.0/7 covers 33,554,432 addresses, more than a /8"),
        (("10.0.0.0/8", "11.0.0.0/8"), "the targets cover 33,554,432 addresses"),
        (("2001:db8::/96",), "2001:db8::/96 covers 4,294,967,296 addresses"),
    ],
)
def test_guard_refuses_more_than_a_slash_8_without_confirmation(
    targets: tuple[str, ...], message: str
) -> None:
    from cleartext.politeness import internet_scale_rate
    from cleartext.targets import TargetError

    with pytest.raises(TargetError, match="pass --internet-scale") as caught:
        internet_scale_rate(_specs(*targets), confirmed=False, exclude="optout.txt", rate=None)
    assert message in str(caught.value)


def test_confirmed_guard_needs_an_optout_file_and_slows_down_unless_told() -> None:
    from cleartext.politeness import LARGE_SCAN_RATE, internet_scale_rate
    from cleartext.targets import TargetError

    world = _specs("0.0.0.0/0")
    with pytest.raises(TargetError, match="needs an opt-out file"):
        internet_scale_rate(world, confirmed=True, exclude=None, rate=None)
    everything = 1 << 32
    assert internet_scale_rate(world, confirmed=True, exclude="o", rate=None) == (LARGE_SCAN_RATE, everything)
    assert internet_scale_rate(world, confirmed=True, exclude="o", rate=5e4) == (5e4, everything)
