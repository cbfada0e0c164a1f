"""Probe: the only package that touches sockets. One endpoint in, one Observation out.

Per endpoint we spend at most ``max_connections`` connections (default 6):

1. the *dialog* (dialog.py): greeting, capabilities in clear, the *login probe* (login.py: a login
   started and cancelled before anything secret is sent -- does the server take a password in clear,
   whatever it advertises?), STARTTLS with one harmless command pipelined behind it (answered inside TLS?
   CVE-2011-0411), one real TLS handshake with the local OpenSSL (which gives the certificate chain),
   capabilities again after TLS;
2. up to five *raw hellos* (hellos.py, planned by cleartext.tls.matrix): hand-built ClientHello messages
   that find which protocol versions and weak cipher classes the server accepts, without a key exchange;
3. on an implicit-TLS port that answered a hello with a plaintext greeting, a plaintext dialog: that port
   takes passwords in clear.

Every read has a per-step deadline, the whole endpoint has its own deadline, and all bytes received count
against a per-endpoint cap (transport.py): a server that drips, floods or stalls ends in a status, never a
hang. Errors are statuses in the record; only bugs raise. The chain is judged offline (chain.py).
"""

from __future__ import annotations

import asyncio
import time

from cleartext.politeness import Gate
from cleartext.probe import chain, hellos
from cleartext.probe.dialog import EndpointProbe
from cleartext.probe.settings import LOGIN_PROBE_MODES, ProbeSettings
from cleartext.probe.transport import Network, Stop
from cleartext.record import Observation, Status, TLSMode
from cleartext.targets import Endpoint

__all__ = ["LOGIN_PROBE_MODES", "Network", "ProbeSettings", "probe", "tls_reachable"]


def tls_reachable(obs: Observation) -> bool:
    """Is there a TLS layer worth probing with raw hellos?

    On an implicit-TLS port: when the handshake completed (whatever went wrong after it), or when it
    failed at the TLS layer. A port that stayed silent through the handshake gets no more connections.
    """
    if obs.tls_mode is TLSMode.IMPLICIT:
        return obs.tls is not None and (obs.tls.version is not None or obs.status is Status.TLS_ERROR)
    return obs.plain is not None and bool(obs.plain.starttls_accepted)


async def probe(
    endpoint: Endpoint, settings: ProbeSettings, gate: Gate | None = None, network: Network | None = None
) -> Observation:
    """Probe one endpoint; always returns an Observation (errors become its status). ``network`` is the
    socket seam: TCP by default, a scripted server in tests."""
    state = EndpointProbe(endpoint, settings, gate, network)
    obs = state.obs
    start = time.monotonic()
    try:
        async with asyncio.timeout(settings.endpoint_timeout) as deadline:
            state.deadline = deadline
            try:
                await (state.discover() if settings.discover else state.dialog())
            except Stop as stop:
                obs.status, obs.status_detail = stop.status, stop.detail
            if settings.tls_matrix and not settings.discover and tls_reachable(obs):
                await hellos.matrix(state)
                if (
                    endpoint.tls_mode is TLSMode.IMPLICIT
                    and obs.status is Status.TLS_ERROR
                    and hellos.speaks_plaintext(state, state.not_tls)
                    and state.budget_left()
                ):
                    await state.plaintext_on_implicit_port()
    except TimeoutError:
        if obs.status is Status.SUCCESS and obs.matrix is None:
            obs.status = Status.READ_TIMEOUT
            obs.status_detail = f"endpoint deadline of {settings.endpoint_timeout:g} s exceeded"
        elif obs.matrix is not None:
            obs.status_detail = (obs.status_detail or "") + " (TLS matrix cut short by the endpoint deadline)"
    chain.judge(state)
    obs.bytes_received = state.budget.used
    obs.timings_ms["total"] = round((time.monotonic() - start) * 1000, 2)
    return obs
