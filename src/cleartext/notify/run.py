"""One `cleartext notify` run: plan who is told what, settle what a dead run left, send what is due once.

The order of a run, and why:

1. **Lock** (PostgreSQL: an advisory lock; DuckDB: the file lock): one run per store, so whatever is in
   flight in the ledger at start belongs to a dead run.
2. **Reconcile** the rows a dead run left in ``sending``: to ``assumed-sent`` when the journal says the
   final dot may have been written, else back to ``pending`` (no dot, no message).
3. **Plan**: stream the scan's records, keep those with findings, attribute each address, match the
   subscriptions (else, with ``--abuse-contacts``, the attribution's abuse contacts): recipient ->
   endpoints.
4. **Due**: new recipients, ``pending`` rows, ``failed-temporary`` rows whose backoff has passed; then
   the rate limits (per run, per recipient domain) cut the list; the rest waits for the next run.
5. **Connect** to the relay with TLS (refused without: exit 2, nothing sent), create the ledger rows,
   and for each due recipient: claim the row (``sending``, committed), build the message,
   MAIL/RCPT/DATA/body, mark the journal, write the dot, commit ``sent`` on 250 — or the failure.

A dry run (``--dry-run DIR``) does 1, 3 and 4 without writing the ledger and writes each message as an
``.eml`` file instead of sending it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cleartext.enrich.model import Attribution
from cleartext.errors import CleartextError
from cleartext.notify.compose import MAIL_POLICY, Affected, Operator, Planned, build_message, message_id_for
from cleartext.notify.ledger import Journal, LedgerRow, NewMessage, NotifyStore, journal_path, now_utc
from cleartext.notify.smtp import Relay, RelayError, SendError, UncertainDelivery
from cleartext.notify.subscriptions import Matcher, Recipient, SubscriptionError, check_email
from cleartext.store import Store, StoreError

__all__ = ["NotifyOptions", "Outcome", "PlanError", "RunReport", "latest_scan", "plan", "run"]

MAX_RECONNECTS = 3  # a relay that drops us more often than this in one run is not going to get better
MAX_BACKOFF_S = 24 * 3600


@dataclass(frozen=True, slots=True)
class NotifyOptions:
    scan_id: str | None = None
    dry_run: Path | None = None
    abuse_contacts: bool = False
    abuse_lang: str = "en"
    country_source: str = "geo"
    rate_per_run: int = 1000
    rate_per_domain: int = 100
    retry_base_s: float = 600.0
    max_attempts: int = 5
    # Recipients whose assumed-sent message of this scan is sent again; "all" for every such message.
    resend_uncertain: tuple[str, ...] = ()

    def resends(self, recipient: str) -> bool:
        return "all" in self.resend_uncertain or recipient in self.resend_uncertain


class PlanError(CleartextError, ValueError):
    """The run cannot do what it was asked (a --resend-uncertain naming no uncertain message): one line."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one recipient's message in this run."""

    recipient: str
    state: str  # sent, assumed-sent, failed-temporary, failed-permanent, deferred, dry-run, ...
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"recipient": self.recipient, "state": self.state, "detail": self.detail}


@dataclass(slots=True)
class RunReport:
    scan_id: str
    planned: int = 0
    outcomes: list[Outcome] = field(default_factory=list)
    reconciled: list[tuple[LedgerRow, str]] = field(default_factory=list)  # (as found, new state)
    already_done: int = 0  # recipients whose message is sent, assumed sent or failed for good
    waiting: int = 0  # failed-temporary, backoff not over
    skipped_contacts: list[str] = field(default_factory=list)  # abuse contacts that are not addresses
    fatal: str | None = None  # the relay became unusable mid-run

    def count(self, state: str) -> int:
        return sum(1 for o in self.outcomes if o.state == state)

    @property
    def failed(self) -> bool:
        return self.fatal is not None or any(o.state.startswith("failed") for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scan_id": self.scan_id,
            "planned": self.planned,
            "outcomes": [o.to_dict() for o in self.outcomes],
            "reconciled": [
                {"recipient": r.recipient, "scan_id": r.scan_id, "was": r.state, "now": state}
                for r, state in self.reconciled
            ],
            "already_done": self.already_done,
            "waiting": self.waiting,
            "skipped_contacts": self.skipped_contacts,
            "fatal": self.fatal,
        }

    def summary(self) -> str:
        states = ("sent", "assumed-sent", "failed-temporary", "failed-permanent", "deferred", "dry-run")
        parts = [f"{self.count(s)} {s}" for s in states if self.count(s)]
        parts += [f"{self.already_done} done earlier"] if self.already_done else []
        parts += [f"{self.waiting} waiting to retry"] if self.waiting else []
        return f"notify: scan {self.scan_id}: {self.planned} recipient(s); " + (
            ", ".join(parts) or "nothing due"
        )


def latest_scan(store: Store) -> str:
    """The most recently started scan; StoreError when the store has none."""
    scans = store.scans()
    if not scans:
        raise StoreError(f"no scans in {store.url}")
    return scans[-1].scan_id


def plan(
    store: Store,
    ns: NotifyStore,
    scan_id: str,
    lookup: Callable[[str], Attribution],
    options: NotifyOptions,
    report: RunReport | None = None,
) -> dict[str, Planned]:
    """Recipient -> what they are told: endpoints with findings, matched by subscription or abuse contact."""
    recipients = ns.recipients()
    optouts = ns.optouts()
    matcher = Matcher(ns.subscriptions(), options.country_source)
    plans: dict[str, Planned] = {}
    skipped: set[str] = set()
    for record in store.records(scan_id):
        if not record.findings:
            continue
        address = record.observation.address
        attribution = lookup(address)
        matched = matcher.match(address, attribution)
        for mail, labels in matched.items():
            entry = plans.get(mail)
            if entry is None or entry.source != "subscription":
                recipient = recipients.get(mail, Recipient(mail))
                fresh = Planned(recipient, "subscription")
                if entry is not None:  # was planned as an abuse contact: it is a subscriber too
                    fresh.endpoints = entry.endpoints
                entry = plans[mail] = fresh
            for label in labels:
                if label not in entry.reasons:
                    entry.reasons.append(label)
            entry.endpoints.append(Affected(record, attribution))
        if matched or not options.abuse_contacts:
            continue
        for contact in attribution.abuse_contacts:
            try:
                mail = check_email(contact)
            except SubscriptionError:
                skipped.add(contact)
                continue
            if mail in optouts:
                continue
            entry = plans.get(mail)
            if entry is None:
                known = recipients.get(mail)
                entry = plans[mail] = Planned(
                    Recipient(
                        mail, known.lang if known else options.abuse_lang, known.name if known else None
                    ),
                    "abuse-contact",
                )
            entry.endpoints.append(Affected(record, attribution))
    for entry in plans.values():
        entry.split_by = "country" if any(len(r) == 2 and r.isalpha() for r in entry.reasons) else "asn"
    if report is not None:
        report.skipped_contacts = sorted(skipped)
    return plans


def _due(
    row: LedgerRow | None, now: dt.datetime, resend_uncertain: bool, marked: set[tuple[str, str, int]]
) -> tuple[bool, str]:
    """Is this recipient's message due now? (and if not, why: done or waiting).

    A ``sending`` row is a dead run's (only a dry run sees one: a real run reconciles first): due
    unless the journal says its end of data may have been written.
    """
    if row is not None and row.state == "sending":
        uncertain = (row.scan_id, row.recipient, row.attempts) in marked
        return (True, "") if not uncertain or resend_uncertain else (False, "done")
    if row is None or row.state == "pending":
        return True, ""
    if row.state == "failed-temporary":
        ready = row.next_attempt_at is None or row.next_attempt_at <= now
        return ready, "" if ready else "waiting"
    if row.state == "assumed-sent":
        return resend_uncertain, "" if resend_uncertain else "done"
    return False, "done"


def _check_resends(
    options: NotifyOptions,
    scan_id: str,
    rows: dict[str, LedgerRow],
    plans: dict[str, Planned],
    marked: set[tuple[str, str, int]],
) -> None:
    """Every recipient named by --resend-uncertain must have an uncertain message in this scan's plan."""
    for mail in options.resend_uncertain:
        if mail == "all":
            continue
        row = rows.get(mail)
        uncertain = row is not None and (
            row.state == "assumed-sent"
            or (row.state == "sending" and (row.scan_id, row.recipient, row.attempts) in marked)
        )
        if not uncertain:
            state = row.state if row is not None else "no message"
            raise PlanError(
                f"--resend-uncertain {mail}: scan {scan_id} has no assumed-sent message to {mail} ({state}); "
                "`cleartext notifications --scan` lists them"
            )
        if mail not in plans:
            raise PlanError(f"--resend-uncertain {mail}: {mail} is no longer told about scan {scan_id}")


def _domain(mail: str) -> str:
    return mail.rsplit("@", 1)[-1].lower()


def _limit(due: Iterable[str], per_run: int, per_domain: int) -> tuple[list[str], list[str]]:
    """Split the due recipients into those sent this run and those deferred by the rate limits."""
    chosen: list[str] = []
    deferred: list[str] = []
    by_domain: dict[str, int] = {}
    for mail in due:
        domain = _domain(mail)
        if len(chosen) >= per_run or by_domain.get(domain, 0) >= per_domain:
            deferred.append(mail)
            continue
        by_domain[domain] = by_domain.get(domain, 0) + 1
        chosen.append(mail)
    return chosen, deferred


def _eml_name(scan_id: str, mail: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", f"{scan_id}--{mail}") + ".eml"


def backoff(attempts: int, base_s: float) -> dt.timedelta:
    """Wait before retry number ``attempts + 1``: base, 2x base, 4x base ... at most a day."""
    return dt.timedelta(seconds=min(MAX_BACKOFF_S, base_s * 2 ** max(0, attempts - 1)))


def run(
    store: Store,
    options: NotifyOptions,
    lookup: Callable[[str], Attribution],
    operator: Operator,
    relay: Relay | None,
    *,
    on_outcome: Callable[[Outcome], None] | None = None,
    on_reconciled: Callable[[LedgerRow, str], None] | None = None,
) -> RunReport:
    """One run; see the module docstring. ``relay`` is None only for a dry run.

    Raises StoreError (store unusable, unknown scan) and RelayError (the relay cannot be used: nothing
    was sent); failures of single messages are in the report.
    """
    ns = NotifyStore(store)
    scan_id = store.resolve_scan(options.scan_id) if options.scan_id else latest_scan(store)  # or 'latest'
    scan = store.scan(scan_id)
    report = RunReport(scan_id)

    def emit(outcome: Outcome) -> None:
        report.outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    journal = Journal(journal_path(store))
    with ns.run_lock():
        if options.dry_run is None:
            report.reconciled = ns.reconcile(journal)
            for row, state in report.reconciled:  # said at once: this run may die too
                if on_reconciled is not None:
                    on_reconciled(row, state)
        plans = plan(store, ns, scan_id, lookup, options, report)
        report.planned = len(plans)
        rows = {row.recipient: row for row in ns.ledger(scan_id)}
        marked = journal.entries() if options.dry_run is not None else set()
        now = now_utc()
        due: list[str] = []
        _check_resends(options, scan_id, rows, plans, marked)
        for mail in sorted(plans):
            ready, why = _due(rows.get(mail), now, options.resends(mail), marked)
            if ready:
                due.append(mail)
            elif why == "waiting":
                report.waiting += 1
            else:
                report.already_done += 1
        chosen, deferred = _limit(due, options.rate_per_run, options.rate_per_domain)
        # A message keeps the id its ledger row was created with, even if --from changed since.
        ids = {
            mail: rows[mail].message_id if mail in rows else message_id_for(scan_id, mail, operator.from_addr)
            for mail in plans
        }

        def message(mail: str) -> bytes:
            msg = build_message(
                plans[mail],
                scan_id=scan_id,
                scan_started=scan.started_at,
                operator=operator,
                message_id=ids[mail],
            )
            return msg.as_bytes(policy=MAIL_POLICY)

        if options.dry_run is not None:
            options.dry_run.mkdir(parents=True, exist_ok=True)
            for mail in chosen:
                path = options.dry_run / _eml_name(scan_id, mail)
                path.write_bytes(message(mail))
                emit(Outcome(mail, "dry-run", str(path)))
            for mail in deferred:
                emit(Outcome(mail, "deferred", "rate limit"))
            return report

        assert relay is not None
        # The rows exist before the relay is tried: a relay refused (no STARTTLS, an untrusted
        # certificate, a refused login) then leaves its reason on them, for `cleartext notifications`.
        ns.add(
            scan_id,
            (
                NewMessage(mail, ids[mail], p.recipient.lang, p.source, len(p.endpoints))
                for mail, p in sorted(plans.items())
            ),
        )
        if chosen:
            try:
                relay.connect()
            except RelayError as exc:  # propagates: nothing was sent
                ns.note(scan_id, chosen, f"nothing sent: {exc}")
                raise
        reconnects = 0
        try:
            for index, mail in enumerate(chosen):
                if not relay.connected:
                    if reconnects >= MAX_RECONNECTS:
                        report.fatal = f"the SMTP relay dropped the connection {reconnects} times; stopping"
                        deferred = chosen[index:] + deferred
                        break
                    reconnects += 1
                    try:
                        relay.connect()
                    except RelayError as exc:
                        report.fatal = str(exc)
                        deferred = chosen[index:] + deferred
                        break
                emit(_send_one(ns, journal, relay, scan_id, mail, message, operator, options))
            journal.clear()  # every row marked in this run is settled in the ledger
        finally:
            relay.close()
            journal.close()
        if report.fatal is not None:
            ns.note(scan_id, deferred, f"not sent: {report.fatal}")
        for mail in deferred:
            emit(Outcome(mail, "deferred", "rate limit" if report.fatal is None else "relay unusable"))
    return report


def _send_one(
    ns: NotifyStore,
    journal: Journal,
    relay: Relay,
    scan_id: str,
    mail: str,
    message: Callable[[str], bytes],
    operator: Operator,
    options: NotifyOptions,
) -> Outcome:
    row = ns.claim(scan_id, mail, resend_uncertain=options.resends(mail))
    if row is None:  # not due any more (cannot happen under the run lock; checked all the same)
        return Outcome(mail, "skipped", "not due")
    if row.attempts > options.max_attempts:  # interrupted runs count too: no endless crash loop
        error = f"gave up after {row.attempts - 1} attempt(s); last: {row.last_error or 'interrupted'}"
        ns.mark(scan_id, mail, "failed-permanent", code=row.last_code, error=error)
        return Outcome(mail, "failed-permanent", error)
    data = message(mail)
    try:
        reply = relay.send(
            operator.from_addr, mail, data, before_end=lambda: journal.mark(scan_id, mail, row.attempts)
        )
    except UncertainDelivery as exc:
        ns.mark(scan_id, mail, "assumed-sent", error=str(exc))
        return Outcome(mail, "assumed-sent", str(exc))
    except SendError as exc:
        if not exc.temporary:
            ns.mark(scan_id, mail, "failed-permanent", code=exc.code, error=str(exc))
            return Outcome(mail, "failed-permanent", str(exc))
        if row.attempts >= options.max_attempts:
            error = f"gave up after {row.attempts} attempt(s); last: {exc}"
            ns.mark(scan_id, mail, "failed-permanent", code=exc.code, error=error)
            return Outcome(mail, "failed-permanent", error)
        retry_at = now_utc() + backoff(row.attempts, options.retry_base_s)
        ns.mark(scan_id, mail, "failed-temporary", code=exc.code, error=str(exc), next_attempt_at=retry_at)
        when = retry_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return Outcome(mail, "failed-temporary", f"{exc} (attempt {row.attempts}; retry after {when})")
    ns.mark(scan_id, mail, "sent", code=250)
    return Outcome(mail, "sent", reply)
