"""The floor for online latency on the production backends: the smallest FastAPI endpoint
that returns a stored JSON document with one HGET from Redis (redis-py, pooled), served by
the same uvicorn. ``FLOOR_REDIS_URL`` and ``FLOOR_REDIS_KEY`` come from the benchmark."""

from __future__ import annotations

import os

import redis
from fastapi import FastAPI, Request, Response

_DOC = (
    b'{"tenant_id":"bench","asset_id":"meter-001","feature_set":"forecast_basic",'
    b'"timestamp":"2024-06-01T12:00:00Z","lookback_hours":168,"features":{"hour_of_day":14,'
    b'"day_of_week":5,"is_weekend":1,"hourly_avg":45.2,"hourly_std":5.8,"lag_1h":43.5,'
    b'"lag_24h":44.8,"lag_168h":45.1,"rolling_24h_avg":44.9,"rolling_24h_std":6.1},'
    b'"feature_count":10,"computed_at":"2024-06-01T12:00:01Z"}'
)


def create_app() -> FastAPI:
    client = redis.Redis.from_url(os.environ["FLOOR_REDIS_URL"])
    key = os.environ["FLOOR_REDIS_KEY"]
    client.hset(key, "f", _DOC)
    client.expire(key, 3600)
    app = FastAPI()

    @app.post("/floor")
    async def floor(request: Request) -> Response:
        await request.body()
        return Response(content=client.hget(key, "f"), media_type="application/json")

    return app
