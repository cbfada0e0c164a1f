"""Which raw ClientHellos to send, and what their answers add up to: the TLS matrix planner (sans-IO).

The probe has at most a handful of connections left for the matrix once the dialog is done (six per
endpoint in all). Each one carries one hand-built ClientHello (:mod:`cleartext.tls.hello`) and reads the
server's first flight (:mod:`cleartext.tls.serverhello`). This module decides which hello comes next and
reads each answer into version and weak-class states, so the order of the probes, and what each answer
proves, is written down once and tested without a network:

1. what the real handshake already proved: OpenSSL offered TLS 1.0–1.3, so the negotiated version is
   accepted and every version above it is refused;
2. each remaining version, highest first; a ServerHello at a lower version marks the versions in between
   refused, and once a server has negotiated down, an alert at a version means every version below is
   refused too (RFC 5246 E.1: it answers with the highest version it supports up to the client's);
3. the weak cipher classes not yet seen, at the highest legacy version accepted.

Suites of the weak classes not yet seen are offered first: a server that honours the client's order then
reveals a weak class with each version probe, which saves a connection per class on exactly the servers
that have many.

    planner = MatrixPlanner(negotiated=TLSVersion.TLS1_3, negotiated_suite=0x1302, budget=5)
    while (hello := planner.next_hello()) is not None:
        planner.observe(send_and_read(*hello))   # a ServerFlight, or None when the probe said nothing
    matrix = planner.result()
"""

from __future__ import annotations

from collections.abc import Generator
from functools import lru_cache

from cleartext.record import TLSMatrix
from cleartext.tls.ciphers import (
    COMPACT_SUITES,
    TLS13_SUITES,
    WeakClass,
    suite_name,
    suites_in_class,
    weak_classes,
)
from cleartext.tls.hello import TLSVersion
from cleartext.tls.serverhello import ServerFlight

__all__ = ["ORDER", "Hello", "MatrixPlanner"]

ORDER = (TLSVersion.TLS1_3, TLSVersion.TLS1_2, TLSVersion.TLS1_1, TLSVersion.TLS1_0, TLSVersion.SSL3)
"""Versions in the order they are probed: highest first."""

Hello = tuple[TLSVersion, tuple[int, ...]]
"""One probe: the hello's maximum version and the suites it offers."""


class MatrixPlanner:
    """Plans the raw hellos of one endpoint and reads their answers; holds no socket.

    ``budget`` is the number of hellos it may ask for (the connections left). ``next_hello()`` gives the
    next one, or None when the matrix is known or the budget spent; ``observe()`` takes its answer.
    """

    def __init__(
        self, negotiated: TLSVersion | None, negotiated_suite: int | None = None, budget: int = 5
    ) -> None:
        self.versions: dict[TLSVersion, str] = dict.fromkeys(ORDER, "unknown")
        self.weak: dict[WeakClass, str] = dict.fromkeys(WeakClass, "unknown")
        self.chosen: list[str] = []  # weak suites the server chose, by name
        self.probes = 0
        self.certificates: tuple[bytes, ...] = ()  # the first chain a TLS <= 1.2 hello showed
        self.not_tls: ServerFlight | None = None  # a hello answered with something that is not TLS
        self._budget = budget
        if negotiated is not None:
            self.versions[negotiated] = "accepted"
            for version in ORDER:
                if version >= TLSVersion.TLS1_0 and version > negotiated:
                    self.versions[version] = "rejected"
            self._note_suite(negotiated_suite)
        self._plan = self._run()
        self._pending: Hello | None = next(self._plan, None)

    # -- the interface ------------------------------------------------------------------------------

    def next_hello(self) -> Hello | None:
        return self._pending

    def observe(self, flight: ServerFlight | None) -> None:
        """The answer to the hello :meth:`next_hello` gave (None: we could not reach the TLS layer)."""
        if self._pending is None:
            raise RuntimeError("no hello is waiting for an answer")
        self.probes += 1
        try:
            self._pending = self._plan.send(flight)
        except StopIteration:
            self._pending = None

    def result(self) -> TLSMatrix:
        """The states so far: final once :meth:`next_hello` is None, partial if the probing was cut short."""
        return TLSMatrix(
            versions={v.label: self.versions[v] for v in reversed(ORDER)},
            weak_classes={str(cls): self.weak[cls] for cls in WeakClass},
            weak_suites=list(self.chosen),
            probes=self.probes,
        )

    # -- the plan -----------------------------------------------------------------------------------

    def _left(self) -> bool:
        return self.probes < self._budget

    def _note_suite(self, code: int | None) -> None:
        if code is None:
            return
        classes = weak_classes(code)
        for cls in classes:
            self.weak[cls] = "accepted"
        if classes and suite_name(code) not in self.chosen:
            self.chosen.append(suite_name(code))

    def _unknown_classes(self) -> list[WeakClass]:
        return [cls for cls, st in self.weak.items() if st == "unknown"]

    def _run(self) -> Generator[Hello, ServerFlight | None, None]:
        state = self.versions
        for version in ORDER:
            if state[version] != "unknown" or not self._left():
                continue
            # Under 128 suites: some old stacks answer longer lists with an alert, which would read as
            # "version refused"; the compact list still covers every weak class.
            suites = (
                TLS13_SUITES
                if version is TLSVersion.TLS1_3
                else weak_first(COMPACT_SUITES, tuple(self._unknown_classes()))
            )
            flight = yield version, suites
            if flight is None:
                continue
            outcome = str(flight.outcome)
            if outcome == "accepted":
                got = flight.version
                if version is TLSVersion.TLS1_3 or flight.hello_retry:
                    tls13 = got == TLSVersion.TLS1_3 or flight.hello_retry
                    state[version] = "accepted" if tls13 else "rejected"
                    if got in state and got != version:
                        state[TLSVersion(got)] = "accepted"
                elif got in state and got <= version:
                    state[TLSVersion(got)] = "accepted"
                    for other in ORDER:
                        if got < other <= version and other is not TLSVersion.TLS1_3:
                            state[other] = "rejected"
                self._note_suite(flight.cipher)
                if not self.certificates and flight.certificates:
                    self.certificates = tuple(flight.certificates)
            elif outcome in ("alert", "closed"):
                state[version] = "rejected"
                if version <= TLSVersion.TLS1_2 and any(
                    state[v] == "accepted" for v in ORDER if version < v <= TLSVersion.TLS1_2
                ):
                    # This server negotiates down (a higher hello got a lower ServerHello): refusing this
                    # hello means it supports nothing below either. Saves up to two connections.
                    for lower in ORDER:
                        if lower < version:
                            state[lower] = "rejected"
                    continue
            elif outcome == "not-tls":
                self.not_tls = flight
                break  # whatever answers does not speak TLS: more hellos would learn nothing

        legacy_ok = [v for v in ORDER if v <= TLSVersion.TLS1_2 and state[v] == "accepted"]
        if legacy_ok:
            version = max(legacy_ok)
            while self._left():
                remaining = self._unknown_classes()
                if not remaining:
                    break
                flight = yield version, suites_of(tuple(remaining))
                if flight is None:
                    break
                outcome = str(flight.outcome)
                if outcome == "accepted" and flight.cipher is not None:
                    before = sum(st == "accepted" for st in self.weak.values())
                    self._note_suite(flight.cipher)
                    if sum(st == "accepted" for st in self.weak.values()) == before:
                        break  # the server chose a suite we did not offer: it will not tell more
                elif outcome in ("alert", "closed"):
                    for cls in remaining:
                        self.weak[cls] = "rejected"
                    break
                else:
                    break
        elif all(state[v] == "rejected" for v in ORDER if v <= TLSVersion.TLS1_2):
            # Only TLS 1.3 (or nothing): TLS 1.3 has no weak suites to offer.
            for cls in self.weak:
                if self.weak[cls] == "unknown":
                    self.weak[cls] = "rejected"


@lru_cache(maxsize=256)
def suites_of(classes: tuple[WeakClass, ...]) -> tuple[int, ...]:
    """Every suite of the given weak classes, once each, in class order (a few hundred codes: built once
    per combination, not per endpoint)."""
    return tuple(dict.fromkeys(code for cls in classes for code in suites_in_class(cls)))


@lru_cache(maxsize=256)
def weak_first(suites: tuple[int, ...], classes: tuple[WeakClass, ...]) -> tuple[int, ...]:
    """The same suites, those of the given weak classes first (worst class first, as WeakClass lists)."""
    rank = {cls: i for i, cls in enumerate(classes)}

    def key(code: int) -> int:
        return min((rank[c] for c in weak_classes(code) if c in rank), default=len(rank))

    return tuple(sorted(suites, key=key))
