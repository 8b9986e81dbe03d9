from aihub.stores.timeseries.base import (
    Asset,
    AssetChanges,
    Change,
    ChangeBatch,
    IngestResult,
    TimeSeriesStore,
)

__all__ = ["Asset", "AssetChanges", "Change", "ChangeBatch", "IngestResult", "TimeSeriesStore"]
