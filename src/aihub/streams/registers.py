"""Cumulative registers (``total_increasing``: kWh since installation) as interval
consumption per asset.

Each reading of a register is its total at ``ts``; what is stored is the consumption
since the register's previous reading, at ``ts`` (the interval ending there). The
previous reading of every asset lives in the ``stream_registers`` table, written in the
same transaction as the intervals it produced, so a restart or a re-delivered message
never counts anything twice:

- the first reading of an asset sets its baseline; nothing is stored for it;
- a reading at or before the last one is ignored (a re-delivery, or late data whose
  interval was already counted);
- a total lower than the last one is a **drop**: with ``register_max`` (the value where
  the register wraps to zero) a rollover, stored as the wrapped difference; otherwise a
  reset (meter replaced, counter cleared): a new baseline, nothing stored for that
  interval. Either way it is flagged (a record in the dead letters naming both totals),
  never a negative spike.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import polars as pl
import sqlalchemy as sa

from aihub.streams.tables import registers
from aihub.timeutil import from_us, utcnow

__all__ = ["Flag", "RegisterState", "RegisterStore", "to_intervals"]

_IN_CHUNK = 500


@dataclass(frozen=True, slots=True)
class RegisterState:
    last_ts: int  # epoch microseconds
    last_total: float


@dataclass(frozen=True, slots=True)
class Flag:
    """A drop of an asset's register at ``ts`` (``row``: the reading's row in the batch)."""

    row: int
    asset_id: str
    ts: int
    reason: str


def to_intervals(
    totals: pl.DataFrame,
    state: dict[str, RegisterState],
    *,
    register_max: float | None = None,
) -> tuple[pl.DataFrame, dict[str, RegisterState], list[Flag]]:
    """The interval readings of ``totals`` (validated readings whose ``value`` is a
    total, in any order): the rows that make an interval, by asset and time, with
    ``value`` replaced by the consumption since the asset's previous total; the new state
    of every asset seen; and the drops.
    ``state`` (the stored previous readings) is not changed."""
    new = dict(state)
    keep: list[int] = []
    values: list[float] = []
    flags: list[Flag] = []
    ordered = totals.with_row_index("_row").sort("asset_id", "ts")
    for row, asset, ts, total in ordered.select("_row", "asset_id", "ts", "value").iter_rows():
        prev = new.get(asset)
        if prev is None:
            new[asset] = RegisterState(ts, total)
            continue
        if ts <= prev.last_ts:
            continue
        delta = total - prev.last_total
        if delta < 0:
            at = from_us(ts).isoformat().replace("+00:00", "Z")
            if register_max is not None and total < register_max:
                delta = total + register_max - prev.last_total
                flags.append(Flag(row, asset, ts, (
                    f"register rollover at {at}: total went from {prev.last_total:g} to "
                    f"{total:g} (wraps at {register_max:g}); stored {delta:g}")))
            else:
                flags.append(Flag(row, asset, ts, (
                    f"register reset at {at}: total dropped from {prev.last_total:g} to "
                    f"{total:g}; new baseline, no interval stored")))
                new[asset] = RegisterState(ts, total)
                continue
        keep.append(row)
        values.append(delta)
        new[asset] = RegisterState(ts, total)
    picked = totals.with_row_index("_row").filter(pl.col("_row").is_in(keep))
    order = {r: i for i, r in enumerate(keep)}
    intervals = picked.with_columns(
        pl.Series("value", [values[order[r]] for r in picked.get_column("_row").to_list()],
                  dtype=pl.Float64)
    ).drop("_row").sort("asset_id", "ts")
    changed = {a: s for a, s in new.items() if state.get(a) != s}
    return intervals, changed, flags


class RegisterStore:
    """Rows of ``stream_registers`` on the caller's connection (the stream's writer owns
    the transaction)."""

    def load(self, conn: sa.Connection, tenant_id: str,
             asset_ids: Sequence[str]) -> dict[str, RegisterState]:
        """The state of these assets, their rows locked until the transaction ends."""
        out: dict[str, RegisterState] = {}
        ids = sorted(set(asset_ids))
        for i in range(0, len(ids), _IN_CHUNK):
            q = sa.select(registers.c.asset_id, registers.c.last_ts, registers.c.last_total) \
                .where(registers.c.tenant_id == tenant_id,
                       registers.c.asset_id.in_(ids[i: i + _IN_CHUNK])) \
                .order_by(registers.c.asset_id).with_for_update()
            out.update({r.asset_id: RegisterState(int(r.last_ts), float(r.last_total))
                        for r in conn.execute(q)})
        return out

    def save(self, conn: sa.Connection, tenant_id: str, known: Iterable[str],
             changed: dict[str, RegisterState]) -> None:
        """Write ``changed`` states; ``known`` are the assets that already had a row."""
        now = utcnow()
        had = set(known)
        inserts = [{"tenant_id": tenant_id, "asset_id": a, "last_ts": s.last_ts,
                    "last_total": s.last_total, "updated_at": now}
                   for a, s in changed.items() if a not in had]
        if inserts:
            conn.execute(registers.insert(), inserts)
        for a, s in changed.items():
            if a in had:
                conn.execute(registers.update().where(
                    registers.c.tenant_id == tenant_id, registers.c.asset_id == a
                ).values(last_ts=s.last_ts, last_total=s.last_total, updated_at=now))
