"""A small CloudWatch EMF emitter: counters and gauges flushed as one JSON line per interval.

Powertools' Metrics flushes per Lambda invocation; a long-lived service flushes on a timer instead,
so counters are kept here and written as EMF (which CloudWatch turns into metrics from the logs).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TextIO

from desk.observability import NAMESPACE, SERVICE

__all__ = ["Emf"]


class Emf:
    def __init__(self, *, out: TextIO | None = None, wall_ms: Callable[[], int] | None = None) -> None:
        self.counters: Counter[tuple[str, str]] = Counter()  # (metric, venue) -> count since last flush
        self.totals: Counter[tuple[str, str]] = Counter()  # the same since start (diagnostics and tests)
        self.gauges: dict[tuple[str, str], float] = {}
        self.lag_ms_max: dict[str, float] = {}
        self._out = out
        self._wall_ms = wall_ms or (lambda: int(time.time() * 1000))
        self._since = time.monotonic()

    def count(self, name: str, venue: str, value: int = 1) -> None:
        self.counters[(name, venue)] += value
        self.totals[(name, venue)] += value

    def gauge(self, name: str, venue: str, value: float) -> None:
        self.gauges[(name, venue)] = value

    def lag(self, venue: str, lag_ms: float) -> None:
        self.lag_ms_max[venue] = max(self.lag_ms_max.get(venue, 0.0), lag_ms)

    def flush(self) -> list[dict[str, Any]]:
        """Write one EMF document per venue; returns them (tests read them)."""
        elapsed = max(time.monotonic() - self._since, 1e-9)
        venues = {v for _, v in self.counters} | {v for _, v in self.gauges} | set(self.lag_ms_max)
        docs = []
        for venue in sorted(venues):
            values: dict[str, float] = {n: c for (n, v), c in self.counters.items() if v == venue}
            values |= {n: g for (n, v), g in self.gauges.items() if v == venue}
            values["MessagesPerSecond"] = values.get("Messages", 0) / elapsed
            if venue in self.lag_ms_max:
                values["VenueToReceiveLagMsMax"] = self.lag_ms_max[venue]
            units = {n: "Count/Second" if n == "MessagesPerSecond" else "Milliseconds" if "Ms" in n else "Count"
                     for n in values}  # fmt: skip
            doc: dict[str, Any] = {
                "_aws": {"Timestamp": self._wall_ms(), "CloudWatchMetrics": [{"Namespace": NAMESPACE,
                         "Dimensions": [["service", "venue"]],
                         "Metrics": [{"Name": n, "Unit": u} for n, u in units.items()]}]},
                "service": SERVICE, "venue": venue, **values,
            }  # fmt: skip
            docs.append(doc)
            print(json.dumps(doc), file=self._out or sys.stdout, flush=True)
        self.counters.clear()
        self.lag_ms_max.clear()
        self._since = time.monotonic()
        return docs
