"""The floor for online latency on the production backends: the smallest FastAPI endpoint
that returns a stored JSON document with one HGET from Redis (redis-py, pooled), served by
the same uvicorn. ``FLOOR_REDIS_URL`` and ``FLOOR_REDIS_KEY`` come from the benchmark."""

from __future__ import annotations

import os

import redis
from fastapi import FastAPI, Request, Response
from floor_app import DOC as _DOC


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
