from aihub.stores.online.base import OnlineStore

__all__ = ["OnlineStore"]
