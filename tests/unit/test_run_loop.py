"""The scan's event-loop runner: rare garbage collections while it runs, CPython's defaults after."""

from __future__ import annotations

import gc

import pytest

from cleartext.scan import GC_THRESHOLD, run_loop


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
