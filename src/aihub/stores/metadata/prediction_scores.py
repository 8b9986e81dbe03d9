"""Score sums per ``(version, target hour, horizon)``, kept beside the prediction log so
scoring millions of logged rows reads thousands of sums.

``score_days`` counts changes per ``(version, day of the target)``: every write of log rows
and every refresh of their actuals bumps ``gen`` in its own transaction; the compactor
(``recompute``) rebuilds a day's sums from the log and records the ``gen`` it saw as
``clean_gen``. A reader uses the sums of clean days and the log rows of the others, so a
score is always that of the log as committed, never of stale sums.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

DAY_US = 86_400_000_000
COUNTS = ("predicted", "n", "nape", "np", "ns")
SUMS = ("sae", "se2", "se", "sa", "sape", "saep", "sabp", "saes", "sabs")
COLUMNS = COUNTS + SUMS

# The sums every score needs, from log rows (only rows with an actual count: ``e`` is
# null otherwise).
ROW_SUMS = """
count(*) AS predicted,
count(actual) AS n,
sum(abs(prediction - actual)) AS sae,
sum((prediction - actual) * (prediction - actual)) AS se2,
sum(prediction - actual) AS se,
sum(abs(actual)) AS sa,
sum(CASE WHEN abs(actual) > 1e-9 THEN abs(prediction - actual) / abs(actual) END) AS sape,
count(CASE WHEN abs(actual) > 1e-9 THEN 1 END) AS nape,
count(CASE WHEN persistence IS NOT NULL THEN actual END) AS np,
sum(CASE WHEN persistence IS NOT NULL THEN abs(prediction - actual) END) AS saep,
sum(abs(persistence - actual)) AS sabp,
count(CASE WHEN seasonal IS NOT NULL THEN actual END) AS ns,
sum(CASE WHEN seasonal IS NOT NULL THEN abs(prediction - actual) END) AS saes,
sum(abs(seasonal - actual)) AS sabs
"""
# The same from stored sums.
STORED_SUMS = ",\n".join(f"sum({c}) AS {c}" for c in COLUMNS)

_MARK = (
    "INSERT INTO score_days (version_id, day, gen, clean_gen) VALUES ({p}, {p}, 1, 0) "
    "ON CONFLICT (version_id, day) DO UPDATE SET gen = score_days.gen + 1"
)
_TENANT_DAYS = (
    "version_id IN (SELECT id FROM model_versions WHERE tenant_id = :t) "
    "AND day >= :lo AND day <= :hi"
)


class ScoreStore:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        # How a query on one version's log rows in a target window names the version.
        # SQLite (no statistics) would otherwise pick the primary key's leading
        # ``version_id`` over the target index and read every row the version ever logged
        # for one day; ``+version_id`` leaves it the target index. PostgreSQL prunes the
        # partitions by target and wants the key's ``version_id`` as it is.
        self.version_in_window = "version_id" if self.postgres else "+version_id"

    # -- marking changes (in the writer's or the ingest's transaction) --------------------
    def mark(self, conn: sa.Connection, version_days: Iterable[tuple[int, int]]) -> None:
        """Bump the days of these ``(version_id, day)`` (in key order: no deadlock between
        two writers)."""
        rows = sorted(set(version_days))
        if not rows:
            return
        raw: Any = conn.connection.driver_connection
        if self.postgres:
            with raw.cursor() as cur:
                cur.executemany(_MARK.format(p="%s"), rows)
        else:
            raw.executemany(_MARK.format(p="?"), rows)

    def mark_tenant_days(self, conn: sa.Connection, tenant_id: str, lo: int, hi: int) -> None:
        """Bump the days ``lo..hi`` of every version of the tenant that logged any."""
        params = {"t": tenant_id, "lo": lo, "hi": hi}
        if self.postgres:  # lock in key order first, as ``mark`` does
            conn.execute(sa.text(f"SELECT 1 FROM score_days WHERE {_TENANT_DAYS} "
                                 "ORDER BY version_id, day FOR UPDATE"), params)
        conn.execute(sa.text(f"UPDATE score_days SET gen = gen + 1 WHERE {_TENANT_DAYS}"),
                     params)

    # -- compaction -----------------------------------------------------------------------
    def dirty(self, limit: int = 1000) -> list[tuple[int, int]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT version_id, day FROM score_days WHERE gen > clean_gen "
                "ORDER BY version_id, day LIMIT :n"), {"n": limit})
            return [(int(v), int(d)) for v, d in rows]

    def recompute(self, conn: sa.Connection, version_id: int, day: int) -> None:
        """Rebuild one day's sums from the log (in a write transaction): the day's row is
        locked first, so its ``gen`` cannot move while the sums are rebuilt."""
        key = {"v": version_id, "d": day}
        gen = conn.execute(sa.text(
            "SELECT gen FROM score_days WHERE version_id = :v AND day = :d"
            + (" FOR UPDATE" if self.postgres else "")), key).scalar()
        if gen is None:
            return
        span = {"v": version_id, "a": day * DAY_US, "b": (day + 1) * DAY_US}
        conn.execute(sa.text("DELETE FROM prediction_scores WHERE version_id = :v "
                             "AND target >= :a AND target < :b"), span)
        conn.execute(sa.text(
            f"INSERT INTO prediction_scores (version_id, target, horizon, {', '.join(COLUMNS)}) "
            f"SELECT version_id, target, horizon, {', '.join(COLUMNS)} FROM ("
            f"SELECT version_id, target, horizon, {ROW_SUMS} FROM prediction_log "
            f"WHERE {self.version_in_window} = :v AND target >= :a AND target < :b "
            "GROUP BY version_id, target, horizon) s"), span)
        conn.execute(sa.text("UPDATE score_days SET clean_gen = :g "
                             "WHERE version_id = :v AND day = :d"), {**key, "g": int(gen)})

    # -- reads ----------------------------------------------------------------------------
    def dirty_days(self, conn: sa.Connection, version_id: int) -> list[int]:
        rows = conn.execute(sa.text("SELECT day FROM score_days WHERE version_id = :v "
                                    "AND gen > clean_gen ORDER BY day"), {"v": version_id})
        return [int(r[0]) for r in rows]

    # -- retention and deletes ------------------------------------------------------------
    def purge(self, conn: sa.Connection, cutoff: int) -> None:
        conn.execute(sa.text("DELETE FROM prediction_scores WHERE target < :c"), {"c": cutoff})
        conn.execute(sa.text("DELETE FROM score_days WHERE (day + 1) * :day <= :c"),
                     {"c": cutoff, "day": DAY_US})
        # the day the cutoff falls in lost rows: rebuild it
        conn.execute(sa.text("UPDATE score_days SET gen = gen + 1 WHERE day = :d"),
                     {"d": cutoff // DAY_US})

    def delete_version(self, conn: sa.Connection, version_id: int) -> None:
        for table in ("prediction_scores", "score_days"):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE version_id = :v"),
                         {"v": version_id})


def add_sums(into: dict[str, Any], row: Any) -> None:
    """Add a row of sums (``COLUMNS``; nulls are empty sums) into ``into``."""
    for c in COLUMNS:
        v = row[c]
        if v is not None:
            into[c] = v if into.get(c) is None else into[c] + v


def empty_sums() -> dict[str, Any]:
    return {c: (0 if c in COUNTS else None) for c in COLUMNS}


__all__ = ["COLUMNS", "DAY_US", "ROW_SUMS", "STORED_SUMS", "ScoreStore", "add_sums",
           "empty_sums"]
