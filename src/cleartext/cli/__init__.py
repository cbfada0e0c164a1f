"""The `cleartext` command: the root app, its commands in pipeline order, and the one place errors end.

Each command lives in a module of this package named for what it does (``scan``, ``check``, ``show``,
``store``, ``report``, ``attribute``, ``data``, ``notify``, ``web``, ``distributed``); none of them knows
the app. This module builds the app and registers their functions, in the order ``--help`` lists them —
the pipeline's order — and :func:`main` runs it. Options that several commands take are declared once in
:mod:`._options`.

Errors. Every error a user can act on is a :class:`~cleartext.errors.CleartextError`; the root group
catches it around whichever command runs and prints ``cleartext: error: <message>`` with the error's exit
status, so commands raise instead of catching and reprinting. Errors typer and click find themselves (a
bad number, a missing argument, an unknown option) become one line and exit 2 in :func:`main`, not a box.

Start-up. A command module imports typer and :mod:`._options` only; everything a command needs (the
scanner, the store and DuckDB, FastAPI, the enricher) is imported inside it. So `cleartext version` and
`--help` load no more than they show.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperGroup

from cleartext.cli import attribute, check, data, distributed, notify, report, scan, show, store, web
from cleartext.errors import EXIT_USAGE, CleartextError


class _Root(TyperGroup):
    """The root group: a CleartextError from any command is one line on stderr and its exit status."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except CleartextError as exc:
            print(f"cleartext: error: {exc}", file=sys.stderr)
            raise typer.Exit(exc.exit_code) from None


_SETTINGS = {"help_option_names": ["-h", "--help"]}
_HELP = "Find mail servers that let a password or mail cross the network in clear."

# The pipeline, in order: scan and check, keep, attribute, report, notify, serve; then distributed
# scanning, and the command's own facts. A group is (its help, its commands).
_COMMANDS: dict[str, Callable[..., Any] | tuple[str, dict[str, Callable[..., Any]]]] = {
    "scan": scan.scan,
    "check": check.check,
    "show": show.show,
    "scans": store.scans,
    "diff": store.diff,
    "export": store.export,
    "import": store.import_,
    "attribute": attribute.attribute,
    "data": (
        "Download and refresh the attribution data files (RIR, iptoasn, RPSL, MMDB).",
        {"fetch": data.fetch, "status": data.status, "sources": data.sources},
    ),
    "report": report.report,
    "subscribe": notify.subscribe,
    "unsubscribe": notify.unsubscribe,
    "subscriptions": notify.subscriptions,
    "notify": notify.notify,
    "notifications": notify.notifications,
    "serve": web.serve,
    "token": (
        "API tokens for `cleartext serve`: create (shown once), list, revoke.",
        {"create": web.token_create, "list": web.token_list, "revoke": web.token_revoke},
    ),
    "worker": distributed.worker,
    "status": distributed.status,
    "requeue": distributed.requeue,
    "version": show.version,
    "schema": show.schema,
}


def build(only: str | None = None) -> typer.Typer:
    """The app with every command, or with command ``only`` (and nothing else to build when it runs).

    Typer turns every parameter of every registered command into a click parameter (with a pydantic
    validator) each time the program starts; `cleartext NAME ...` builds only NAME's, which is most of
    what `cleartext version` would otherwise spend. With ``only``, the root keeps a callback so that it
    stays a group and NAME keeps its place in usage lines and errors (`cleartext NAME ...`).
    """
    root = typer.Typer(
        cls=_Root, add_completion=False, no_args_is_help=True, help=_HELP, context_settings=_SETTINGS
    )
    if only is not None:
        root.callback()(_no_options)
    for name, entry in _COMMANDS.items():
        if only is not None and name != only:
            continue
        if isinstance(entry, tuple):
            group_help, commands = entry
            group = typer.Typer(no_args_is_help=True, help=group_help, context_settings=_SETTINGS)
            for sub, function in commands.items():
                group.command(sub)(function)
            root.add_typer(group, name=name)
        else:
            root.command(name)(entry)
    return root


def _no_options() -> None:
    """Find mail servers that let a password or mail cross the network in clear."""


app = build()


def main() -> None:
    """The `cleartext` command. Errors typer and click find themselves (a bad number, a missing argument,
    an unknown option) become one line and exit 2 like every other usage error, not a box of five."""
    first = sys.argv[1] if len(sys.argv) > 1 else ""
    runs = build(first) if first in _COMMANDS else app  # `cleartext NAME ...`: only NAME is built
    try:
        code = runs(standalone_mode=False)
    except Exception as exc:
        # By class name: typer 0.2x vendors click (typer._click), older typers use the click package.
        kinds = {cls.__name__ for cls in type(exc).__mro__}
        if "ClickException" in kinds:
            # NoArgsIsHelpError (`cleartext` alone) has printed the help already; typer leaves it so too.
            if "NoArgsIsHelpError" not in kinds:
                print(f"cleartext: error: {_one_line(exc)}", file=sys.stderr)
            raise SystemExit(getattr(exc, "exit_code", EXIT_USAGE)) from None
        if "Abort" in kinds:
            print("cleartext: aborted", file=sys.stderr)
            raise SystemExit(1) from None
        raise
    raise SystemExit(code if isinstance(code, int) else 0)


def _one_line(exc: Exception) -> str:
    """A click error as one line: its message, lower-cased like ours, and where to read more."""
    format_message = getattr(exc, "format_message", None)
    message = format_message() if callable(format_message) else str(exc)
    message = " ".join(str(message).split()).rstrip(".")
    message = message[:1].lower() + message[1:]
    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        message += f" (see {ctx.command_path} --help)"
    return message


__all__ = ["app", "main"]
