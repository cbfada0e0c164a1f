"""The vocabulary is defined once in cleartext.record; what spells it elsewhere must agree with it."""

from __future__ import annotations

import duckdb
import pytest

from cleartext.assess import assess
from cleartext.record import (
    LEGACY_TLS_VERSIONS,
    MODERN_TLS_VERSIONS,
    NO_ANSWER,
    NO_SERVICE,
    NOTHING_TO_JUDGE,
    TLS_VERSION_ORDER,
    Observation,
    PlainPhase,
    Protocol,
    Severity,
    Status,
    TLSMode,
    severity_rank,
    severity_rank_sql,
    tls_label,
)
from cleartext.report.stats import SILENT, TLS_VERSIONS
from cleartext.tls.hello import TLSVersion


def test_status_groups_nest_and_name_what_they_leave_out() -> None:
    assert NO_ANSWER < NO_SERVICE < NOTHING_TO_JUDGE
    assert Status.SUCCESS not in NOTHING_TO_JUDGE
    assert {Status.ERROR} == NO_SERVICE - NO_ANSWER
    assert {Status.NOT_MAIL, Status.REFUSED_BY_POLICY} == NOTHING_TO_JUDGE - NO_SERVICE
    # Reports compare stored text: the StrEnum members hash and compare as their values.
    assert {s.value for s in NO_SERVICE} == SILENT and "refused" in NO_ANSWER


@pytest.mark.parametrize("status", sorted(NOTHING_TO_JUDGE))
def test_nothing_is_judged_where_the_server_said_too_little(status: Status) -> None:
    obs = Observation(address="192.0.2.1", port=143, protocol=Protocol.IMAP, tls_mode=TLSMode.STARTTLS)
    obs.plain = PlainPhase(capabilities=["IMAP4rev1", "AUTH=PLAIN"], auth_mechanisms=["PLAIN"])
    judged = assess(obs)  # the same words from a server that answered: judged
    assert judged.findings and judged.login is not None
    obs.status = status
    record = assess(obs)
    assert record.findings == [] and record.login is None


def test_severity_rank_in_python_and_sql_agree() -> None:
    names = [*(s.value for s in Severity), "unknown", None]
    expected = {name: severity_rank(name) for name in names}
    assert [expected[s.value] for s in Severity] == [s.rank for s in Severity] == [4, 3, 2, 1, 0]
    assert expected["unknown"] == expected[None] == -1
    con = duckdb.connect()
    con.execute("CREATE TABLE r (worst_severity TEXT)")
    con.executemany("INSERT INTO r VALUES (?)", [(n,) for n in names])
    got = dict(con.execute(f"SELECT worst_severity, {severity_rank_sql('worst_severity')} FROM r").fetchall())
    assert got == expected


def test_tls_labels_are_one_list() -> None:
    assert [v.label for v in TLSVersion] == list(TLS_VERSION_ORDER) == list(TLS_VERSIONS)
    assert (*LEGACY_TLS_VERSIONS, *MODERN_TLS_VERSIONS) == TLS_VERSION_ORDER
    assert tls_label("TLSv1") == "TLSv1.0" and tls_label("TLSv1.2") == "TLSv1.2" and tls_label(None) is None
    assert TLSVersion.from_label("TLSv1") is TLSVersion.TLS1_0
    assert TLSVersion.from_label("TLSv1.3") is TLSVersion.TLS1_3
    assert TLSVersion.from_label("SSLv2") is None and TLSVersion.from_label(None) is None
