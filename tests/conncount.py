"""Connections per endpoint as the kernel saw them, not as the probe counted them.

The probe writes its own count into each record (``connections``); a promise such as "at most six
connections per endpoint" needs a witness that does not share its bugs. nftables counts, per destination
(address, port), the TCP SYNs that leave this namespace -- one per connection attempt, refused ones
included -- in a table of its own that exists only while :func:`syn_counter` runs. Only inside the lab's
own network namespace: the host's firewall is never touched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from tests.conftest import load_labctl

TABLE = "cleartext_conncount"
RULES = f"""
table inet {TABLE} {{
  set syns {{
    type ipv4_addr . inet_service
    flags dynamic
    size 65536
    counter
  }}
  chain out {{
    type filter hook output priority 0; policy accept;
    tcp flags & (syn | ack) == syn ip daddr 127.0.0.0/8 add @syns {{ ip daddr . tcp dport }}
  }}
}}
"""

Counts = dict[tuple[str, int], int]


@contextmanager
def syn_counter() -> Iterator[Callable[[], Counts]]:
    """Count connection attempts per (address, port) while the block runs; yields a reader of the counts."""
    labctl = load_labctl()
    if not labctl.netns.inside(labctl.NETNS):
        pytest.skip("connections are counted with nftables only inside the lab's own network namespace")
    nft = shutil.which("nft")
    assert nft, "nft (Debian's nftables, scripts/install-system-deps) counts the connections"
    subprocess.run([nft, "delete", "table", "inet", TABLE], capture_output=True, check=False)
    subprocess.run([nft, "-f", "-"], input=RULES, text=True, capture_output=True, check=True)

    def read() -> Counts:
        done = subprocess.run(
            [nft, "-j", "list", "set", "inet", TABLE, "syns"], capture_output=True, text=True, check=True
        )
        counts: Counts = {}
        for item in json.loads(done.stdout)["nftables"]:
            for elem in item.get("set", {}).get("elem", []):
                address, port = elem["elem"]["val"]["concat"]
                counts[(address, int(port))] = int(elem["elem"]["counter"]["packets"])
        return counts

    try:
        yield read
    finally:
        subprocess.run([nft, "delete", "table", "inet", TABLE], capture_output=True, check=False)
