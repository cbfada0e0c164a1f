"""The one error base: what the user can act on, said in one line, with the exit status it ends with.

Every error a command can meet on bad input or an unusable resource (a target, a name that does not
resolve, a store, a data file, a state file, a broker, a token, a subscription, an SMTP relay) is a
:class:`CleartextError`. The CLI catches the base once, around every command (``cleartext.cli``), and
prints ``cleartext: error: <message>``; the library raises it with a message fit for that line and never
prints. Errors a module handles itself (a probe's ``Stop``, a protocol violation, an opt-out) are not
CleartextErrors: they never reach the user as errors.
"""

from __future__ import annotations

EXIT_USAGE = 2  # bad input, an unusable file, store or server: nothing (more) was done
EXIT_ABORTED = 1  # a run that had started stopped early; what it wrote is kept


class CleartextError(Exception):
    """An error the user can act on; ``str(error)`` is one line, ``exit_code`` the status it ends with."""

    exit_code: int = EXIT_USAGE


class UsageError(CleartextError):
    """Arguments or options that cannot be used (the CLI's own checks)."""
