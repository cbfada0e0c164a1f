"""The TLS matrix planner without a network: which hello comes next, and what each answer proves."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cleartext.tls.ciphers import COMPACT_SUITES, TLS13_SUITES, WeakClass, weak_classes
from cleartext.tls.hello import TLSVersion
from cleartext.tls.matrix import MatrixPlanner
from cleartext.tls.serverhello import Outcome, ServerFlight

V13, V12, V11, V10, S3 = (TLSVersion.TLS1_3, TLSVersion.TLS1_2, TLSVersion.TLS1_1, TLSVersion.TLS1_0,
                          TLSVersion.SSL3)
GCM = 0xC02F  # ECDHE-RSA-AES128-GCM-SHA256: no weak class
RC4 = 0xC011  # ECDHE-RSA-RC4-128-SHA
TDES = 0xC012  # ECDHE-RSA-DES-CBC3-SHA

Server = Callable[[TLSVersion, tuple[int, ...]], ServerFlight | None]


def accepted(version: TLSVersion, cipher: int) -> ServerFlight:
    return ServerFlight(Outcome.ACCEPTED, version=version, cipher=cipher)


ALERT = ServerFlight(Outcome.ALERT, alert_level=2, alert_description=70)


def run(planner: MatrixPlanner, server: Server) -> list[tuple[TLSVersion, tuple[int, ...]]]:
    sent = []
    while (hello := planner.next_hello()) is not None:
        sent.append(hello)
        planner.observe(server(*hello))
    return sent


def modern(version: TLSVersion, suites: tuple[int, ...]) -> ServerFlight:
    """TLS 1.2 and 1.3 with AEAD suites only: older hellos get an alert, weak-only offers too."""
    if version is V13:
        return accepted(V13, 0x1302)
    if version is V12 and GCM in suites:
        return accepted(V12, GCM)
    return ALERT


def test_a_modern_server_costs_three_hellos() -> None:
    planner = MatrixPlanner(negotiated=V13, negotiated_suite=0x1302, budget=5)
    sent = run(planner, modern)
    assert [v for v, _ in sent] == [V12, V11, V12]  # 1.2, 1.1 (refused: nothing below either), weak classes
    m = planner.result()
    assert m.versions == {"SSLv3": "rejected", "TLSv1.0": "rejected", "TLSv1.1": "rejected",
                          "TLSv1.2": "accepted", "TLSv1.3": "accepted"}
    assert set(m.weak_classes.values()) == {"rejected"} and m.probes == 3 and m.weak_suites == []


def test_weak_suites_go_first_and_reveal_their_class() -> None:
    def legacy(version: TLSVersion, suites: tuple[int, ...]) -> ServerFlight:
        if version is V13:
            return ALERT
        return accepted(version, suites[0])  # honours the client's order

    planner = MatrixPlanner(negotiated=V12, negotiated_suite=GCM, budget=5)
    sent = run(planner, legacy)
    first_version, first_suites = sent[0]
    assert first_version is V11 and set(first_suites) == set(COMPACT_SUITES)
    assert weak_classes(first_suites[0]), "a weak suite leads the list"
    m = planner.result()
    assert m.versions["TLSv1.1"] == "accepted" and m.versions["TLSv1.0"] == "accepted"
    assert sum(state == "accepted" for state in m.weak_classes.values()) >= 3
    assert m.probes == 5 and len(m.weak_suites) >= 3


def test_the_budget_is_never_exceeded_and_the_result_says_unknown() -> None:
    planner = MatrixPlanner(negotiated=V12, negotiated_suite=GCM, budget=1)
    assert len(run(planner, modern)) == 1
    m = planner.result()
    assert m.probes == 1 and set(m.weak_classes.values()) == {"unknown"}
    assert MatrixPlanner(negotiated=V12, budget=0).next_hello() is None


def test_not_tls_stops_the_probing_and_keeps_the_bytes() -> None:
    greeting = ServerFlight(Outcome.NOT_TLS, detail="not TLS: * OK", head=b"* OK IMAP4rev1 ready\r\n")
    planner = MatrixPlanner(negotiated=None, budget=5)
    sent = run(planner, lambda v, s: greeting)
    assert [v for v, _ in sent] == [V13] and sent[0][1] == TLS13_SUITES
    assert planner.not_tls is greeting and planner.result().probes == 1


def test_no_answer_says_nothing_about_the_version() -> None:
    planner = MatrixPlanner(negotiated=V13, budget=5)
    run(planner, lambda v, s: None)
    m = planner.result()
    assert m.versions["TLSv1.2"] == "unknown" and m.versions["TLSv1.3"] == "accepted"


def test_a_tls13_only_server_has_no_weak_class() -> None:
    planner = MatrixPlanner(negotiated=V13, budget=5)
    run(planner, lambda v, s: accepted(V13, 0x1301) if v is V13 else ALERT)
    m = planner.result()
    assert m.versions["TLSv1.2"] == "rejected" and m.versions["SSLv3"] == "rejected"
    assert set(m.weak_classes.values()) == {"rejected"}


def test_a_lower_server_hello_marks_the_versions_between_refused() -> None:
    planner = MatrixPlanner(negotiated=None, budget=3)
    run(planner, lambda v, s: ALERT if v is V13 else accepted(V10, TDES))
    m = planner.result()
    assert m.versions["TLSv1.3"] == "rejected"
    assert m.versions["TLSv1.2"] == "rejected" and m.versions["TLSv1.1"] == "rejected"
    assert m.versions["TLSv1.0"] == "accepted" and m.weak_classes["3des"] == "accepted"


def test_the_certificates_of_the_first_clear_flight_are_kept() -> None:
    flight = ServerFlight(Outcome.ACCEPTED, version=V12, cipher=GCM, certificates=(b"leaf", b"ca"))
    planner = MatrixPlanner(negotiated=None, budget=2)
    run(planner, lambda v, s: flight if v is V12 else ALERT)
    assert planner.certificates == (b"leaf", b"ca")


def test_observe_without_a_pending_hello_is_a_bug() -> None:
    planner = MatrixPlanner(negotiated=V12, budget=0)
    with pytest.raises(RuntimeError):
        planner.observe(None)


@pytest.mark.parametrize("cls", list(WeakClass))
def test_a_server_with_one_weak_class_has_it_found(cls: WeakClass) -> None:
    from cleartext.tls.ciphers import suites_in_class

    weak = set(suites_in_class(cls))

    def server(version: TLSVersion, suites: tuple[int, ...]) -> ServerFlight:
        if version is not V12:
            return ALERT
        offered = [s for s in suites if s in weak]
        return accepted(V12, offered[0]) if offered else accepted(V12, GCM)

    planner = MatrixPlanner(negotiated=V12, negotiated_suite=GCM, budget=5)
    run(planner, server)
    assert planner.result().weak_classes[str(cls)] == "accepted"
