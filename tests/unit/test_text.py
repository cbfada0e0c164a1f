"""Unit tests for the sanitiser every server-sent string passes through."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from cleartext.text import join_lines, sanitize


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


def test_joined_greeting_lines_are_escaped_once() -> None:
    """A greeting's lines are sanitised one by one; joining them must not escape their escapes again."""
    lines = [sanitize(b"220-NUL\x00bytes"), sanitize(b"220 back\\slash")]
    assert join_lines(lines, 2048) == "220-NUL\\x00bytes\\x0a220 back\\\\slash"
    long = join_lines([sanitize(b"a" * 10 + b"\x00" * 10)], 16)
    assert long == "aaaaaaaaaa\\x00…"  # cut between escapes, never inside one
    assert len(join_lines(["x" * 5000], 2048)) == 2048
