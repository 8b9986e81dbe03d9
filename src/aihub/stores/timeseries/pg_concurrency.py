"""How PostgreSQL writers share the store: per-asset locks and a change feed that never
misses a commit.

Locks
-----
Writes of different assets run at the same time; writes of the same asset queue. Each
write takes PostgreSQL transaction-level advisory locks (``pg_advisory_xact_lock``,
released at commit or rollback) on a stable 64-bit key per ``(tenant, asset)``: an ingest
on its batch's assets, an asset edit on its asset (and, when it moves the asset, on the
new weather location), a weather write on its ``(tenant, location)`` pairs. The keys are
taken in ascending order in one statement, so two writes can never wait on each other in
a cycle. Because a new asset's key is locked before the ``assets`` row is looked up, two
batches creating the same asset queue instead of failing on the unique constraint.

A batch of more than ``MAX_ITEM_LOCKS`` assets (or locations) takes one tenant-wide lock
instead (exclusive), so a bulk import of thousands of meters does not fill PostgreSQL's
shared lock table (``max_locks_per_transaction``); writes of a few assets take that
tenant-wide lock shared, so they queue behind a bulk import of their tenant only. Every
transaction takes its tenant-wide locks before its item locks: still no cycle.

A weather write changes the ``data_seq`` of the assets at its locations without locking
those assets: it locks their rows only at the end (``SELECT ... ORDER BY asset_key FOR
UPDATE``, as every write does before stamping its assets), so it never waits for a long
ingest's COPY, only for its last statements. An asset edit that moves the asset to a
location holds that location's lock, so a weather write there either sees the asset or
commits before the edit (whose own invalidation then covers it).

Change feed
-----------
Every write records on each asset it changed a number ``data_seq`` (from the sequence
``aihub_change_seq``, drawn after the asset's row is locked, so an asset's number only
grows) and its transaction id ``data_xid`` (``pg_current_xact_id()``). Sequence numbers
are handed out in one order and committed in another: seq 11 may commit before seq 10, so
a follower that moved to "the highest number seen" would skip 10 for good.

So the cursor is not a change number but a transaction horizon. ``changes_since(h)`` runs
one statement that returns every asset with ``data_xid >= h`` and, from the same
snapshot, ``pg_snapshot_xmin(pg_current_snapshot())``: the oldest transaction still in
progress. That is the next cursor. Every transaction below it has ended, and the ones
that committed are visible to the very snapshot the rows were read from; a transaction
that has not committed yet has an id at or above it (an id assigned later is larger
still), so a later read from that cursor returns its change. A write is therefore returned
at least once after it commits, whatever the commit order. Changes above the horizon that
had already committed are returned again by the next read; ``ChangeFeed`` (services)
skips repeats of the same ``(asset, data_seq)``. A transaction that stays open for long
(in any database of the cluster: xids are cluster-wide) holds the horizon back, which
makes reads return more rows, never fewer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import psycopg

from aihub.stores.timeseries.base import Change, ChangeBatch

# Above this many assets (or locations) in one write, lock the tenant instead.
MAX_ITEM_LOCKS = 64

_LOCK_IN_ORDER = (
    "SELECT count({fn}(k)) FROM (SELECT k FROM unnest(%s::bigint[]) AS u(k) ORDER BY k) s"
)
_NEXT_SEQ = "SELECT nextval('aihub_change_seq'), pg_current_xact_id()::text::bigint"
_HORIZON = "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
# One statement, so the rows and the horizon come from the same snapshot.
_CHANGES = f"""
WITH h AS (SELECT {_HORIZON} AS horizon)
SELECT h.horizon, a.tenant_id, a.asset_id, a.data_seq
FROM h LEFT JOIN assets a ON a.data_xid >= {{since}}
"""
_LOCK_ROWS = "SELECT asset_key FROM assets WHERE asset_key = ANY(%s) ORDER BY asset_key FOR UPDATE"


def lock_key(kind: str, tenant_id: str, name: str = "") -> int:
    """A stable signed 64-bit advisory-lock key for ``(kind, tenant, name)``."""
    digest = hashlib.blake2b(f"aihub\0{kind}\0{tenant_id}\0{name}".encode(),
                             digest_size=8, person=b"aihub-lock").digest()
    return int.from_bytes(digest, "big", signed=True)


def write_locks(
    tenant_id: str, assets: Sequence[str], locations: Sequence[str]
) -> tuple[list[int], list[int], list[int]]:
    """The keys a write takes: (tenant-wide shared, tenant-wide exclusive, per item), each
    list sorted; taken in that order."""
    shared: list[int] = []
    exclusive: list[int] = []
    items: list[int] = []
    for kind, names in (("asset", assets), ("location", locations)):
        if not names:
            continue
        tenant_key = lock_key(f"tenant-{kind}s", tenant_id)
        if len(names) > MAX_ITEM_LOCKS:
            exclusive.append(tenant_key)
        else:
            shared.append(tenant_key)
            items.extend(lock_key(kind, tenant_id, n) for n in set(names))
    return sorted(shared), sorted(exclusive), sorted(items)


def take_locks(cur: psycopg.Cursor[Any], tenant_id: str, assets: Sequence[str],
               locations: Sequence[str]) -> None:
    shared, exclusive, items = write_locks(tenant_id, assets, locations)
    if shared:
        cur.execute(_LOCK_IN_ORDER.format(fn="pg_advisory_xact_lock_shared"), (shared,))
    for keys in (exclusive, items):
        if keys:
            cur.execute(_LOCK_IN_ORDER.format(fn="pg_advisory_xact_lock"), (keys,))


def lock_rows(cur: psycopg.Cursor[Any], keys: Sequence[int]) -> None:
    if keys:
        cur.execute(_LOCK_ROWS, (list(keys),))


def next_seq(cur: psycopg.Cursor[Any]) -> tuple[int, int]:
    row = cur.execute(_NEXT_SEQ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def changes_since(cur: psycopg.Cursor[Any], cursor: int | None) -> ChangeBatch:
    """From ``cursor``; with ``None``, the current horizon and the changes at or above it
    that have already committed (the ones a read from that horizon would repeat)."""
    if cursor is None:
        rows = cur.execute(_CHANGES.format(since="h.horizon")).fetchall()
    else:
        rows = cur.execute(_CHANGES.format(since="%s"), (cursor,)).fetchall()
    horizon = int(rows[0][0])
    changes = [Change(t, a, int(s)) for _, t, a, s in rows if t is not None]
    return ChangeBatch(changes, horizon if cursor is None else max(horizon, cursor))
