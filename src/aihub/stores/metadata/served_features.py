"""The features each logged prediction was served (drift reads them), stored in blocks.

One block per version and write of the log: an Arrow IPC file (zstd) of the rows'
``asset_id``, ``origin``, ``target`` and ``features`` (the row's JSON text), with the
block's target span beside it. A row per prediction cost the writer more than the
prediction itself (one more keyed insert of a few hundred bytes of JSON); a block is one
insert per write, a tenth of the bytes, and drift reads whole windows anyway.

Logging a ``(version, asset, origin, target)`` again with features writes them into a
newer block: readers keep the newest block's row of each key, so the features stay those
of the logged row, as the log's upsert does for the prediction. Retention deletes the
blocks wholly before the cutoff and rewrites the few that straddle it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.ipc as ipc
import sqlalchemy as sa

SCHEMA: dict[str, Any] = {"asset_id": pl.String, "origin": pl.Int64, "target": pl.Int64,
                          "features": pl.String}
_KEY = ["asset_id", "origin", "target"]


# zstd at level 1: as small as Polars' default zstd level, three times faster to write
_IPC = ipc.IpcWriteOptions(compression=pa.Codec("zstd", compression_level=1))


def encode(rows: pl.DataFrame) -> bytes:
    """A block's bytes: ``rows`` (``SCHEMA`` columns) as an Arrow IPC file with zstd."""
    table = rows.select(list(SCHEMA)).cast(SCHEMA).to_arrow()  # type: ignore[arg-type]
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, table.schema, options=_IPC) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def decode(data: bytes) -> pl.DataFrame:
    return pl.read_ipc(bytes(data))


@dataclass(frozen=True, slots=True)
class Block:
    version_id: int
    first_target: int
    last_target: int
    n_rows: int
    data: bytes


class ServedFeatureStore:
    """Writes run on the caller's transaction; reads open a connection of their own."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @staticmethod
    def blocks(rows: pl.DataFrame) -> list[Block]:
        """The blocks of ``rows`` (``version_id`` and ``SCHEMA`` columns, unique on the
        key), one per version: the costly part of a write (compression), done on no
        connection, so the writer runs it beside its database work."""
        out = []
        for (version_id,), part in rows.partition_by(
                "version_id", as_dict=True, include_key=False).items():
            targets = part.get_column("target")
            out.append(Block(int(version_id), int(targets.min()),  # type: ignore[call-overload, arg-type]
                             int(targets.max()), part.height, encode(part)))  # type: ignore[arg-type]
        return out

    def insert(self, conn: sa.Connection, blocks: list[Block]) -> None:
        for b in blocks:
            conn.execute(sa.text(
                "INSERT INTO served_feature_blocks (version_id, first_target, last_target, "
                "n_rows, data) VALUES (:v, :a, :b, :n, :d)"),
                {"v": b.version_id, "a": b.first_target, "b": b.last_target, "n": b.n_rows,
                 "d": b.data})

    def read(self, version_id: int, start: int, end: int, limit: int) -> list[str]:
        """The features (JSON) of the version's rows with target in ``[start, end)``, one
        per key (the newest block's), the latest ``limit`` by target. Blocks are read
        latest first and no further once none left can reach the latest ``limit``."""
        frames: list[pl.DataFrame] = []
        kept = pl.DataFrame(schema={**SCHEMA, "block": pl.Int64})
        with self.engine.connect() as conn:
            blocks = conn.execution_options(stream_results=True, yield_per=16).execute(
                sa.text("SELECT id, last_target, data FROM served_feature_blocks "
                        "WHERE version_id = :v AND last_target >= :s AND first_target < :e "
                        "ORDER BY last_target DESC, id DESC"),
                {"v": version_id, "s": start, "e": end})
            for block_id, last_target, data in blocks:
                if kept.height >= limit and int(last_target) < kept["target"].min():  # type: ignore[operator]
                    break  # older than every kept row: cannot replace or outrank one
                frames.append(decode(data).filter(
                    (pl.col("target") >= start) & (pl.col("target") < end))
                    .with_columns(pl.lit(int(block_id), pl.Int64).alias("block")))
                if sum(f.height for f in frames) >= limit:
                    kept = _latest(pl.concat([kept, *frames]), limit)
                    frames = []
        if frames:
            kept = _latest(pl.concat([kept, *frames]), limit)
        return kept.get_column("features").to_list()

    def purge(self, conn: sa.Connection, cutoff: int) -> None:
        """Drop the rows with target before ``cutoff``."""
        conn.execute(sa.text("DELETE FROM served_feature_blocks WHERE last_target < :c"),
                     {"c": cutoff})
        straddling = conn.execute(sa.text(
            "SELECT id, data FROM served_feature_blocks WHERE first_target < :c"),
            {"c": cutoff}).all()
        for block_id, data in straddling:
            rows = decode(data).filter(pl.col("target") >= cutoff)
            conn.execute(sa.text(
                "UPDATE served_feature_blocks SET first_target = :a, n_rows = :n, data = :d "
                "WHERE id = :i"),
                {"i": block_id, "a": int(rows.get_column("target").min()),  # type: ignore[arg-type]
                 "n": rows.height, "d": encode(rows)})

    def delete_version(self, conn: sa.Connection, version_id: int) -> None:
        conn.execute(sa.text("DELETE FROM served_feature_blocks WHERE version_id = :v"),
                     {"v": version_id})


def _latest(rows: pl.DataFrame, limit: int) -> pl.DataFrame:
    """The newest block's row of each key, then the ``limit`` latest by target."""
    return (rows.sort("block", descending=True).unique(_KEY, keep="first")
            .sort("target", descending=True).head(limit))


__all__ = ["SCHEMA", "Block", "ServedFeatureStore", "decode", "encode"]
