"""What was known when: the options of a feature request and the rows they ask for.

A feature row is keyed by ``(asset, origin O, target T)``, ``h = (T - O) / 1h`` in
``0..168``. ``as_known`` sets which version of each value a row sees: ``"latest"``
(everything stored now), ``"origin"`` (as known at the row's own ``O``) or a time ``K``
(epoch us: the data as it stood at ``K``). Rows without any of these options are the
``h = 0``, ``"latest"`` rows of the plain pipeline.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from aihub.errors import InvalidInput
from aihub.timeutil import HOUR_US, is_valid_timezone, to_us

MAX_HORIZON = 168
LATEST = 1 << 62  # "known by" of a row that sees everything stored
AsKnown = str | int  # "latest" | "origin" | K (epoch us)
_AT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class OriginSchedule:
    """Origins every ``every_hours`` from local ``at`` in ``timezone`` (DST-aware)."""

    every_hours: int = 1
    at: str = "00:00"
    timezone: str = "UTC"

    def to_dict(self) -> dict[str, object]:
        return {"every_hours": self.every_hours, "at": self.at, "timezone": self.timezone}


@dataclass(frozen=True, slots=True)
class Knowledge:
    """The options of a request: origin schedule (exports), horizons and ``as_known``."""

    horizons: tuple[int, ...] = (0,)
    as_known: AsKnown = "latest"
    origins: OriginSchedule | None = None

    def to_dict(self) -> dict[str, object]:
        known: object = self.as_known
        if isinstance(known, int):
            from aihub.timeutil import from_us, iso

            known = iso(from_us(known))
        return {
            "origins": self.origins.to_dict() if self.origins else None,
            "horizons": list(self.horizons),
            "as_known": known,
        }


def parse_as_known(value: str | datetime | None) -> AsKnown:
    """``"latest"`` (default), ``"origin"`` or a zoned timestamp (as epoch us)."""
    if value is None or value == "latest":
        return "latest"
    if value == "origin":
        return "origin"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise InvalidInput("as_known: a timestamp needs a timezone")
        return to_us(value)
    try:
        ts = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        ts = None
    if ts is None or ts.tzinfo is None:
        raise InvalidInput(
            "as_known: must be 'latest', 'origin' or an ISO 8601 timestamp with a zone"
        )
    return to_us(ts)


def parse_horizons(value: Sequence[int] | dict[str, int] | None) -> tuple[int, ...]:
    """A list of hours or ``{"min": a, "max": b}`` (inclusive), each in 0..168."""
    if value is None:
        return (0,)
    if isinstance(value, dict):
        if set(value) != {"min", "max"}:
            raise InvalidInput('horizons: give a list or {"min": a, "max": b}')
        lo, hi = value["min"], value["max"]
        if not all(type(v) is int for v in (lo, hi)) or lo > hi:
            raise InvalidInput("horizons: min and max must be integers with min <= max")
        hours = list(range(lo, hi + 1))
    else:
        hours = list(value)
        if not hours or not all(type(v) is int for v in hours):
            raise InvalidInput("horizons: a non-empty list of integers")
    if min(hours) < 0 or max(hours) > MAX_HORIZON:
        raise InvalidInput(f"horizons: each must be between 0 and {MAX_HORIZON}")
    return tuple(sorted(set(hours)))


def parse_schedule(
    every_hours: int | None, at: str | None, timezone: str | None
) -> OriginSchedule:
    every = 1 if every_hours is None else every_hours
    if type(every) is not int or every < 1 or 24 % every:
        raise InvalidInput("origins.every_hours: must divide 24 (1, 2, 3, 4, 6, 8, 12, 24)")
    at = at or "00:00"
    m = _AT.match(at)
    if m is None:
        raise InvalidInput("origins.at: local time as HH:MM")
    tz = timezone or "UTC"
    if not is_valid_timezone(tz):
        raise InvalidInput(f"origins.timezone: '{tz}' is not an IANA timezone name")
    return OriginSchedule(every, at, tz)


def schedule_origins(schedule: OriginSchedule, start: int, end: int) -> list[int]:
    """Origins (epoch us, on UTC hour boundaries) in ``[start, end)``: local ``at`` and
    every ``every_hours`` after it on each local day. A local time the DST switch skips
    has no origin; one it repeats has the earlier."""
    hour, minute = (int(p) for p in schedule.at.split(":"))
    first_day = pl.Series([start - 2 * 24 * HOUR_US]).cast(pl.Datetime("us", "UTC"))
    last_day = pl.Series([end + 2 * 24 * HOUR_US]).cast(pl.Datetime("us", "UTC"))
    days = pl.date_range(
        first_day.dt.convert_time_zone(schedule.timezone).dt.date()[0],
        last_day.dt.convert_time_zone(schedule.timezone).dt.date()[0],
        "1d",
        eager=True,
    )
    slots = [hour * 60 + minute + i * schedule.every_hours * 60
             for i in range(24 // schedule.every_hours)]
    local = (
        pl.DataFrame({"day": days})
        .join(pl.DataFrame({"minutes": [s % (24 * 60) for s in slots]}), how="cross")
        .select(
            (pl.col("day").cast(pl.Datetime("us")) + pl.duration(minutes=pl.col("minutes")))
            .dt.replace_time_zone(schedule.timezone, ambiguous="earliest", non_existent="null")
            .dt.epoch("us")
            .alias("o")
        )
        .drop_nulls()
        .filter((pl.col("o") >= start) & (pl.col("o") < end) & (pl.col("o") % HOUR_US == 0))
        .unique()
        .sort("o")
    )
    return local.get_column("o").to_list()


def knowledge_options(
    *,
    every_hours: int | None = None,
    at: str | None = None,
    timezone: str | None = None,
    horizons: Sequence[int] | dict[str, int] | None = None,
    as_known: str | datetime | None = None,
    origins_given: bool = False,
) -> Knowledge | None:
    """An export request's options, or None when it gives none of them (today's rows)."""
    if not origins_given and horizons is None and as_known is None:
        return None
    return Knowledge(
        horizons=parse_horizons(horizons),
        as_known=parse_as_known(as_known),
        origins=parse_schedule(every_hours, at, timezone),
    )


def describe(options: dict[str, Any] | None) -> str:
    """An export's options in a few words (``24h from 10:00 Europe/Berlin, h 14..37,
    as known at origin``); ``-`` for none."""
    if not options:
        return "-"
    o = options.get("origins") or {}
    hs = list(options.get("horizons") or [0])
    span = f"{hs[0]}..{hs[-1]}" if hs == list(range(hs[0], hs[-1] + 1)) else ",".join(map(str, hs))
    return (f"{o.get('every_hours')}h from {o.get('at')} {o.get('timezone')}, h {span}, "
            f"as known {options.get('as_known')}")


def parse_horizon_text(text: str) -> list[int] | dict[str, int]:
    """``"14..37"`` or ``"0,1,24"`` (the CLI's ``--horizons``)."""
    try:
        if ".." in text:
            lo, hi = text.split("..", 1)
            return {"min": int(lo), "max": int(hi)}
        return [int(p) for p in text.split(",") if p.strip()]
    except ValueError as exc:
        raise InvalidInput(f"--horizons: '{text}' is not like 14..37 or 0,1,24") from exc
