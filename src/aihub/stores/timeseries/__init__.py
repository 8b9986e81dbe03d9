from aihub.stores.timeseries.base import Asset, AssetChanges, IngestResult, TimeSeriesStore

__all__ = ["Asset", "AssetChanges", "IngestResult", "TimeSeriesStore"]
