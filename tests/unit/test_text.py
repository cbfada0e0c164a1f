"""Unit tests for the sanitiser every server-sent string passes through."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cleartext.text import sanitize


def test_controls_escaped_and_bounded() -> None:
    assert sanitize(b"ok\x1b[2Jx\x00") == "ok\\x1b[2Jx\\x00"
    assert sanitize("a" * 5000, 10) == "a" * 10 + "…"
    assert sanitize(b"\xff\xfe") == "\ufffd\ufffd"
    assert sanitize("right\u202eto-left") == "right\\u202eto-left"
    assert sanitize("a\\b") == "a\\\\b"  # printable, but a backslash could forge an escape
    assert sanitize("x" * 10, 10) == "x" * 10  # exactly at the bound: kept whole
    assert sanitize("220 mail.example.com ESMTP") == "220 mail.example.com ESMTP"


@given(st.one_of(st.binary(max_size=3000), st.text(max_size=3000)), st.integers(min_value=1, max_value=500))
def test_sanitized_text_is_printable_and_bounded(data: bytes | str, limit: int) -> None:
    out = sanitize(data, limit)
    assert len(out) <= limit + 1
    assert all(ch.isprintable() or ch == "…" for ch in out)
