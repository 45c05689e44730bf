"""A simulated EventBridge scheduler: the topology's schedules fired by a clock that only moves when told.

moto never fires scheduled rules, and a local run should not wait for real minutes, so
:meth:`Scheduler.advance` computes every firing due up to a time and invokes the target functions in
time order (ties by schedule name), setting the clock to each firing first so handlers see the
time they would have run at.

Supported expressions (times are UTC, as in EventBridge):

* ``rate(N unit)``: unit ``minute``/``hour``/``day`` (singular for N = 1, plural otherwise, as AWS
  requires). A rate fires at ``anchor + k * period`` for k >= 1; the anchor is the scheduler's
  start, as a rate rule counts from its creation.
* ``cron(minutes hours day-of-month month day-of-week year)``: AWS's six fields. Each field takes
  ``*``, a value, a range ``a-b``, a list ``a,b``, and steps ``*/n``, ``a/n``, ``a-b/n``; months take
  ``JAN``-``DEC``, days of week ``SUN``-``SAT`` or 1-7 (1 = Sunday, AWS's numbering). One of
  day-of-month and day-of-week must be ``?``. Not supported (rejected): ``L``, ``W`` and ``#``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from desk.clock import FixedClock
from desk.topology import ScheduleSpec

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_UNITS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}
_MONTHS = {
    m: i + 1 for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"))
}
_DAYS = {d: i + 1 for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_NAMESPACE = uuid.UUID("6f1c2b1e-1d52-4c1b-9a57-6b8f4f0f5a11")  # scheduled event ids are replayable


class Expression(Protocol):
    def next_after(self, t: datetime) -> datetime: ...


@dataclass(frozen=True)
class Rate:
    period: timedelta
    anchor: datetime

    def next_after(self, t: datetime) -> datetime:
        elapsed = max(timedelta(0), t - self.anchor)
        return self.anchor + self.period * (elapsed // self.period + 1)


def _field(text: str, low: int, high: int, names: Mapping[str, int] | None = None) -> frozenset[int]:
    values: set[int] = set()

    def value(token: str) -> int:
        number = (names or {}).get(token.upper())
        if number is None:
            if not token.isdigit():
                raise ValueError(f"unsupported cron token {token!r}")
            number = int(token)
        if not low <= number <= high:
            raise ValueError(f"cron value {number} outside {low}-{high}")
        return number

    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"bad cron step in {part!r}")
        if base == "*":
            start, end = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            start, end = value(a), value(b)
        else:
            start = value(base)
            end = high if step else start  # "a/n" runs from a to the field's end
        values.update(range(start, end + 1, step or 1))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None  # None: "?" (day-of-week decides)
    months: frozenset[int]
    weekdays: frozenset[int] | None  # AWS numbering, 1 = Sunday; None: "?"
    years: frozenset[int]

    @classmethod
    def parse(cls, body: str) -> Cron:
        fields = body.split()
        if len(fields) != 6:
            raise ValueError(f"cron needs 6 fields (AWS form), got {len(fields)}: {body!r}")
        minute, hour, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise ValueError("exactly one of day-of-month and day-of-week must be '?'")
        return cls(
            minutes=_field(minute, 0, 59),
            hours=_field(hour, 0, 23),
            days=None if dom == "?" else _field(dom, 1, 31),
            months=_field(month, 1, 12, _MONTHS),
            weekdays=None if dow == "?" else _field(dow, 1, 7, _DAYS),
            years=_field(year, 1970, 2199),
        )

    def _date_matches(self, t: datetime) -> bool:
        if t.year not in self.years or t.month not in self.months:
            return False
        if self.days is not None:
            return t.day in self.days
        # isoweekday is Monday=1..Sunday=7; AWS counts Sunday=1..Saturday=7.
        return self.weekdays is not None and (t.isoweekday() % 7) + 1 in self.weekdays

    def next_after(self, t: datetime) -> datetime:
        candidate = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = candidate + timedelta(days=366 * 5)
        while candidate < limit:
            if not self._date_matches(candidate):
                candidate = candidate.replace(hour=0, minute=0) + timedelta(days=1)
            elif candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0) + timedelta(hours=1)
            elif candidate.minute not in self.minutes:
                candidate += timedelta(minutes=1)
            else:
                return candidate
        raise ValueError("cron expression never fires in the next five years")


def parse_expression(expression: str, anchor: datetime) -> Expression:
    """A ``rate(...)`` or ``cron(...)`` expression (see the module docstring for the subset)."""
    rate = _RATE.match(expression)
    if rate:
        count, unit = int(rate.group(1)), rate.group(2)
        if count < 1 or (count == 1) != (not unit.endswith("s")):
            raise ValueError(f"{expression!r}: AWS wants 'rate(1 unit)' or 'rate(N units)' with N > 1")
        return Rate(_UNITS[unit.removesuffix("s")] * count, anchor.astimezone(UTC))
    if expression.startswith("cron(") and expression.endswith(")"):
        return Cron.parse(expression[5:-1])
    raise ValueError(f"unsupported schedule expression {expression!r}")


@dataclass(frozen=True)
class Firing:
    at: datetime
    schedule: str
    function: str
    event: dict[str, Any]
    error: str | None = None


@dataclass
class Scheduler:
    """Fires ``schedules`` against ``invoke(function, event)`` as ``clock`` is advanced."""

    schedules: Mapping[str, ScheduleSpec]
    clock: FixedClock
    invoke: Callable[[str, Mapping[str, Any]], Any]
    region: str = "us-east-1"
    account_id: str = "123456789012"
    fired: list[Firing] = field(default_factory=list)

    def __post_init__(self) -> None:
        start = self.clock.now()
        self._expressions = {n: parse_expression(s.expression, start) for n, s in self.schedules.items()}
        self._next = {n: e.next_after(start) for n, e in self._expressions.items()}

    def due(self, until: datetime) -> list[tuple[datetime, str]]:
        """The ``(time, schedule)`` firings in ``(now, until]``, in order, without running them."""
        pending: list[tuple[datetime, str]] = []
        for name, expression in self._expressions.items():
            at = self._next[name]
            while at <= until:
                pending.append((at, name))
                at = expression.next_after(at)
        return sorted(pending)

    def advance(self, to: datetime) -> list[Firing]:
        """Run every firing due up to ``to`` (clock set to each in turn), then leave the clock at ``to``.

        A handler error is recorded on its :class:`Firing` and does not stop the clock: EventBridge
        invokes scheduled targets asynchronously, so one failure does not hold back the others.
        """
        to = to.astimezone(UTC)
        if to < self.clock.now():
            raise ValueError("the simulated clock never moves backwards")
        firings: list[Firing] = []
        for at, name in self.due(to):
            self.clock.set(at)
            spec = self.schedules[name]
            event = self.scheduled_event(name, at)
            error: str | None = None
            try:
                self.invoke(spec.function, event)
            except Exception as exc:  # recorded, as an async invoke's failure would be
                error = f"{type(exc).__name__}: {exc}"
            firings.append(Firing(at, name, spec.function, event, error))
            self._next[name] = self._expressions[name].next_after(at)
        self.clock.set(to)
        self.fired += firings
        return firings

    def scheduled_event(self, schedule: str, at: datetime) -> dict[str, Any]:
        """The event EventBridge sends a scheduled rule's target (``detail-type`` "Scheduled Event")."""
        return {
            "version": "0",
            "id": str(uuid.uuid5(_NAMESPACE, f"{schedule}@{at.isoformat()}")),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self.account_id,
            "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": [f"arn:aws:events:{self.region}:{self.account_id}:rule/{schedule}"],
            "detail": {},
        }
