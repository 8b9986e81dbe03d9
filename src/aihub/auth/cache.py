"""Key verification with short-TTL in-memory verdicts: the hot path never queries the DB.

After the first request with a key, its verdict (principal, or unknown/revoked) is kept for
``ttl`` seconds in a ``cachetools.TTLCache``; negative verdicts sit in a second, bounded one
(``_REFUSED_MAX``), so a flood of random keys can neither turn into a flood of queries nor
grow memory, nor push out the keys that are real. **Revocation and new keys take effect
within ``ttl`` seconds** (``AIHUB_API_KEY_CACHE_TTL``, default 10) on every replica.

Whether any key exists is known from memory too. Once keys exist they always do (revoked
keys are kept), so that verdict is never revisited; while none exist, a look older than
``ttl`` is repeated in a background thread and the last verdict holds until it lands (also
when the database can't be reached then). Only the very first look is made on a request's
path, and the middleware makes it in a worker thread.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Callable

from cachetools import TTLCache

from aihub.auth.keys import ApiKeyService
from aihub.auth.scope import Principal

log = logging.getLogger("aihub.auth")

_KNOWN_MAX = 100_000
_REFUSED_MAX = 10_000


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class KeyCache:
    def __init__(self, store: ApiKeyService, *, ttl: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._known: TTLCache[str, Principal] = TTLCache(_KNOWN_MAX, ttl, timer=clock)
        self._refused: TTLCache[str, bool] = TTLCache(_REFUSED_MAX, ttl, timer=clock)
        self._enabled: bool | None = None
        self._enabled_at = float("-inf")
        self._refreshing = False

    # -- are keys configured? ---------------------------------------------------------------
    def enabled_now(self) -> bool | None:
        """Whether keys are configured, from memory; None when a look at the store is due
        that must happen before answering (the first one, or every time with ``ttl`` 0)."""
        if self._enabled:
            return True
        if self._enabled is None or self.ttl <= 0:
            return None
        if self.clock() - self._enabled_at >= self.ttl and not self._refreshing:
            self._refreshing = True
            threading.Thread(target=self._refresh, name="aihub-key-check", daemon=True).start()
        return False

    def check_enabled(self) -> bool:
        """Look at the store now (may raise the database's errors)."""
        found = self.store.any()
        with self._lock:
            self._enabled = bool(found or self._enabled)
            self._enabled_at = self.clock()
            return self._enabled

    def _refresh(self) -> None:
        try:
            self.check_enabled()
        except Exception as exc:  # keep the last verdict; look again after ttl
            log.warning("could not check whether API keys exist: %s", exc)
            with self._lock:
                self._enabled_at = self.clock()
        finally:
            self._refreshing = False

    # -- verdicts ---------------------------------------------------------------------------
    def cached(self, key: str) -> tuple[bool, Principal | None]:
        """(hit, principal) from memory only."""
        digest = _digest(key)
        with self._lock:
            principal = self._known.get(digest)
            if principal is not None:
                return True, principal
            return digest in self._refused, None

    def verify(self, key: str) -> Principal | None:
        """The key's principal, or None if unknown or revoked (may query the store)."""
        hit, principal = self.cached(key)
        if hit:
            return principal
        digest = _digest(key)
        found = self.store.find(digest)
        ok = found is not None and found.revoked_at is None
        # The lookup was by hash; compare again in constant time all the same.
        ok = ok and found is not None and hmac.compare_digest(digest, found.key_hash)
        principal = found.principal() if ok and found is not None else None
        with self._lock:
            if principal is None:
                self._refused[digest] = True
            else:
                self._known[digest] = principal
        return principal

    def clear(self) -> None:
        with self._lock:
            self._known.clear()
            self._refused.clear()
            self._enabled = None
            self._enabled_at = float("-inf")
