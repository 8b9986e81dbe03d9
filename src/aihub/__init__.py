"""aihub: a feature store for smart-meter time series and a model registry.

    from aihub import Client, Settings, create_app
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Client", "Settings", "__version__", "create_app"]


def __getattr__(name: str) -> object:  # lazy: importing aihub stays cheap for the CLI
    if name == "Settings":
        from aihub.config import Settings

        return Settings
    if name == "Client":
        from aihub.client import Client

        return Client
    if name == "create_app":
        from aihub.api.app import create_app

        return create_app
    raise AttributeError(name)
