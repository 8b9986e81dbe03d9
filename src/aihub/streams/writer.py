"""A micro-batch of MQTT messages into the store: one transaction, then invalidation.

``StreamWriter.write`` parses every message (``payloads``), validates the rows of each
tenant with the HTTP path's own functions (``split_readings``/``split_weather``: each row
stands alone), and in **one** write transaction stores the good rows through
``IngestService`` (per-asset locks), converts cumulative registers with their stored
state (``registers``) and records the dead letters. Only after it returned may the
caller acknowledge the messages. Once committed, the touched assets' online features are
invalidated, so a ``get`` sees the new readings.

If the batch cannot be committed for any reason but an unreachable database, each
message is written on its own and the one that still fails becomes a dead letter: a bad
message never blocks the stream. An unreachable database (``BackendUnavailable``) is
raised: the caller keeps the messages unacknowledged and tries again.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import polars as pl
import sqlalchemy as sa

from aihub.auth.scope import Principal
from aihub.db import write_transaction
from aihub.errors import BackendUnavailable
from aihub.metrics import record_stream_batch
from aihub.names import is_valid_name
from aihub.services.columns import READINGS_COLUMNS, WEATHER_COLUMNS, frame_from_items
from aihub.services.ingest import IngestService
from aihub.services.validation import RowProblem, split_readings, split_weather, with_problems
from aihub.stores.timeseries.base import IngestResult
from aihub.streams.config import Mapping
from aihub.streams.dead_letters import DeadLetter, DeadLetterStore, recorded
from aihub.streams.payloads import decode, to_rows
from aihub.streams.registers import RegisterStore, to_intervals

__all__ = ["BatchResult", "Message", "StreamWriter"]

log = logging.getLogger("aihub.streams")

_ROUTES_KEPT = 200_000  # topics whose routing is remembered
# A topic's layout, tenant, asset or location, and why its messages are refused (or None)
_Route = tuple[Mapping | None, str | None, str, str | None]


@dataclass(slots=True)  # not frozen: made once per message, a frozen init costs more
class Message:
    topic: str
    payload: bytes
    received_at: float = field(default_factory=time.time)  # epoch seconds
    mid: int = 0
    generation: int = 0  # the broker connection it arrived on (acks go to that one)
    qos: int = 1


@dataclass
class BatchResult:
    messages: int = 0
    rows: int = 0  # readings and observations stored (register intervals included)
    dead_letters: int = 0
    dead_messages: int = 0  # messages of which nothing could be stored
    touched: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class _Group:
    """The rows of one (tenant, layout) in a batch, and where each came from."""

    mapping: Mapping
    rows: list[Any] = field(default_factory=list)
    message: list[int] = field(default_factory=list)  # each row's message (in order)
    problems: list[RowProblem] = field(default_factory=list)


@dataclass
class _Plan:
    """What a batch will write: per tenant, the valid readings, weather and register
    totals; and the dead letters (register drops are added in the transaction)."""

    readings: dict[str, list[pl.DataFrame]] = field(default_factory=lambda: defaultdict(list))
    weather: dict[str, list[pl.DataFrame]] = field(default_factory=lambda: defaultdict(list))
    # (layout, valid totals, the message of each valid (asset, ts): the last one naming it)
    registers: dict[str, list[tuple[Mapping, pl.DataFrame, dict[tuple[str, int], int]]]] = \
        field(default_factory=lambda: defaultdict(list))
    dead: list[DeadLetter] = field(default_factory=list)
    bad_messages: set[int] = field(default_factory=set)


def _when(msg: Message) -> datetime:
    return datetime.fromtimestamp(msg.received_at, UTC)


def _describe(p: RowProblem, element: int, single: bool, mapping: Mapping) -> str:
    label = {"ts": mapping.time_field, "value": mapping.value_field}.get(p.field, p.field)
    where = f"field '{label}'" if label else ""
    if not single:
        where = f"element {element}" + (f", {where}" if where else "")
    return f"{where}: {p.reason}" if where else p.reason


class StreamWriter:
    def __init__(
        self,
        *,
        ingest: IngestService,
        mappings: Sequence[Mapping],
        principal: Principal | None = None,
        dead_letters: DeadLetterStore | None = None,
        registers: RegisterStore | None = None,
    ) -> None:
        self.ingest = ingest
        self.engine: sa.Engine = ingest.engine
        self.mappings = tuple(mappings)
        self.principal = principal
        self.dead_letters = dead_letters or DeadLetterStore()
        self.registers = registers or RegisterStore()
        self._routes: dict[str, _Route] = {}

    # -- parse and validate (no database) -------------------------------------------------
    def _route(self, topic: str) -> _Route:
        """The layout, tenant and asset (or location) of ``topic``, and why a message on it
        can't be stored (None if it can); remembered, since a fleet publishes on the same
        topics again and again (the stream's key does not change while it runs)."""
        try:
            return self._routes[topic]
        except KeyError:
            pass
        routed: _Route = (None, None, "", "topic matches no configured layout")
        for m in self.mappings:
            found = m.match(topic)
            if found is None:
                continue
            tenant, thing = found
            if not is_valid_name(tenant):
                routed = (m, None, thing, f"topic: tenant {tenant[:80]!r} is not a valid name")
            elif self.principal is not None and not self.principal.covers(tenant):
                routed = (m, tenant, thing, f"forbidden: the stream's API key may not write "
                                            f"tenant '{tenant}'")
            else:
                routed = (m, tenant, thing, None)
            break
        if len(self._routes) >= _ROUTES_KEPT:
            self._routes.clear()
        self._routes[topic] = routed
        return routed

    def _plan(self, messages: Sequence[Message]) -> _Plan:
        with gc_paused():
            return self._plan_all(messages)

    def _plan_all(self, messages: Sequence[Message]) -> _Plan:
        plan = _Plan()
        groups: dict[tuple[str, int], _Group] = {}  # by tenant and id of the layout
        # Per topic of this batch: its group, tenant and asset (or why it is refused) and,
        # for a strict layout, the id column a plain object gets the topic's asset in.
        by_topic: dict[str, tuple[_Group | None, str | None, str, str | None]] = {}
        single: list[bool] = [False] * len(messages)
        loads = orjson.loads

        def dead(i: int, tenant: str | None, reason: str) -> None:
            m = messages[i]
            plan.dead.append(DeadLetter.of(tenant, m.topic, m.payload, reason, _when(m)))

        def entry(topic: str) -> tuple[_Group | None, str | None, str, str | None]:
            mapping, tenant, thing, refused = self._route(topic)
            if refused is not None or mapping is None or tenant is None:
                return None, tenant, refused or "", None
            group = groups.get((tenant, id(mapping)))
            if group is None:
                group = groups[(tenant, id(mapping))] = _Group(mapping)
            return group, tenant, thing, mapping.id_field if mapping.strict else None

        for i, msg in enumerate(messages):
            found = by_topic.get(msg.topic)
            if found is None:
                found = by_topic[msg.topic] = entry(msg.topic)
            group, tenant, thing, key = found
            if group is None:
                dead(i, tenant, thing)
                continue
            try:
                data = loads(msg.payload)
            except orjson.JSONDecodeError:
                data = None
            if type(data) is dict and key is not None and key not in data:
                # The usual message: one object of the default layout (what ``to_rows``
                # does, inline).
                data[key] = thing
                group.rows.append(data)
                group.message.append(i)
                single[i] = True
                continue
            assert tenant is not None
            if type(data) is dict:
                elements: list[Any] = [data]
                single[i] = True
            elif type(data) is list and data:
                elements = data
            else:  # not JSON to orjson (NaN, say), or not an object or a list of them
                decoded = decode(msg.payload)
                if decoded.error:
                    dead(i, tenant, decoded.error)
                    continue
                elements, single[i] = decoded.elements, decoded.single
            base = len(group.rows)
            shaped = to_rows(group.mapping, thing, elements, group.rows)
            group.message.extend([i] * (len(group.rows) - base))
            if shaped:
                group.problems.extend(RowProblem(base + p.index, p.field, p.reason)
                                      for p in shaped)

        stored_from: set[int] = set()
        for (tenant, _), g in groups.items():
            columns = WEATHER_COLUMNS if g.mapping.kind == "weather" else READINGS_COLUMNS
            frame, parsed = frame_from_items(g.rows, columns)
            # The shaping problems first: they are the element's first.
            frame = with_problems(with_problems(frame, sorted(g.problems, key=lambda p: p.row)),
                                  parsed)
            split = split_weather if g.mapping.kind == "weather" else split_readings
            valid, problems = split(frame)
            bad_rows = set()
            first: dict[int, int] = {}  # each message's first row (its rows are adjacent)
            if problems:
                for r, m in enumerate(g.message):
                    first.setdefault(m, r)
            for p in problems:
                msg_i = g.message[p.row]
                bad_rows.add(p.row)
                dead(msg_i, tenant, _describe(p, p.row - first[msg_i], single[msg_i],
                                              g.mapping))
            if bad_rows:
                stored_from.update(g.message[r] for r in range(len(g.rows)) if r not in bad_rows)
            else:
                stored_from.update(g.message)
            if valid.height:
                if g.mapping.kind == "weather":
                    plan.weather[tenant].append(valid)
                elif g.mapping.kind == "register":
                    keys = frame.select("asset_id", "ts").rows()
                    source = {keys[r]: g.message[r] for r in range(len(g.rows))
                              if r not in bad_rows}
                    plan.registers[tenant].append((g.mapping, valid, source))
                else:
                    plan.readings[tenant].append(valid)
        plan.bad_messages = set(range(len(messages))) - stored_from
        return plan

    # -- the transaction ------------------------------------------------------------------
    def _commit(self, messages: Sequence[Message], plan: _Plan) -> tuple[
            list[tuple[str, str, IngestResult]], list[DeadLetter]]:
        results: list[tuple[str, str, IngestResult]] = []
        letters = list(plan.dead)
        tenants = sorted(set(plan.readings) | set(plan.weather) | set(plan.registers))
        with write_transaction(self.engine) as conn:
            for tenant in tenants:  # one order for every writer: no lock cycles
                frames = list(plan.readings.get(tenant, []))
                for mapping, totals, origin in plan.registers.get(tenant, []):
                    assets = totals.get_column("asset_id").unique().to_list()
                    state = self.registers.load(conn, tenant, assets)
                    intervals, changed, flags = to_intervals(
                        totals, state, register_max=mapping.register_max)
                    for f in flags:
                        m = messages[origin[(f.asset_id, f.ts)]]
                        letters.append(DeadLetter.of(tenant, m.topic, m.payload, f.reason,
                                                     _when(m)))
                    self.registers.save(conn, tenant, state.keys(), changed)
                    if intervals.height:
                        frames.append(intervals)
                if frames:
                    batch = _concat(frames)
                    results.append((tenant, "readings",
                                    self.ingest.store_readings(conn, tenant, batch)))
                if plan.weather.get(tenant):
                    batch = _concat(plan.weather[tenant], key="location_id")
                    results.append((tenant, "weather",
                                    self.ingest.store_weather(conn, tenant, batch)))
            self.dead_letters.insert(conn, letters)
        return results, letters

    def write(self, messages: Sequence[Message]) -> BatchResult:
        """Store ``messages`` (one transaction; per message if that fails). Raises
        ``BackendUnavailable`` when the database can't be reached: nothing was stored."""
        start = time.perf_counter()
        if not messages:
            return BatchResult()
        try:
            out = self._write(messages)
        except BackendUnavailable:
            raise
        except Exception:
            log.exception("stream batch of %d messages failed; storing them one by one",
                          len(messages))
            out = self._one_by_one(messages)
        record_stream_batch(time.perf_counter() - start,
                            stored=out.messages - out.dead_messages, dead=out.dead_messages)
        return out

    def _write(self, messages: Sequence[Message]) -> BatchResult:
        plan = self._plan(messages)
        results, letters = self._commit(messages, plan)
        out = self._after_commit(results, letters)
        out.messages = len(messages)
        out.dead_messages = len(plan.bad_messages)
        return out

    def _one_by_one(self, messages: Sequence[Message]) -> BatchResult:
        total = BatchResult(messages=len(messages))
        for msg in messages:
            try:
                part = self._write([msg])
            except BackendUnavailable:
                raise
            except Exception as exc:
                log.exception("stream message on %s could not be stored", msg.topic)
                tenant = self._route(msg.topic)[1]
                letter = DeadLetter.of(tenant, msg.topic, msg.payload,
                                       f"could not be stored: {type(exc).__name__}",
                                       _when(msg))
                with write_transaction(self.engine) as conn:
                    self.dead_letters.insert(conn, [letter])
                recorded([letter])
                part = BatchResult(messages=1, dead_letters=1, dead_messages=1)
            total.rows += part.rows
            total.dead_letters += part.dead_letters
            total.dead_messages += part.dead_messages
            for t, assets in part.touched.items():
                total.touched.setdefault(t, set()).update(assets)
        return total

    def _after_commit(self, results: list[tuple[str, str, IngestResult]],
                      letters: list[DeadLetter]) -> BatchResult:
        out = BatchResult(dead_letters=len(letters))
        for tenant, kind, result in results:
            self.ingest.committed(tenant, kind, result)
            out.rows += result.accepted
            out.touched.setdefault(tenant, set()).update(result.asset_ids)
        recorded(letters)
        return out


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector held off while a batch is parsed: the thousands of
    small dicts a batch decodes would otherwise trigger collections that walk the whole
    heap over and over (measured: half the writer's time with 100 readings per message).
    Nothing built here forms cycles; reference counting frees it all. Nested and
    concurrent pauses (several writers) resume collection after the last one."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def _concat(frames: list[pl.DataFrame], key: str = "asset_id") -> pl.DataFrame:
    """One frame of a tenant's valid rows; a later row for the same ``(key, ts)`` (a later
    message) replaces an earlier one, as within one message."""
    if len(frames) == 1:
        return frames[0]
    both = pl.concat(frames, how="vertical_relaxed")
    return both.unique(subset=[key, "ts"], keep="last", maintain_order=True)
