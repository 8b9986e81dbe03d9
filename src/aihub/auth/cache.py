"""Key verification with a short-TTL in-memory cache: the hot path never queries the DB.

After the first request with a key, its verdict (principal, or unknown/revoked) is kept for
``ttl`` seconds; so are negative verdicts (bounded), so a flood of random keys can't turn
into a flood of queries. **Revocation and new keys take effect within ``ttl`` seconds**
(``AIHUB_API_KEY_CACHE_TTL``, default 10) on every replica. Whether any key exists is
cached the same way; once keys exist they always do (revoked keys are kept), so that
verdict is never revisited.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from aihub.auth.keys import ApiKeyService
from aihub.auth.scope import Principal

_NEGATIVE_MAX = 10_000


class KeyCache:
    def __init__(self, store: ApiKeyService, *, ttl: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.ttl = ttl
        self.clock = clock
        self._verdicts: dict[str, tuple[Principal | None, float]] = {}
        self._negatives = 0
        self._enabled = False
        self._enabled_checked = float("-inf")

    def enabled(self) -> bool:
        """Whether keys are configured (any key row exists)."""
        if self._enabled:
            return True
        now = self.clock()
        if now - self._enabled_checked >= self.ttl:
            self._enabled = self.store.any()
            self._enabled_checked = now
        return self._enabled

    def cached(self, key: str) -> tuple[bool, Principal | None]:
        """(hit, principal) from memory only."""
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        hit = self._verdicts.get(digest)
        if hit is not None and hit[1] > self.clock():
            return True, hit[0]
        return False, None

    def verify(self, key: str) -> Principal | None:
        """The key's principal, or None if unknown or revoked (may query the store)."""
        hit, principal = self.cached(key)
        if hit:
            return principal
        digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
        found = self.store.find(digest)
        ok = found is not None and found.revoked_at is None
        # The lookup was by hash; compare again in constant time all the same.
        ok = ok and found is not None and hmac.compare_digest(digest, found.key_hash)
        principal = found.principal() if ok and found is not None else None
        if principal is None:
            self._negatives += 1
            if self._negatives > _NEGATIVE_MAX:
                self._drop_negatives()
        self._verdicts[digest] = (principal, self.clock() + self.ttl)
        return principal

    def clear(self) -> None:
        self._verdicts.clear()
        self._negatives = 0
        self._enabled = False
        self._enabled_checked = float("-inf")

    def _drop_negatives(self) -> None:
        self._verdicts = {k: v for k, v in self._verdicts.items() if v[0] is not None}
        self._negatives = 0
