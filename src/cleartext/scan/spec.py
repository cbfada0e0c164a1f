"""ScanSpec: what one scan is — its targets, ports, order and manners, and how it probes.

The one shape every runner of a scan reads: the CLI builds it from `scan`'s options, the job
(:mod:`.job`) runs it on this machine, the worker processes (:mod:`.workers`) receive it without its
targets, and the distributed coordinator turns it into the plan its workers share. What is *not* the
scan but one run of it (where the output goes, a resumed run, a progress bar, how many endpoints in
flight, how many processes) is :class:`~cleartext.scan.job.RunOptions`.

From it come the two things that must never drift apart: the parameters the store keeps about the
scan (:meth:`ScanSpec.params`) and the fingerprint that makes ``--resume`` refuse another scan's state
(:meth:`ScanSpec.fingerprint`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cleartext.probe import ProbeSettings
from cleartext.scan.checkpoint import fingerprint
from cleartext.targets import PortSpec, TargetSpec


@dataclass(frozen=True)
class ScanSpec:
    targets: tuple[str, ...]  # as typed, or the list option that named the endpoints: fingerprint, store
    specs: tuple[TargetSpec, ...]  # the targets parsed (empty for an endpoint list or MX domains)
    ports: tuple[PortSpec, ...]
    ports_text: str  # --ports as given: the store keeps what the operator asked for
    settings: ProbeSettings = field(default_factory=ProbeSettings)
    allow_reserved: bool = False
    seed: int | None = None  # None: a random one, chosen when the scan starts
    shard: int = 0
    shards: int = 1
    rate: float | None = None  # new connections per second, for the whole scan
    per_host: int = 4  # connections at once per address (0: no limit)
    exclude: str | None = None  # the opt-out file, re-read when it changes
    # An endpoint list instead of targets (scan --endpoints): exactly those endpoints, streamed.
    endpoint_list: str | None = None  # a path, or "-" for stdin
    list_format: str = "auto"
    skip_bad_lines: bool = False
    # Mail domains instead (scan --mx): their MX endpoints are listed first, then scanned as a list.
    mx_domains: str | None = None

    @classmethod
    def of(
        cls,
        targets: Sequence[str],
        specs: Sequence[TargetSpec],
        ports: Sequence[PortSpec],
        ports_text: str,
        **rest: Any,
    ) -> ScanSpec:
        return cls(tuple(targets), tuple(specs), tuple(ports), ports_text, **rest)

    def params(self) -> dict[str, object]:
        """What the store keeps about this scan (its scans row), beside the seed and shard it adds."""
        settings = self.settings
        return {
            "targets": list(self.targets),
            "ports": self.ports_text,
            "allow_reserved": self.allow_reserved,
            "rate": self.rate,
            "per_host": self.per_host,
            "max_connections": settings.max_connections,
            "ehlo_name": settings.ehlo_name,
            **({"discover": True} if settings.discover else {}),
            **({"login_probe": settings.login_probe} if settings.login_probe != "cancel" else {}),
        }

    def fingerprint(self) -> str:
        """What a resumed run must share with the run that wrote the state: the same endpoints, in the
        same order, cut into the same shards."""
        return fingerprint(
            {
                "targets": list(self.targets),
                "ports": [[p.port, p.protocol.value, p.tls_mode.value] for p in self.ports],
                "shard": self.shard,
                "shards": self.shards,
                "allow_reserved": self.allow_reserved,
            }
        )

    def for_worker(self, workers: int) -> ScanSpec:
        """The spec one of ``workers`` probing processes needs: its manners and probe settings, its share
        of the rate; not the targets, which the parent walks and hands out endpoint by endpoint."""
        return dataclasses.replace(
            self,
            targets=(),
            specs=(),
            rate=self.rate / workers if self.rate else None,
            endpoint_list=None,
            mx_domains=None,
        )
