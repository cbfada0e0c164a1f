"""The scan: a space of endpoints walked in a seeded order, each one probed and judged, the records kept.

The package's door, for the CLI, the check use case, the web self-check and the distributed workers:

- :class:`ScanSpec` — what one scan is (:mod:`.spec`), and :class:`RunOptions` — one run of it;
- :func:`run_job` — a whole ``cleartext scan`` run: output, state for ``--resume``, store, signals
  (:mod:`.job`), over the :class:`Engine` (:mod:`.engine`) that walks a :class:`Plan` with at most N
  endpoints in flight, optionally through worker processes (:mod:`.workers`);
- :func:`run_loop` — the event loop every scan runs in (uvloop, the collector set for a long run).

Inside: the order is a keyed permutation (:mod:`.permutation`); the checkpoint (:mod:`.checkpoint`) makes
a resumed run exact; the progress bar or log lines are :mod:`.progress`. Politeness (the rate, the per-host
limit, the opt-out list) is not here but in :mod:`cleartext.politeness`, one layer down: the probe passes
every connection it opens through the gate, so the gate sits below the probe, not above it.
"""

from __future__ import annotations

from cleartext.scan.checkpoint import Tracker
from cleartext.scan.engine import (
    Engine,
    ListedEndpoints,
    Plan,
    auto_concurrency,
    build_space,
    resolve_named,
    run_loop,
)
from cleartext.scan.job import JobAborted, JobError, JobResult, RunOptions, run_job
from cleartext.scan.spec import ScanSpec

__all__ = [
    "Engine",
    "JobAborted",
    "JobError",
    "JobResult",
    "ListedEndpoints",
    "Plan",
    "RunOptions",
    "ScanSpec",
    "Tracker",
    "auto_concurrency",
    "build_space",
    "resolve_named",
    "run_job",
    "run_loop",
]
