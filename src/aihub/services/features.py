"""Feature sets and online serving.

``FeatureService.frame`` is the single entry to feature computation: online ``get`` and
the offline export both call it, so a row served at ``as_of=H`` equals the export row at H.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import orjson
import polars as pl
import sqlalchemy as sa

from aihub.errors import InvalidInput, NotFound
from aihub.features.catalog import BUILTIN_SETS, CATALOG, WEATHER_MAX_AGE_HOURS, FeatureSet
from aihub.features.compute import ASSETS_SCHEMA, MAX_SHIFT_HOURS, compute_features
from aihub.features.frames import MARK_COLUMNS
from aihub.features.knowledge import LATEST, AsKnown
from aihub.features.origin_compute import (
    WINDOW,
    as_of_levels,
    compute_origin_features,
    dirty_hours,
)
from aihub.features.origin_one import late_hours, one_origin_features
from aihub.metrics import record_cache_lookups
from aihub.names import check_name
from aihub.services.change_feed import ChangeFeed
from aihub.stores.metadata.features import FeatureSetStore
from aihub.stores.online.base import OnlineStore, cache_key
from aihub.stores.timeseries.base import Asset, TimeSeriesStore
from aihub.timeutil import HOUR_US, floor_hour, from_us, iso, to_us, utcnow


def check_horizons(fs: FeatureSet, horizons: Sequence[int]) -> None:
    """Sets that judge hour T itself exist only for ``h = 0``."""
    if fs.judges_hour and any(h != 0 for h in horizons):
        judged = [f for f in fs.features if CATALOG[f].judges_hour]
        raise InvalidInput(
            f"horizons: feature set '{fs.name}' judges the target hour itself ({judged}); "
            "only horizon 0 exists for it"
        )


@dataclass(frozen=True, slots=True)
class OnlineRequest:
    tenant_id: str
    feature_set: str
    lookback_hours: int
    as_of: datetime | None


@dataclass(frozen=True, slots=True)
class OnlineLookup:
    hour: datetime
    field: str
    asset_ids: list[str]
    keys: list[str]
    cached: list[bytes | None]

    @property
    def complete(self) -> bool:
        return all(v is not None for v in self.cached)


def describe_set(fs: FeatureSet, *, online_backend: str, store_backend: str) -> dict[str, object]:
    """A feature set in the quick-start's ``GET /ai/features/sets`` shape."""
    return {
        "name": fs.name,
        "description": fs.description,
        "features": list(fs.features),
        "feature_count": len(fs.features),
        "use_cases": list(fs.use_cases),
        "latency": "< 1 ms (online cache hit), < 20 ms (computed)",
        "storage": f"{store_backend} + {online_backend}",
        "builtin": fs.builtin,
        "kind": "anomaly" if fs.judges_hour else "forecast",
        "has_target": fs.has_target,
    }


class FeatureService:
    def __init__(
        self,
        *,
        engine: sa.Engine,
        store: TimeSeriesStore,
        sets: FeatureSetStore,
        online: OnlineStore,
        cache_ttl: int,
        max_lookback_hours: int,
    ) -> None:
        self.engine = engine
        self.store = store
        self.sets = sets
        self.online = online
        self.cache_ttl = cache_ttl
        self.max_lookback_hours = max_lookback_hours
        self._changes = ChangeFeed(store, online)

    # -- feature sets ---------------------------------------------------------------------
    def feature_set(self, tenant_id: str, name: str) -> FeatureSet:
        if name in BUILTIN_SETS:
            return BUILTIN_SETS[name]
        with self.engine.connect() as conn:
            fs = self.sets.get(conn, tenant_id, name)
            if fs is None:
                custom = [s.name for s in self.sets.list(conn, tenant_id)]
                known = ", ".join([*BUILTIN_SETS, *custom])
                raise NotFound(f"unknown feature set '{name}' (known: {known})")
        return fs

    def list_sets(self, tenant_id: str | None) -> list[FeatureSet]:
        if not tenant_id:
            return list(BUILTIN_SETS.values())
        with self.engine.connect() as conn:
            return [*BUILTIN_SETS.values(), *self.sets.list(conn, tenant_id)]

    def create_set(
        self,
        tenant_id: str,
        *,
        name: str,
        description: str,
        features: Sequence[str],
        use_cases: Sequence[str],
    ) -> FeatureSet:
        check_name(tenant_id, "tenant_id")
        check_name(name, "name")
        if name in BUILTIN_SETS:
            raise InvalidInput(f"name: '{name}' is a built-in feature set")
        if not features:
            raise InvalidInput("features: a feature set needs at least one feature")
        unknown = [f for f in features if f not in CATALOG]
        if unknown:
            raise InvalidInput(
                f"features: unknown feature(s) {unknown}; the catalog has {sorted(CATALOG)}"
            )
        if len(set(features)) != len(features):
            raise InvalidInput("features: a feature is listed twice")
        fs = FeatureSet(name, description, tuple(features), tuple(use_cases))
        with self.engine.begin() as conn:
            self.sets.create(conn, tenant_id, fs, utcnow())
        return fs

    # -- the one computation ----------------------------------------------------------------
    def frame(
        self,
        assets: Sequence[Asset],
        fs: FeatureSet,
        *,
        start: int,
        end: int,
        lookback_hours: int,
        hours: Sequence[int] | None = None,
    ) -> pl.DataFrame:
        """Feature rows of ``assets`` for target hours in ``[start, end)`` (epoch us).

        With ``hours`` the targets are exactly those hours for every asset (online);
        without, they are the hours that have readings (export).
        """
        keys = [a.key for a in assets]
        reach = min(lookback_hours, MAX_SHIFT_HOURS) * HOUR_US
        judged = {"hourly_min", "hourly_max"} & set(fs.features)
        columns = ("mean", "min", "max") if judged else ("mean",)
        rollups = self.store.load_rollups(keys, start - reach, end, columns=columns)
        if hours is None:
            targets = rollups.filter(pl.col("hour") >= start).select("asset_key", "hour")
        else:
            targets = pl.DataFrame(
                {
                    "asset_key": [k for k in keys for _ in hours],
                    "hour": [h for _ in keys for h in hours],
                },
                schema={"asset_key": pl.Int64, "hour": pl.Int64},
            )
        asset_frame = pl.DataFrame(
            [(a.key, a.timezone, a.country, a.location_id) for a in assets],
            schema=ASSETS_SCHEMA,
            orient="row",
        )
        locations = [a.location_id for a in assets if a.location_id]
        weather_needed = any(CATALOG[f].kind == "weather" for f in fs.features)
        weather = self.store.load_weather(
            assets[0].tenant_id if assets else "",
            locations if weather_needed else [],
            start - WEATHER_MAX_AGE_HOURS * HOUR_US,
            end,
        )
        return compute_features(
            rollups=rollups,
            targets=targets,
            assets=asset_frame,
            weather=weather,
            features=fs.features,
            lookback_hours=lookback_hours,
            include_target=fs.has_target,
        )

    def knowledge_frame(
        self,
        assets: Sequence[Asset],
        fs: FeatureSet,
        *,
        origins: Sequence[int],
        horizons: Sequence[int],
        lookback_hours: int,
        as_known: AsKnown,
        with_target_only: bool,
        weather_memo: dict[tuple[Any, ...], pl.DataFrame] | None = None,
        one_asset_path: bool = True,
    ) -> pl.DataFrame:
        """Feature rows of ``assets`` at every origin in ``origins`` (epoch us, hour bounds)
        and horizon in ``horizons``, as known per ``as_known`` (``origin_compute``). The
        store is read once per kind of input for all of them (one rollup read for every
        horizon). ``with_target_only`` keeps the rows whose target hour has readings (an
        export's rows). Calls given the same ``weather_memo`` (the chunks of one export)
        read the weather of the same locations and span once.

        One asset at one origin as known at that origin (the online ``get`` with
        horizons) takes ``origin_one``, the same values on arrays, unless
        ``one_asset_path`` is False (the tests compare the two)."""
        check_horizons(fs, horizons)
        if (one_asset_path and as_known == "origin" and len(assets) == 1
                and len(set(origins)) == 1 and horizons):
            with self.store.pinned_reads(), self.store.few_rows():
                return self._one_origin_frame(assets[0], fs, int(origins[0]), horizons,
                                              lookback_hours, with_target_only)
        # Every (asset, origin, horizon), built sorted and distinct as the computation
        # takes them.
        keys = np.unique(np.asarray([a.key for a in assets], dtype=np.int64))
        starts = np.unique(np.asarray(origins, dtype=np.int64))
        ahead = np.unique(np.asarray(horizons, dtype=np.int64)) * HOUR_US
        per_key = len(starts) * len(ahead)
        origin = np.tile(np.repeat(starts, len(ahead)), len(keys))
        rows = pl.DataFrame(
            {
                "asset_key": np.repeat(keys, per_key),
                "origin": origin,
                "hour": origin + np.tile(ahead, len(keys) * len(starts)),
            },
            schema={"asset_key": pl.Int64, "origin": pl.Int64, "hour": pl.Int64},
        )
        reach = min(lookback_hours, MAX_SHIFT_HOURS) * HOUR_US
        lo = (min(origins) if origins else 0) - reach
        hi = (max(origins) + max(horizons) * HOUR_US + HOUR_US) if origins else 0
        with self.store.pinned_reads():
            return self._knowledge_frame(assets, fs, rows, lo, hi, reach, lookback_hours,
                                         as_known, with_target_only, weather_memo)

    def _knowledge_frame(
        self, assets: Sequence[Asset], fs: FeatureSet, rows: pl.DataFrame, lo: int, hi: int,
        reach: int, lookback_hours: int, as_known: AsKnown, with_target_only: bool,
        weather_memo: dict[tuple[Any, ...], pl.DataFrame] | None,
    ) -> pl.DataFrame:
        keys = [a.key for a in assets]
        judged = {"hourly_min", "hourly_max"} & set(fs.features)
        columns = ("mean", "min", "max") if judged else ("mean",)
        rollups = self.store.load_rollups(keys, lo, hi, columns=columns)
        # The marks (kept with the rollups) of the hours whose value as known by a row can
        # differ from the current one, or that are not actual: few, found in the store.
        known_after = LATEST if as_known == "latest" else None if as_known == "origin" else (
            int(as_known)
        )
        origins = sorted(set(rows.get_column("origin").to_list())) if len(assets) == 1 else (
            rows.get_column("origin").unique().sort().to_list()
        )
        marks = self.store.load_hour_marks(
            keys, lo, hi, known_after=known_after,
            origins=origins if as_known == "origin" else None, reach_hours=WINDOW,
        )
        dirty = dirty_hours(marks, rows, as_known)
        # Only hours partly known by then need their versions; before an hour's first
        # knowledge time nothing of it was known (as_of_levels: no versions, no value).
        versions = self.store.load_hour_versions(
            dirty.filter(pl.col("known_by") >= pl.col("first_known"))
            .select("asset_key", "hour")
            .unique()
        )
        overrides = as_of_levels(versions, dirty)
        asset_frame = pl.DataFrame(
            [(a.key, a.timezone, a.country, a.location_id) for a in assets],
            schema=ASSETS_SCHEMA,
            orient="row",
        )
        locations = [a.location_id for a in assets if a.location_id]
        weather_needed = any(CATALOG[f].kind == "weather" for f in fs.features)
        tenant = assets[0].tenant_id if assets else ""
        wlo = lo + reach - WEATHER_MAX_AGE_HOURS * HOUR_US
        load = self.store.load_weather if as_known == "latest" else self.store.load_weather_versions
        wanted = (tenant, tuple(sorted(set(locations))) if weather_needed else (), wlo, hi,
                  as_known == "latest")
        weather = weather_memo.get(wanted) if weather_memo is not None else None
        if weather is None:
            weather = load(tenant, list(wanted[1]), wlo, hi)
            if weather_memo is not None:  # one entry: the chunks of an export share it
                weather_memo.clear()
                weather_memo[wanted] = weather
        out = compute_origin_features(
            rollups=rollups,
            rows=rows,
            assets=asset_frame,
            weather=weather,
            features=fs.features,
            lookback_hours=lookback_hours,
            include_target=fs.has_target or with_target_only,
            as_known=as_known,
            overrides=overrides,
            marks=marks,
        )
        return _rows_with_target(out, fs) if with_target_only else out

    def _one_origin_frame(
        self, asset: Asset, fs: FeatureSet, origin: int, horizons: Sequence[int],
        lookback_hours: int, with_target_only: bool,
    ) -> pl.DataFrame:
        """``_knowledge_frame`` for one asset at one origin, as known at it: the same reads,
        computed by ``origin_one``."""
        reach = min(lookback_hours, MAX_SHIFT_HOURS) * HOUR_US
        lo, hi = origin - reach, origin + max(horizons) * HOUR_US + HOUR_US
        judged = {"hourly_min", "hourly_max"} & set(fs.features)
        columns = ("mean", "min", "max") if judged else ("mean",)
        # The marks come with the rollups (one read): the late hours and target qualities.
        rollups = self.store.load_rollups([asset.key], lo, hi,
                                          columns=(*columns, *MARK_COLUMNS))
        late, first_known = late_hours(rollups, origin)
        read = late[first_known <= origin]  # hours first known after O were not known at all
        versions = self.store.load_hour_versions(pl.DataFrame(
            {"asset_key": np.full(len(read), asset.key, dtype=np.int64), "hour": read},
            schema={"asset_key": pl.Int64, "hour": pl.Int64},
        ))
        weather_needed = any(CATALOG[f].kind == "weather" for f in fs.features)
        location = asset.location_id if weather_needed else None
        wlo = origin - WEATHER_MAX_AGE_HOURS * HOUR_US
        weather = self.store.load_weather_versions(
            asset.tenant_id, [location] if location else [], wlo, hi
        )
        out = one_origin_features(
            asset_key=asset.key, timezone=asset.timezone, country=asset.country,
            location_id=location, origin=origin, horizons=horizons, rollups=rollups,
            versions=versions, weather=weather, features=fs.features,
            lookback_hours=lookback_hours, include_target=fs.has_target or with_target_only,
        )
        return _rows_with_target(out, fs) if with_target_only else out

    # -- online ---------------------------------------------------------------------------
    def target_hour(self, fs: FeatureSet, as_of: datetime | None) -> datetime:
        """``as_of`` floored to the hour; by default the current hour for forecast sets and
        the last complete hour for sets that judge an hour."""
        if as_of is not None:
            return floor_hour(as_of)
        now = floor_hour(utcnow())
        return now - timedelta(hours=1) if fs.judges_hour else now

    def check_lookback(self, lookback_hours: int) -> None:
        if not 1 <= lookback_hours <= self.max_lookback_hours:
            raise InvalidInput(f"lookback_hours: must be between 1 and {self.max_lookback_hours}")

    def lookup(self, req: OnlineRequest, asset_ids: Sequence[str]) -> OnlineLookup | None:
        """The cached responses for ``asset_ids`` (``None`` where missing), without a
        database read, so an async route may call it on the event loop. Returns None when
        the target hour itself needs the database (a tenant's own feature set without
        ``as_of``): use ``get_online`` in a worker thread then. The change feed is followed
        by a ``ChangeFollower`` thread, not here."""
        self.check_lookback(req.lookback_hours)
        if req.as_of is not None:
            hour = floor_hour(req.as_of)
        elif (fs := BUILTIN_SETS.get(req.feature_set)) is not None:
            hour = self.target_hour(fs, None)
        else:
            return None
        return self._lookup_at(req, asset_ids, hour)

    def _lookup_at(self, req: OnlineRequest, asset_ids: Sequence[str], hour: datetime
                   ) -> OnlineLookup:
        field = f"{req.feature_set}|{req.lookback_hours}|{to_us(hour)}"
        keys = [cache_key(req.tenant_id, a) for a in asset_ids]
        cached = self.online.get_many(keys, field)
        record_cache_lookups(cached)
        return OnlineLookup(hour, field, list(asset_ids), keys, cached)

    def fill(self, req: OnlineRequest, lookup: OnlineLookup) -> list[bytes]:
        """Compute what ``lookup`` missed, cache it, and return every response in order."""
        missing = [i for i, v in enumerate(lookup.cached) if v is None]
        values = list(lookup.cached)
        if missing:
            fresh = self._compute_online(
                req,
                lookup.hour,
                [lookup.asset_ids[i] for i in missing],
                [lookup.keys[i] for i in missing],
                lookup.field,
            )
            for i, value in zip(missing, fresh, strict=True):
                values[i] = value
        return values  # type: ignore[return-value]

    def get_online(
        self, req: OnlineRequest, asset_ids: Sequence[str]
    ) -> tuple[datetime, list[bytes]]:
        """Serialized ``/get`` responses for ``asset_ids`` at one hour, cache first (may
        read the database: call it from a worker thread)."""
        self.check_lookback(req.lookback_hours)
        lookup = self._lookup_at(req, asset_ids, self._hour_for(req))
        return lookup.hour, self.fill(req, lookup)

    def _hour_for(self, req: OnlineRequest) -> datetime:
        if req.as_of is not None:
            return floor_hour(req.as_of)
        fs = BUILTIN_SETS.get(req.feature_set) or self.feature_set(req.tenant_id, req.feature_set)
        return self.target_hour(fs, None)

    def _compute_online(
        self, req: OnlineRequest, hour: datetime, asset_ids: list[str], keys: list[str], field: str
    ) -> list[bytes]:
        fs = self.feature_set(req.tenant_id, req.feature_set)
        generations = self.online.generations(keys)
        assets = self._resolve_assets(req, asset_ids)
        h = to_us(hour)
        rows = self.frame(
            assets, fs, start=h, end=h + HOUR_US, lookback_hours=req.lookback_hours, hours=[h]
        )
        by_key = {r["asset_key"]: r for r in rows.iter_rows(named=True)}
        computed_at = iso(utcnow())
        timestamp = iso(hour)
        out: list[bytes] = []
        for asset in assets:
            row = by_key[asset.key]
            features = {f: row[f] for f in fs.features}
            out.append(
                orjson.dumps(
                    {
                        "tenant_id": req.tenant_id,
                        "asset_id": asset.asset_id,
                        "feature_set": fs.name,
                        "timestamp": timestamp,
                        "lookback_hours": req.lookback_hours,
                        "features": features,
                        "feature_count": len(features),
                        "computed_at": computed_at,
                    }
                )
            )
        self.online.put_many(
            list(zip(keys, out, generations, strict=True)), field, ttl=self.cache_ttl
        )
        return out

    def _resolve_assets(self, req: OnlineRequest, asset_ids: Sequence[str]) -> list[Asset]:
        check_name(req.tenant_id, "tenant_id")
        for a in asset_ids:
            check_name(a, "asset_id")
        found = {a.asset_id: a for a in self.store.get_assets(req.tenant_id, asset_ids)}
        unknown = [a for a in asset_ids if a not in found]
        if unknown:
            if not found and not self.store.tenant_exists(req.tenant_id):
                raise NotFound(f"unknown tenant '{req.tenant_id}'")
            raise NotFound(f"unknown asset(s) for tenant '{req.tenant_id}': {unknown[:20]}")
        return [found[a] for a in asset_ids]

    def known_rows(
        self,
        req: OnlineRequest,
        asset_ids: Sequence[str],
        *,
        horizons: Sequence[int],
        as_known: AsKnown,
    ) -> tuple[datetime, list[Asset], pl.DataFrame]:
        """The feature rows of ``asset_ids`` at origin ``as_of`` (default: the current
        hour) for every horizon, as known per ``as_known``: ``(origin, assets, rows)``,
        rows sorted by asset key and target (``knowledge_frame``; one store read)."""
        self.check_lookback(req.lookback_hours)
        fs = self.feature_set(req.tenant_id, req.feature_set)
        with self.store.pinned_reads():
            assets = self._resolve_assets(req, asset_ids)
            origin = self._hour_for(req)
            frame = self.knowledge_frame(
                assets, fs, origins=[to_us(origin)], horizons=horizons,
                lookback_hours=req.lookback_hours, as_known=as_known, with_target_only=False,
            )
        return origin, assets, frame

    def get_known(
        self,
        req: OnlineRequest,
        asset_ids: Sequence[str],
        *,
        horizons: Sequence[int] | None,
        as_known: AsKnown,
    ) -> tuple[datetime, list[bytes]]:
        """Serialized ``/get`` answers at origin ``as_of`` (default: the current hour) for
        ``horizons`` and ``as_known``, computed from the store (never cached: the cache
        holds ``h = 0``, ``"latest"`` answers only). Without ``horizons`` the answer has
        today's shape, with them one row per horizon."""
        fs = self.feature_set(req.tenant_id, req.feature_set)
        origin, assets, frame = self.known_rows(
            req, asset_ids, horizons=list(horizons or [0]), as_known=as_known
        )
        shown = as_known if isinstance(as_known, str) else iso(from_us(as_known))
        by_key: dict[int, list[dict[str, Any]]] = {}
        for r in frame.iter_rows(named=True):
            by_key.setdefault(r["asset_key"], []).append(r)
        computed_at = iso(utcnow())
        out: list[bytes] = []
        for asset in assets:
            rows = by_key.get(asset.key, [])
            head: dict[str, object] = {
                "tenant_id": req.tenant_id, "asset_id": asset.asset_id, "feature_set": fs.name,
            }
            if horizons is None:
                features = {f: rows[0][f] for f in fs.features}
                body = {**head, "timestamp": iso(origin), "lookback_hours": req.lookback_hours,
                        "features": features, "feature_count": len(features),
                        "computed_at": computed_at}
            else:
                body = {
                    **head, "origin": iso(origin), "as_known": shown,
                    "rows": [
                        {"timestamp": iso(from_us(r["hour"])), "horizon": r["horizon"],
                         "features": {f: r[f] for f in fs.features}}
                        for r in rows
                    ],
                    "feature_count": len(fs.features), "computed_at": computed_at,
                }
            out.append(orjson.dumps(body))
        return origin, out

    def follow_changes(self) -> int:
        """Drop the cache entries of writes this cache never heard of, found through the
        store's change feed (every write, from any process, advances it). An in-process
        cache hears only its own process's writes (not a CLI import into the same SQLite
        file, nor another replica's ingest on PostgreSQL); a shared cache (Redis) hears
        every write whose invalidation reached it (not that of a writer cut off from Redis
        that exited or died). A ``ChangeFollower`` thread runs this every
        ``AIHUB_CHANGE_FOLLOW_INTERVAL`` seconds in every API process, never a request.
        The first call only sets where following starts. Returns how many entries it
        dropped (``ChangeFeed``)."""
        return self._changes.follow()


def _rows_with_target(rows: pl.DataFrame, fs: FeatureSet) -> pl.DataFrame:
    """An export's rows: those whose target hour has readings, without the target columns
    when the feature set has no target."""
    rows = rows.filter(pl.col("target").is_not_null())
    return rows if fs.has_target else rows.drop("target", "target_quality")
