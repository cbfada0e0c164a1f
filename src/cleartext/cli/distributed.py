"""Commands of distributed scanning: `worker`, `status`, `requeue`.

(The coordinator is `cleartext scan ... --broker URL`, in :mod:`cleartext.cli.scan`.) Brokers and
stores are named by ``--broker`` / ``--store`` or by $CLEARTEXT_BROKER / $CLEARTEXT_STORE: a worker
started by systemd keeps its passwords out of the process list that way. Bad URLs are one line on
stderr and exit 2.
"""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from cleartext.cli._options import JsonOpt, StoreOpt, fail, open_store

BROKER_ENV = "CLEARTEXT_BROKER"

BrokerOpt = Annotated[
    str | None,
    typer.Option(
        "--broker",
        metavar="URL",
        help=f"Redis of the scan queue, redis://HOST:PORT/DB (default: ${BROKER_ENV}).",
    ),
]


def _urls(broker: str | None, store: str | None) -> tuple[str, str]:
    from cleartext.distributed.common import check_broker_url, check_store_url
    from cleartext.store import STORE_ENV

    broker = broker or os.environ.get(BROKER_ENV)
    if not broker:
        fail(f"--broker (or ${BROKER_ENV}) is required: redis://HOST[:PORT][/DB]")
    return check_broker_url(broker), check_store_url(store or os.environ.get(STORE_ENV))


def worker(
    broker: BrokerOpt = None,
    store: StoreOpt = None,
    processes: Annotated[
        int, typer.Option("--processes", "-p", help="Worker processes (default: one per CPU).", min=0)
    ] = 0,
    threads: Annotated[
        int, typer.Option("--threads", "-t", help="Shards run at once by each process.", min=1)
    ] = 1,
    concurrency: Annotated[
        int,
        typer.Option(help="Endpoints in flight per shard (0: sized to the file-descriptor limit).", min=0),
    ] = 0,
    patience: Annotated[
        float,
        typer.Option(
            help="Seconds to wait for an unreachable Redis or store before handing a shard back.", min=1
        ),
    ] = 600.0,
) -> None:
    """Run shards of distributed scans from the broker's queue until SIGTERM or Ctrl-C.

    The store is the scan's central PostgreSQL store (--store or $CLEARTEXT_STORE).
    """
    from cleartext.distributed.worker import child_command, cpu_count, preflight, serve, supervise
    from cleartext.scan import auto_concurrency
    from cleartext.store import STORE_ENV

    broker_url, store_url = _urls(broker, store)
    problem = preflight(store_url, patience)  # once, before any process starts: a refused login is final
    if problem is not None:
        fail(problem)
    count = processes or cpu_count()
    if count > 1:
        env = {BROKER_ENV: broker_url, STORE_ENV: store_url}
        raise typer.Exit(supervise(child_command(threads, concurrency, patience), count, env))
    per_shard = concurrency or max(16, auto_concurrency(0) // threads)
    raise typer.Exit(serve(broker_url, store_url, threads=threads, concurrency=per_shard, patience=patience))


def status(
    scan_id: Annotated[
        str,
        typer.Argument(
            metavar="SCAN", help="The scan id (`cleartext scans` lists them; 'latest': the newest)."
        ),
    ],
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Progress of a scan: shards done, running and queued, endpoints, counts by status, rate, ETA."""
    from cleartext.distributed.status import render, scan_status

    with open_store(store, create=False) as opened:
        result = scan_status(opened, opened.resolve_scan(scan_id))
    print(json.dumps(result.to_dict()) if as_json else render(result))


def requeue(
    scan_id: Annotated[
        str, typer.Argument(metavar="SCAN", help="The distributed scan's id ('latest': the newest scan).")
    ],
    broker: BrokerOpt = None,
    store: StoreOpt = None,
    everything: Annotated[
        bool, typer.Option("--all", help="Every shard not done, even those a live worker holds.")
    ] = False,
) -> None:
    """Queue again the shards of a distributed scan that the broker lost (queued, or stalled).

    The store is the scan's central PostgreSQL store (--store or $CLEARTEXT_STORE).
    """
    from cleartext.distributed.coordinator import requeue as run

    broker_url, store_url = _urls(broker, store)
    raise typer.Exit(run(scan_id, broker_url, store_url, everything=everything))
