"""The scan's event-loop runner: rare garbage collections while it runs, CPython's defaults after."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest
import uvloop

from cleartext.scan.engine import GC_THRESHOLD, _collecting, rare_collections, run_loop


async def _inside() -> tuple[tuple[int, int, int], int]:
    return gc.get_threshold(), gc.get_freeze_count()


def test_collections_are_rare_while_the_loop_runs_and_restored_after() -> None:
    before = gc.get_threshold()
    assert before != GC_THRESHOLD
    threshold, frozen = run_loop(_inside())
    assert threshold == GC_THRESHOLD
    assert frozen > 1000  # the modules and tables loaded before the scan are left out of collections
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_settings_are_restored_when_the_loop_raises() -> None:
    before = gc.get_threshold()

    async def fails() -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_loop(fails())
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_cycles_are_collected_on_a_timer_while_the_loop_runs() -> None:
    class Node:
        other: object = None

    async def cycle_freed() -> bool:
        node = Node()
        node.other = node  # a cycle: reference counting alone never frees it
        ref = weakref.ref(node)
        del node
        for _ in range(40):  # at most 2 s
            if ref() is None:
                return True
            await asyncio.sleep(0.05)
        return False

    with rare_collections():  # automatic collections are too rare to free it in time
        assert uvloop.run(_collecting(cycle_freed(), every=0.1))
