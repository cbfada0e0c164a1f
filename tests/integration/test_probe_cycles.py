"""The probe leaves no reference cycles behind, whatever the server does.

A scan runs with the cyclic garbage collector set to run rarely (cleartext.scan.engine.GC_THRESHOLD): a
cycle per endpoint would then hold connections and their buffers for a long time. Failed handshakes,
reset connections and timeouts each made one (the raised exception's traceback holding the frame that
held the exception); this probes the real lab servers and every hostile profile with the collector off
and finds nothing for it to collect.
"""

from __future__ import annotations

import asyncio
import gc
import sys
from collections import Counter
from typing import Any

import uvloop

from cleartext.probe import ProbeSettings, probe
from cleartext.record import Protocol, TLSMode
from cleartext.targets import Endpoint, parse_ports
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "lab"))
import hostile


def _endpoints(lab: dict[str, Any]) -> list[Endpoint]:
    endpoints = [
        Endpoint(
            e["address"],
            e["port"],
            Protocol(e["protocol"]),
            TLSMode.IMPLICIT if e["tls"] == "implicit" else TLSMode.STARTTLS,
            e["hostname"],
        )
        for e in lab["endpoints"]
    ]
    specs = parse_ports(",".join(f"{p.port}={p.service}" for p in hostile.PROFILES))
    endpoints += [Endpoint("127.0.0.7", s.port, s.protocol, s.tls_mode) for s in specs]
    endpoints.append(Endpoint("127.0.0.7", 1, Protocol.SMTP, TLSMode.STARTTLS))  # refused
    return endpoints


def test_probing_leaves_nothing_for_the_cyclic_collector(lab: dict[str, Any]) -> None:
    endpoints = _endpoints(lab)
    settings = ProbeSettings(
        connect_timeout=2, read_timeout=1.5, endpoint_timeout=15, ca_files=(lab["ca_file"],)
    )

    async def scan() -> list[str]:
        observations = await asyncio.gather(*(probe(e, settings) for e in endpoints))
        return [str(o.status) for o in observations]

    gc.collect()
    gc.disable()
    try:
        statuses = uvloop.run(scan())
        gc.set_debug(gc.DEBUG_SAVEALL)
        found = gc.collect()
        kinds = Counter(type(o).__name__ for o in gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    # The probes met what they should: successes, TLS errors, timeouts, resets and a refusal.
    assert {"success", "tls-error", "read-timeout", "closed", "refused"} <= set(statuses)
    assert found == 0, kinds.most_common(12)
