"""The row rules of readings and weather, written once for HTTP, the CLI and streams.

A batch arrives as a Polars frame with the store's columns (``READINGS_SCHEMA`` or
``WEATHER_SCHEMA``: ids as strings, ``ts`` as UTC epoch microseconds, numbers as floats).
A parser that could not turn some row into those types (a JSON ``true`` where a number
belongs, a naive timestamp, a missing key) leaves that row's cells null and names the
problem in two optional columns, ``PROBLEM_FIELD`` and ``PROBLEM_REASON``
(``with_problems``). One function then computes each row's *first* problem, field by field
in column order (the parser's problem for a field before the rules of that field):

- ``validate_readings`` / ``validate_weather``: all or nothing. Raise ``InvalidInput``
  naming the first bad row (0-based) and field, with the first few problems in
  ``details``; else return the batch with a later row for the same ``(id, ts)`` replacing
  an earlier one.
- ``split_readings`` / ``split_weather``: for streams, where each row stands alone. Return
  the valid rows (deduplicated the same way) and one ``RowProblem`` per bad row; never
  raise for a bad row.

Optional per-row columns (a reading's ``known_at`` and ``quality``, an observation's
``issued_at``: its knowledge time) are checked and kept when the batch carries them, else
left out: the store fills the defaults (commit time, ``actual``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from aihub.errors import InvalidInput, PayloadTooLarge
from aihub.features.frames import QUALITIES, READINGS_SCHEMA, WEATHER_FIELDS, WEATHER_SCHEMA
from aihub.names import is_valid_name
from aihub.timeutil import MAX_TS, MIN_TS, to_us, utcnow

__all__ = [
    "FUTURE_SLACK_US",
    "PROBLEM_FIELD",
    "PROBLEM_REASON",
    "QUALITIES",
    "RowProblem",
    "split_readings",
    "split_weather",
    "validate_readings",
    "validate_weather",
    "with_problems",
]

PROBLEM_FIELD = "_problem_field"
PROBLEM_REASON = "_problem_reason"
# Problems listed in an error's details (the message names the first; the count says all).
DETAILS_SHOWN = 20

_MIN_US, _MAX_US = to_us(MIN_TS), to_us(MAX_TS)
# A knowledge time may run ahead of this server's clock by at most this much.
FUTURE_SLACK_US = 5 * 60 * 1_000_000
_NAME_RULE = "not a valid name (letters, digits, '_', '.', '-'; at most 128)"


@dataclass(frozen=True, slots=True)
class RowProblem:
    """The first thing wrong with one row: its 0-based index, the field, and why. An empty
    ``field`` is a problem with the row as a whole (e.g. not a JSON object)."""

    row: int
    field: str
    reason: str

    def describe(self, label: str | None = None) -> str:
        where = label or (f"field '{self.field}'" if self.field else "")
        return (
            f"row {self.row}, {where}: {self.reason}"
            if where
            else (f"row {self.row}: {self.reason}")
        )

    def to_dict(self) -> dict[str, object]:
        return {"row": self.row, "field": self.field, "message": self.reason}


@dataclass(frozen=True, slots=True)
class Rule:
    """Rows where ``bad(frame)`` holds break this rule of ``field``."""

    field: str
    reason: str
    bad: Callable[[pl.DataFrame], pl.Expr]


@dataclass(frozen=True, slots=True)
class _Kind:
    noun: str  # "readings": used in messages
    key: str  # the id column: with ``ts`` the identity of a row
    schema: Mapping[str, type[pl.DataType] | pl.DataType]
    rules: tuple[Rule, ...]
    # Columns of the schema a caller may leave out: filled with nulls.
    fill_missing: tuple[str, ...] = field(default=())
    # Columns a batch may carry (knowledge time, quality): checked and kept when present.
    optional: Mapping[str, type[pl.DataType] | pl.DataType] = field(default_factory=dict)


def _missing(column: str, reason: str) -> Rule:
    return Rule(column, reason, lambda _f: pl.col(column).is_null())


def _bad_name(column: str) -> Rule:
    def bad(frame: pl.DataFrame) -> pl.Expr:
        # A batch names few distinct ids: check those, not every row.
        distinct = frame.get_column(column).drop_nulls().unique()
        wrong = [v for v in distinct.to_list() if not is_valid_name(v)]
        if not wrong:
            return pl.lit(False)
        return pl.col(column).is_in(pl.Series(wrong, dtype=pl.String).implode())

    return Rule(column, _NAME_RULE, bad)


def _out_of_range(column: str) -> Rule:
    return Rule(
        column,
        "timestamp outside 1970..2200",
        lambda _f: (pl.col(column) < _MIN_US) | (pl.col(column) >= _MAX_US),
    )


def _not_finite(column: str, reason: str) -> Rule:
    return Rule(column, reason, lambda _f: ~pl.col(column).is_finite())


def _future(column: str) -> Rule:
    def bad(_frame: pl.DataFrame) -> pl.Expr:
        return pl.col(column) > to_us(utcnow()) + FUTURE_SLACK_US

    return Rule(column, "knowledge time more than 5 minutes in the future", bad)


def _not_quality(column: str) -> Rule:
    return Rule(
        column,
        f"must be one of {', '.join(QUALITIES)}",
        lambda _f: pl.col(column).is_not_null() & ~pl.col(column).is_in(list(QUALITIES)),
    )


def _id_and_time(key: str) -> tuple[Rule, ...]:
    return (
        _missing(key, "missing"),
        _bad_name(key),
        _missing("ts", "missing timestamp"),
        _out_of_range("ts"),
    )


READINGS = _Kind(
    noun="readings",
    key="asset_id",
    schema=READINGS_SCHEMA,
    rules=(
        *_id_and_time("asset_id"),
        _missing("value", "missing value"),
        _not_finite("value", "must be a finite number"),
        _out_of_range("known_at"),
        _future("known_at"),
        _not_quality("quality"),
    ),
    optional={"known_at": pl.Int64, "quality": pl.String},
)
WEATHER = _Kind(
    noun="observations",
    key="location_id",
    schema=WEATHER_SCHEMA,
    rules=(
        *_id_and_time("location_id"),
        *(_not_finite(f, "must be a finite number or null") for f in WEATHER_FIELDS),
        _out_of_range("issued_at"),
        _future("issued_at"),
    ),
    fill_missing=WEATHER_FIELDS,
    optional={"issued_at": pl.Int64},
)


# -- parsers' problems ----------------------------------------------------------------------


def with_problems(frame: pl.DataFrame, problems: Sequence[RowProblem]) -> pl.DataFrame:
    """``frame`` carrying a parser's per-row problems (at most one per row: its first) for
    validation to report in row order with the rules' own. The problem rows' cells should
    be null where the value could not be read."""
    if not problems:
        return frame
    fields: list[str | None] = [None] * frame.height
    reasons: list[str | None] = [None] * frame.height
    for p in problems:
        if fields[p.row] is None:
            fields[p.row], reasons[p.row] = p.field, p.reason
    if PROBLEM_FIELD in frame.columns:  # keep an earlier parser's problem for a row
        fields = [
            old if old is not None else new
            for old, new in zip(frame.get_column(PROBLEM_FIELD).to_list(), fields, strict=True)
        ]
        reasons = [
            old if old is not None else new
            for old, new in zip(frame.get_column(PROBLEM_REASON).to_list(), reasons, strict=True)
        ]
    return frame.with_columns(
        pl.Series(PROBLEM_FIELD, fields, dtype=pl.String),
        pl.Series(PROBLEM_REASON, reasons, dtype=pl.String),
    )


# -- the one check --------------------------------------------------------------------------


def _schema_of(frame: pl.DataFrame, kind: _Kind) -> dict[str, type[pl.DataType] | pl.DataType]:
    """The kind's columns, plus the optional ones ``frame`` carries."""
    present = {c: t for c, t in kind.optional.items() if c in frame.columns}
    return {**kind.schema, **present}


def _valid_columns(frame: pl.DataFrame, kind: _Kind) -> pl.DataFrame:
    """The kind's columns of valid rows, and the optional ones that hold any value (an
    all-null optional column says nothing: the store's defaults apply)."""
    keep = [
        c for c in _schema_of(frame, kind)
        if c in kind.schema or frame.get_column(c).null_count() < frame.height
    ]
    return frame.select(keep)


def _conform(frame: pl.DataFrame, kind: _Kind) -> pl.DataFrame:
    """The kind's columns in order and types (plus the optional ones present and the
    parser's problem columns)."""
    schema = _schema_of(frame, kind)
    missing = [c for c in kind.schema if c not in frame.columns]
    absent = [c for c in missing if c not in kind.fill_missing]
    if absent:
        raise InvalidInput(
            f"{kind.noun}: column(s) {absent} missing",
            details=[{"field": c, "message": "missing column"} for c in absent],
        )
    if missing:
        frame = frame.with_columns(pl.lit(None, kind.schema[c]).alias(c) for c in missing)
    extra = [c for c in (PROBLEM_FIELD, PROBLEM_REASON) if c in frame.columns]
    out = frame.select(*schema, *extra)
    wrong = {c: dt for c, dt in schema.items() if out.schema[c] != dt}
    if not wrong:
        return out
    try:
        return out.cast(wrong)  # type: ignore[arg-type]
    except pl.exceptions.PolarsError as exc:
        raise InvalidInput(
            f"{kind.noun}: columns must have types {schema} ({exc})".replace("\n", " ")
        ) from exc


def _codes(frame: pl.DataFrame, kind: _Kind) -> tuple[pl.Expr, list[tuple[str, str] | None]]:
    """One expression giving each row the code of its first problem (0: none), and what
    each code means (None: the parser's own problem, read from the problem columns)."""
    meaning: list[tuple[str, str] | None] = []
    conditions: list[pl.Expr] = []
    parsed = PROBLEM_FIELD in frame.columns
    pf = pl.col(PROBLEM_FIELD)
    schema = _schema_of(frame, kind)
    if parsed:  # problems with the row as a whole, or with a field the kind does not have
        conditions.append(pf.is_not_null() & ~pf.is_in(list(schema)))
        meaning.append(None)
    by_field: dict[str, list[Rule]] = {c: [] for c in schema}
    for rule in kind.rules:
        if rule.field in by_field:
            by_field[rule.field].append(rule)
    for column, rules in by_field.items():
        if parsed:
            conditions.append(pf == column)
            meaning.append(None)
        for rule in rules:
            conditions.append(rule.bad(frame))
            meaning.append((rule.field, rule.reason))
    chain = pl.when(conditions[0]).then(pl.lit(1, pl.UInt16))
    for i, cond in enumerate(conditions[1:], start=2):
        chain = chain.when(cond).then(pl.lit(i, pl.UInt16))  # type: ignore[assignment]
    return chain.otherwise(pl.lit(0, pl.UInt16)), meaning


@dataclass(frozen=True, slots=True)
class _Checked:
    codes: pl.Series  # per row: its first problem's code, 0 for none
    bad: pl.DataFrame  # the bad rows: ``row``, ``_code`` (+ the parser's problem columns)
    meaning: list[tuple[str, str] | None]


def _row_problems(frame: pl.DataFrame, kind: _Kind) -> _Checked:
    """The one check: every row's first problem."""
    expr, meaning = _codes(frame, kind)
    codes = frame.select(expr.alias("_code")).to_series()
    if not frame.height or not codes.max():
        return _Checked(codes, pl.DataFrame(), meaning)
    extra = [c for c in (PROBLEM_FIELD, PROBLEM_REASON) if c in frame.columns]
    bad = (
        codes.to_frame()
        .with_columns(frame.select(*extra))
        .with_row_index("row")
        .filter(pl.col("_code") > 0)
    )
    return _Checked(codes, bad, meaning)


def _describe(checked: _Checked, limit: int | None, first_row: int = 0) -> list[RowProblem]:
    meaning, bad = checked.meaning, checked.bad
    rows = bad if limit is None else bad.head(limit)
    parsed = PROBLEM_FIELD in rows.columns
    out: list[RowProblem] = []
    for rec in rows.iter_rows(named=True):
        what = meaning[rec["_code"] - 1]
        if what is None and parsed:
            out.append(
                RowProblem(rec["row"] + first_row, rec[PROBLEM_FIELD], rec[PROBLEM_REASON])
            )
        elif what is not None:
            out.append(RowProblem(rec["row"] + first_row, what[0], what[1]))
    return out


def _has_duplicates(frame: pl.DataFrame, key: str) -> bool:
    """Whether two rows share ``(key, ts)``, in little memory: a batch sorted by id and
    time (the usual case: each id's rows together, times increasing) has none; else the
    times are compared within each id (a hash of the pair would cost ~190 B per row)."""
    ids, ts = pl.col(key), pl.col("ts")
    same = (ids == ids.shift()).fill_null(False)
    ordered = frame.select(
        (same & (ts <= ts.shift())).any().not_() & ((~same).sum() == ids.n_unique())
    ).item()
    if ordered:
        return False
    return bool(frame.select(ts.is_duplicated().over(key).any()).item())


def _dedupe(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """A later row for the same ``(key, ts)`` replaces an earlier one."""
    if frame.height < 2 or not _has_duplicates(frame, key):
        return frame
    return frame.unique(subset=[key, "ts"], keep="last", maintain_order=True)


def _validate(
    frame: pl.DataFrame,
    kind: _Kind,
    max_rows: int,
    labels: Mapping[str, str] | None,
    first_row: int = 0,
) -> pl.DataFrame:
    if frame.height > max_rows:
        raise PayloadTooLarge(
            f"{frame.height} {kind.noun} in one batch; the limit is {max_rows} "
            "(AIHUB_MAX_INGEST_ROWS)",
            details={"rows": frame.height, "limit": max_rows},
        )
    frame = _conform(frame, kind)
    checked = _row_problems(frame, kind)
    if checked.bad.height:
        problems = _describe(checked, DETAILS_SHOWN, first_row)
        first = problems[0]
        label = (labels or {}).get(first.field)
        raise InvalidInput(
            f"{first.describe(label)} ({checked.bad.height} bad row(s) in the batch; "
            "nothing was stored)",
            details=[p.to_dict() for p in problems],
        )
    return _dedupe(_valid_columns(frame, kind), kind.key)


def _split(frame: pl.DataFrame, kind: _Kind) -> tuple[pl.DataFrame, list[RowProblem]]:
    frame = _conform(frame, kind)
    checked = _row_problems(frame, kind)
    if not checked.bad.height:
        return _dedupe(_valid_columns(frame, kind), kind.key), []
    valid = _valid_columns(frame.filter(checked.codes == 0), kind)
    return _dedupe(valid, kind.key), _describe(checked, None)


def validate_readings(
    frame: pl.DataFrame,
    *,
    max_rows: int,
    labels: Mapping[str, str] | None = None,
    first_row: int = 0,
) -> pl.DataFrame:
    """All of ``frame`` (``READINGS_SCHEMA``) valid, deduplicated; else ``InvalidInput``
    naming the first bad row and field (``PayloadTooLarge`` beyond ``max_rows``).
    ``labels`` renames fields in the message (e.g. ``{"value": "column 'kwh'"}``);
    ``first_row`` is the number of the frame's first row in messages (a chunk of a file)."""
    return _validate(frame, READINGS, max_rows, labels, first_row)


def split_readings(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[RowProblem]]:
    """The valid rows of ``frame`` (deduplicated) and one problem per bad row."""
    return _split(frame, READINGS)


def validate_weather(
    frame: pl.DataFrame,
    *,
    max_rows: int,
    labels: Mapping[str, str] | None = None,
    first_row: int = 0,
) -> pl.DataFrame:
    """Like ``validate_readings`` for weather (``WEATHER_SCHEMA``; absent weather fields
    are null)."""
    return _validate(frame, WEATHER, max_rows, labels, first_row)


def split_weather(frame: pl.DataFrame) -> tuple[pl.DataFrame, list[RowProblem]]:
    """Like ``split_readings`` for weather."""
    return _split(frame, WEATHER)
