"""The floor for online latency: the smallest FastAPI endpoint that returns a stored JSON
document from the same in-process cache class aihub uses. Served by the same uvicorn."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response

from aihub.stores.online.memory import MemoryOnlineStore

_STORE = MemoryOnlineStore()
# The document both floors serve: the size and shape of a forecast_basic response.
DOC = (
    b'{"tenant_id":"bench","asset_id":"meter-001","feature_set":"forecast_basic",'
    b'"timestamp":"2024-06-01T12:00:00Z","lookback_hours":168,"features":{"hour_of_day":14,'
    b'"day_of_week":5,"is_weekend":1,"hourly_avg":45.2,"hourly_std":5.8,"lag_1h":43.5,'
    b'"lag_24h":44.8,"lag_168h":45.1,"rolling_24h_avg":44.9,"rolling_24h_std":6.1},'
    b'"feature_count":10,"computed_at":"2024-06-01T12:00:01Z"}'
)
_STORE.put_many([("features:bench:meter-001:latest", DOC, 0)], "f", ttl=10**9)


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/floor")
    async def floor(request: Request) -> Response:
        await request.body()
        value = _STORE.get_many(["features:bench:meter-001:latest"], "f")[0]
        return Response(content=value, media_type="application/json")

    return app
