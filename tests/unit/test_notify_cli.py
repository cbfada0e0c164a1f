"""The notification commands through the real typer app (in-process): bad input is one line and exit 2
with nothing stored or sent; listings; opting out; dry runs write .eml files and leave the ledger alone."""

from __future__ import annotations

import email
import email.policy
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cleartext.cli import app
from cleartext.notify.ledger import NotifyStore
from cleartext.store import open_store
from tests.integration.test_notify_smtpd import attribution_files, seed_store

runner = CliRunner()


def cli(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "store.duckdb"
    seed_store(path)
    return path


def subscriptions(store: Path) -> list[tuple[str, str, str]]:
    with open_store(str(store)) as st:
        return [(s.email, s.kind, s.value) for s in NotifyStore(st).subscriptions()]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["subscribe", "not-an-address", "--asn", "64500"], "invalid e-mail address 'not-an-address'"),
        (
            ["subscribe", "a@b.example", "--cidr", "192.0.2.1/24"],
            "host bits set (did you mean 192.0.2.0/24?)",
        ),
        (["subscribe", "a@b.example", "--cidr", "300.1.2.0/24"], "invalid CIDR '300.1.2.0/24'"),
        (["subscribe", "a@b.example", "--country", "ZZ"], "unknown country code 'ZZ'"),
        (["subscribe", "a@b.example", "--asn", "0"], "invalid AS number '0'"),
        (["subscribe", "a@b.example", "--asn", "64500", "--lang", "de"], "unknown language 'de'"),
        (["subscribe", "a@b.example", "--asn", "64500", "--name", "x\ny"], "invalid name"),
        (["subscribe", "a@b.example"], "nothing to subscribe to"),
        # One bad selector among good ones: nothing of the command is stored.
        (["subscribe", "a@b.example", "--asn", "64500", "--country", "XX"], "unknown country code 'XX'"),
        (["unsubscribe", "a b@example.net"], "invalid e-mail address"),
    ],
)
def test_bad_subscription_input(store: Path, args: list[str], message: str) -> None:
    code, stdout, stderr = cli(*args, "--store", str(store))
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("cleartext: error: ") and message in stderr
    assert subscriptions(store) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--smtp-host is needed to send"),
        (["--smtp-host", "", "--from", "n@cert.example"], "--smtp-host is empty"),
        (["--smtp-host", "  ", "--from", "n@cert.example"], "--smtp-host is empty"),
        (["--smtp-host", "a b", "--from", "n@cert.example"], "invalid --smtp-host 'a b'"),
        (["--smtp-host", "127.0.0.1"], "--from is needed to send"),
        (["--smtp-host", "127.0.0.1", "--from", "not an address"], "invalid --from/--contact address"),
        (["--smtp-host", "127.0.0.1", "--from", "n@cert.example", "--tls", "ssl"], "unknown --tls 'ssl'"),
        (["--dry-run", "{tmp}/out", "--scan", "20990101T000000Z-0000"], "no scan '20990101T000000Z-0000'"),
        (["--dry-run", "{tmp}/out", "--abuse-lang", "es"], "unknown language 'es'"),
        (["--dry-run", "{tmp}/out", "--mmdb", "{tmp}/missing.mmdb"], "missing.mmdb"),
        (["--smtp-host", "127.0.0.1", "--from", "n@cert.example", "--ca-file", "{tmp}/none.pem"], "none.pem"),
        (["--smtp-host", "127.0.0.1", "--from", "n@cert.example", "--smtp-password-file", "{tmp}/pw"], "pw"),
    ],
)
def test_bad_notify_input(store: Path, tmp_path: Path, args: list[str], message: str) -> None:
    code, stdout, stderr = cli("notify", "--store", str(store), *(a.format(tmp=tmp_path) for a in args))
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and stderr.startswith("cleartext: error: ") and message in stderr
    assert not (tmp_path / "out").exists()


def test_notify_needs_an_existing_store(tmp_path: Path) -> None:
    code, _, stderr = cli(
        "notify", "--store", str(tmp_path / "nope.duckdb"), "--dry-run", str(tmp_path / "out")
    )
    assert code == 2 and "no store at" in stderr and not (tmp_path / "nope.duckdb").exists()


def test_subscriptions_listing_and_opt_out(store: Path) -> None:
    assert (
        cli("subscribe", "CERT@fr.example", "--country", "fr", "--lang", "fr", "--store", str(store))[0] == 0
    )
    code, out, _ = cli("subscribe", "ops@a.example", "--asn", "AS64500", "--cidr", "192.0.2.0/25",
                       "--name", "Ops", "--store", str(store))  # fmt: skip
    assert code == 0 and "2 new subscription(s) (AS64500, 192.0.2.0/25)" in out
    code, out, _ = cli("unsubscribe", "noc@c.example", "--store", str(store))
    assert code == 0 and "opted out" in out
    code, out, _ = cli("subscriptions", "--store", str(store), "--json")
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"email": "cert@fr.example", "lang": "fr", "name": None, "subscriptions": ["FR"]},
        {"email": "ops@a.example", "lang": "en", "name": "Ops", "subscriptions": ["AS64500", "192.0.2.0/25"]},
        {"email": "noc@c.example", "opted_out": True},
    ]
    code, out, _ = cli("subscriptions", "--store", str(store))
    assert code == 0 and "cert@fr.example" in out and "(opted out)" in out
    code, out, _ = cli("unsubscribe", "ops@a.example", "--cidr", "192.0.2.0/25", "--store", str(store))
    assert code == 0 and "1 subscription(s) removed" in out
    assert ("ops@a.example", "asn", "64500") in subscriptions(store)


def test_dry_run_writes_messages_and_leaves_the_ledger_alone(store: Path, tmp_path: Path) -> None:
    data = attribution_files(tmp_path)
    cli("subscribe", "ops@a.example", "--asn", "64500", "--store", str(store))
    cli("unsubscribe", "noc@c.example", "--store", str(store))  # an abuse contact who opted out
    out_dir = tmp_path / "out"
    code, out, err = cli(
        "notify", "--store", str(store), "--dry-run", str(out_dir), "--abuse-contacts", "--abuse-lang", "fr",
        "--iptoasn", str(data.iptoasn), "--contacts", str(data.contacts),
    )  # fmt: skip
    assert code == 0, err
    files = sorted(p.name for p in out_dir.iterdir())
    assert (
        len(files) == 2
        and files[0].endswith("--abuse@d.example.eml")
        and files[1].endswith("--ops@a.example.eml")
    )
    assert out.count("dry-run\t") == 2 and "2 dry-run" in err
    abuse = email.message_from_bytes((out_dir / files[0]).read_bytes(), policy=email.policy.default)
    assert (
        abuse["Content-Language"] == "fr" and abuse["From"] == "cleartext scanner <cleartext@example.invalid>"
    )
    with open_store(str(store)) as st:
        assert NotifyStore(st).ledger() == []


@pytest.mark.parametrize("operator", ["ISP", "CERT Example", "X" * 60])
def test_the_subject_starts_on_the_subject_line(store: Path, tmp_path: Path, operator: str) -> None:
    """Python folds a header that fits on a line of its own right after "Subject:"; ours never do."""
    data = attribution_files(tmp_path)
    cli("subscribe", "ops@a.example", "--asn", "64500", "--store", str(store))
    out_dir = tmp_path / "out"
    code, _, err = cli("notify", "--store", str(store), "--dry-run", str(out_dir), "--operator", operator,
                       "--iptoasn", str(data.iptoasn))  # fmt: skip
    assert code == 0, err
    (eml,) = out_dir.iterdir()
    raw = eml.read_bytes().decode("ascii")
    head = raw.split("\r\n\r\n", 1)[0]
    subject = re.search(r"^Subject:.*?(?=\r\n[^ ])", head, re.MULTILINE | re.DOTALL)
    assert subject, head
    lines = subject.group(0).split("\r\n")
    assert lines[0].startswith(f"Subject: [{operator[:20]}"), lines
    if len(operator) < 60:  # a word longer than a line cannot be folded
        assert all(len(x) <= 78 for x in lines), lines
    parsed = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert parsed["Subject"].startswith(f"[{operator}] ") and "  " not in parsed["Subject"]


def test_resend_uncertain_names_the_recipients(store: Path, tmp_path: Path) -> None:
    """--resend-uncertain RECIPIENT resends that one assumed-sent message; 'all' every one; a recipient
    without an uncertain message in the scan is a one-line error, and nothing is written."""
    from cleartext.notify.ledger import NewMessage
    from cleartext.notify.run import latest_scan

    data = attribution_files(tmp_path)
    mails = ["a1@a.example", "a2@a.example", "a3@a.example"]
    for mail in mails:
        assert cli("subscribe", mail, "--asn", "64500", "--store", str(store))[0] == 0
    with open_store(str(store)) as st:
        ns, scan = NotifyStore(st), latest_scan(st)
        ns.add(scan, [NewMessage(m, f"<{m}>", "en", "subscription", 1) for m in mails])
        for mail, state in zip(mails, ("assumed-sent", "assumed-sent", "sent"), strict=True):
            assert ns.claim(scan, mail) is not None
            ns.mark(scan, mail, state, code=250 if state == "sent" else None)

    def dry(*resend: str) -> tuple[int, list[str], str]:
        out = tmp_path / f"out-{len(list(tmp_path.iterdir()))}"
        args = [a for mail in resend for a in ("--resend-uncertain", mail)]
        code, _, err = cli("notify", "--store", str(store), "--dry-run", str(out),
                           "--iptoasn", str(data.iptoasn), *args)  # fmt: skip
        names = sorted(p.name.split("--")[1][: -len(".eml")] for p in out.iterdir()) if out.exists() else []
        return code, names, err

    assert dry()[:2] == (0, [])
    assert dry("A2@a.example")[:2] == (0, ["a2@a.example"])
    assert dry("all")[:2] == (0, ["a1@a.example", "a2@a.example"])
    for mail, why in (("a3@a.example", "(sent)"), ("nobody@a.example", "(no message)")):
        code, names, err = dry(mail)
        assert code == 2 and names == [] and err.count("\n") == 1
        assert err.startswith(f"cleartext: error: --resend-uncertain {mail}: scan ") and why in err
    code, _, err = dry("not an address")
    assert code == 2 and "invalid --resend-uncertain address" in err
