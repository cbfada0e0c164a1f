"""Shared fixtures: the lab of real mail servers on loopback, and a way to run the real CLI."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_labctl() -> ModuleType:
    spec = importlib.util.spec_from_file_location("labctl", ROOT / "lab" / "labctl.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("labctl", module)
    spec.loader.exec_module(module)
    return module


# The whole test session runs in the lab's network namespace (lab/netns.py): the lab's servers are on its
# loopback, and so is every server a test starts (PostgreSQL, Redis, SMTP receivers, DNS) -- a namespace
# with no interface but its loopback, so no test can send a packet anywhere else, and a mail server this
# machine runs for real never meets the lab. This runs before pytest starts any thread.
if os.geteuid() == 0:
    load_labctl().enter()


@pytest.fixture(scope="session")
def lab() -> Iterator[dict[str, Any]]:
    """Start the lab (unless it already runs) and stop it afterwards if we started it."""
    labctl = load_labctl()
    manifest, started = labctl._start()
    yield manifest
    if started and not os.environ.get("CLEARTEXT_KEEP_LAB"):
        labctl.stop()


# Scans write to a store by default; the tests' scans go to one of the session's own, never to a
# cleartext.duckdb in the working tree.
TEST_STORE = Path(tempfile.mkdtemp(prefix="cleartext-tests-")) / "store.duckdb"
# Likewise attribution data: never the files a user fetched into ~/.local/share/cleartext.
TEST_DATA_DIR = TEST_STORE.parent / "data"


def run_cli(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real `cleartext` command (as a user would), capturing its output."""
    return subprocess.run(
        [sys.executable, "-m", "cleartext", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        env={
            **os.environ,
            "COLUMNS": "160",
            "NO_COLOR": "1",
            "CLEARTEXT_STORE": str(TEST_STORE),
            "CLEARTEXT_DATA_DIR": str(TEST_DATA_DIR),
            **(env or {}),
        },
    )


def parse_records(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


@contextmanager
def overlap_servers(count: int, delay: float) -> Iterator[tuple[list[int], dict[str, int]]]:
    """``count`` SMTP servers on 127.0.0.1 that answer "554" after ``delay`` s and record how many
    clients they held at once (``state["max"]``): the per-host limit's witness. At most 60 s."""
    state = {"now": 0, "max": 0}
    ports: list[int] = []
    ready = threading.Event()
    stop = threading.Event()

    async def main() -> None:
        async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            try:
                await asyncio.sleep(delay)
                writer.write(b"554 no service\r\n")
                await writer.drain()
            finally:
                state["now"] -= 1
                writer.close()

        servers = [await asyncio.start_server(session, "127.0.0.1", 0) for _ in range(count)]
        ports.extend(s.sockets[0].getsockname()[1] for s in servers)
        ready.set()
        for _ in range(600):  # at most 60 s
            if stop.is_set():
                break
            await asyncio.sleep(0.1)
        for s in servers:
            s.close()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert ready.wait(5)
    try:
        yield ports, state
    finally:
        stop.set()
        thread.join(5)
