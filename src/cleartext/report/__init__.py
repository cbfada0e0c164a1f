"""Report: sum up a scan for the people who act on it — statistics, an HTML page, Shadowserver-style CSV.

Every report is a pure function over a stream of ``(Record, Attribution)`` pairs, consumed once, so the
same code serves a JSON Lines file of a thousand records and a store of ten million. Where the records
come from (files now, the store later) is the CLI's business, not this package's.
"""

from cleartext.report.stats import Stats, StatsBuilder, Trends, compute, trends

__all__ = ["Stats", "StatsBuilder", "Trends", "compute", "trends"]
