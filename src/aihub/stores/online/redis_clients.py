"""How the Redis online store reaches Redis: one server, or a Redis Cluster.

The store speaks in raw commands; the two connections differ only in how keys group and
how a batch of commands travels:

- ``Standalone`` (``REDIS_URL=redis://...``): every key is in one group, so a multi-key
  operation is one command (one script call for a batch read of 100 assets, as always).
- ``Cluster`` (``REDIS_CLUSTER_NODES=host:port,...`` or
  ``REDIS_URL=redis+cluster://[user:password@]host:port[,host:port...]``, ``rediss+cluster``
  for TLS): keys group by hash slot, one command per slot, and a batch becomes one
  pipeline per master, sent over the connections of ``redis.cluster.RedisCluster`` (which
  keeps the slot map and follows redirections). The cluster client is built on first use,
  so a cluster that is down when aihub starts is an outage like any other (features
  computed from the store), not a crash.

Both run a batch of one command directly and several as one pipeline, and reload the
store's Lua scripts once if a server lost them (a restart, a failover, a new node).
"""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import parse_url
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MovedError,
    NoScriptError,
    RedisClusterException,
    TryAgainError,
)
from redis.retry import Retry

# Everything a call to either client can raise for an unreachable or unusable Redis.
ERRORS: tuple[type[Exception], ...] = (redis.RedisError, RedisClusterException)

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}

Command = tuple[Any, ...]


def is_cluster_url(url: str | None) -> bool:
    return bool(url) and urlsplit(url).scheme in CLUSTER_SCHEMES  # type: ignore[arg-type]


def parse_nodes(text: str, what: str = "REDIS_CLUSTER_NODES") -> list[tuple[str, int]]:
    """``host:port,host:port,...`` as ``(host, port)`` pairs; a clear error otherwise."""
    nodes: list[tuple[str, int]] = []
    for item in text.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"{what}: {item.strip()!r} is not host:port "
                             "(expected host:port,host:port,...)")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


class Connection(ABC):
    """A client plus the two things the store needs to know: key groups and batches."""

    cluster = False

    def __init__(self) -> None:
        self.scripts: dict[str, str] = {}  # sha1 -> body, reloaded on NOSCRIPT

    @property
    @abstractmethod
    def client(self) -> Any:
        """The redis-py client (``redis.Redis`` or ``redis.cluster.RedisCluster``)."""

    def script(self, body: str) -> str:
        """Register a Lua script; returns the sha1 to call it with ``EVALSHA``."""
        sha = hashlib.sha1(body.encode(), usedforsecurity=False).hexdigest()
        self.scripts[sha] = body
        return sha

    def groups(self, keys: Sequence[str]) -> list[list[int]]:
        """Indices of ``keys`` in groups that one command (or script) may touch together."""
        return [list(range(len(keys)))]

    def run(self, commands: Sequence[Command]) -> list[Any]:
        """The replies to ``commands``: one alone directly, several as one pipeline."""
        try:
            return self._run(commands)
        except NoScriptError:  # the server lost its scripts: load them, try once more
            for body in self.scripts.values():
                self.client.script_load(body)
            return self._run(commands)

    def run_then(self, first: Sequence[Command], then: Sequence[Command]) -> None:
        """Run ``first``, and ``then`` only once every command of ``first`` succeeded."""
        if first:
            self.run(first)
        if then:
            self.run(then)

    def _run(self, commands: Sequence[Command]) -> list[Any]:
        client = self.client
        if len(commands) == 1:
            return [client.execute_command(*commands[0])]
        pipe = client.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(pipe.execute())

    def ping(self) -> None:
        self.client.ping()

    @abstractmethod
    def close(self) -> None:
        """Release connections."""


class Standalone(Connection):
    def __init__(self, url: str, *, socket_timeout: float, max_connections: int) -> None:
        super().__init__()
        self.pool = redis.ConnectionPool.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            max_connections=max_connections,
            health_check_interval=30,
        )
        self._client = redis.Redis(connection_pool=self.pool)

    @property
    def client(self) -> redis.Redis:
        return self._client

    def run_then(self, first: Sequence[Command], then: Sequence[Command]) -> None:
        """One round trip: a MULTI/EXEC transaction runs all of it, or nothing if the
        connection fails before EXEC (no scripts here, so no NOSCRIPT to recover from)."""
        pipe = self._client.pipeline(transaction=True)
        for command in [*first, *then]:
            pipe.execute_command(*command)
        pipe.execute()

    def close(self) -> None:
        self.pool.disconnect()


class Cluster(Connection):
    cluster = True

    def __init__(
        self,
        *,
        url: str | None,
        nodes: Sequence[tuple[str, int]],
        socket_timeout: float,
        max_connections: int,
    ) -> None:
        super().__init__()
        if url is None and not nodes:
            raise ValueError("a Redis Cluster needs at least one host:port")
        if url is not None:
            parsed = parse_url(url)  # checked now: the client itself is built on first use
            if "path" in parsed or parsed.get("db", 0) != 0:
                raise ValueError("REDIS_URL: a Redis Cluster has only database 0 and no "
                                 "unix sockets")
        self._url = url
        self._nodes = [ClusterNode(host, port) for host, port in nodes]
        self._options: dict[str, Any] = {
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_timeout,
            "max_connections": max_connections,
            "health_check_interval": 30,
            # No retries inside the client: a node that times out costs one timeout, then
            # the store backs off (the client has refreshed the slot map by then, so a
            # failover is picked up by the next call).
            "retry": Retry(NoBackoff(), 0),
        }
        self._client: RedisCluster | None = None
        self._lock = threading.Lock()
        self._refresh = False

    @classmethod
    def from_url(cls, url: str, *, extra_nodes: Sequence[tuple[str, int]] = (),
                 **options: Any) -> Cluster:
        """``redis+cluster://[user:password@]host:port[,host:port...][/0][?option=...]``."""
        parts = urlsplit(url)
        auth, _, hosts = parts.netloc.rpartition("@")
        nodes = parse_nodes(hosts, "REDIS_URL")
        first = hosts.split(",")[0].strip()
        plain = parts._replace(scheme=CLUSTER_SCHEMES[parts.scheme],
                               netloc=f"{auth}@{first}" if auth else first).geturl()
        return cls(url=plain, nodes=[*nodes[1:], *extra_nodes], **options)

    @property
    def client(self) -> RedisCluster:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    # Connects to the startup nodes and reads the slot map: raises if none
                    # answers (the store treats that as an outage and tries again later).
                    self._client = RedisCluster(url=self._url, startup_nodes=list(self._nodes),
                                                **self._options)
                client = self._client
        return client

    def _run(self, commands: Sequence[Command]) -> list[Any]:
        """One plain pipeline per master, straight to the node that serves each command's
        slot (about 1.8x faster than the cluster client's own pipeline for 100 reads). A
        reply that says the slot moved (resharding, failover) sends that command again
        through the cluster client, which follows the redirection and refreshes its map."""
        client = self.client
        nodes = client.nodes_manager
        if self._refresh:  # a node failed last time: read the slot map again first
            nodes.initialize()
            self._refresh = False
        if len(commands) == 1:  # the hot path: one asset's entry
            command = commands[0]
            node = nodes.get_node_from_slot(key_slot(_first_key(command).encode()))
            try:
                return [client.get_redis_connection(node).execute_command(*command)]
            except _REDIRECTED:
                return [client.execute_command(*command)]
            except (redis.ConnectionError, redis.TimeoutError):
                self._refresh = True
                raise
        by_node: dict[str, tuple[Any, list[int]]] = {}
        for i, command in enumerate(commands):
            node = nodes.get_node_from_slot(key_slot(_first_key(command).encode()))
            by_node.setdefault(node.name, (node, []))[1].append(i)
        replies: list[Any] = [None] * len(commands)
        try:
            for node, indices in by_node.values():
                pipe = client.get_redis_connection(node).pipeline(transaction=False)
                for i in indices:
                    pipe.execute_command(*commands[i])
                for i, reply in zip(indices, pipe.execute(raise_on_error=False), strict=True):
                    replies[i] = reply
        except (redis.ConnectionError, redis.TimeoutError):
            self._refresh = True
            raise
        moved = [i for i, reply in enumerate(replies) if isinstance(reply, _REDIRECTED)]
        if moved:
            pipe = client.pipeline()
            for i in moved:
                pipe.execute_command(*commands[i])
            for i, reply in zip(moved, pipe.execute(raise_on_error=False), strict=True):
                replies[i] = reply
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    def ping(self) -> None:
        """Every master answers (a client's own PING may pick any one node)."""
        self.client.ping(target_nodes=RedisCluster.PRIMARIES)

    def groups(self, keys: Sequence[str]) -> list[list[int]]:
        by_slot: dict[int, list[int]] = {}
        for i, key in enumerate(keys):
            by_slot.setdefault(key_slot(key.encode()), []).append(i)
        return list(by_slot.values())

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


# Replies meaning "this slot is (being) served elsewhere": the cluster client follows them.
_REDIRECTED = (MovedError, AskError, TryAgainError, ClusterDownError)


def _first_key(command: Command) -> str:
    """The key that routes ``command`` (all of a command's keys share its slot)."""
    return str(command[3] if command[0] == "EVALSHA" else command[1])


def connect(
    url: str | None,
    *,
    cluster_nodes: str | None = None,
    socket_timeout: float = 0.5,
    max_connections: int = 64,
) -> Connection:
    """The connection ``REDIS_URL`` and ``REDIS_CLUSTER_NODES`` describe.

    With ``cluster_nodes`` the nodes are startup nodes of a cluster and ``url`` (optional)
    one more, whose user, password, TLS and options apply to every node.
    """
    options: dict[str, Any] = {"socket_timeout": socket_timeout,
                               "max_connections": max_connections}
    extra = parse_nodes(cluster_nodes) if cluster_nodes else []
    if url is not None and is_cluster_url(url):
        return Cluster.from_url(url, extra_nodes=extra, **options)
    if extra:
        return Cluster(url=url, nodes=extra, **options)
    if url is None:
        raise ValueError("REDIS_URL or REDIS_CLUSTER_NODES is needed for the Redis store")
    return Standalone(url, **options)
