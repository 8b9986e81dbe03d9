"""A real Redis Cluster for the test session: three masters on free loopback ports.

Started once per session (``redis_cluster`` fixture) from the ``redis-server`` and
``redis-cli`` on the PATH, which are required: a machine without them fails these tests
loudly rather than skipping them. Each node runs in a temporary directory with no
persistence; the processes are killed at the end. Tests keep to a key prefix of their own
(``cluster_prefix``), so they never see each other's keys.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from tests.conftest import free_port

MASTERS = 3


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        pytest.fail(f"{name} not found on PATH: the Redis Cluster tests need redis-server and "
                    "redis-cli (Debian/Ubuntu: apt-get install redis-server redis-tools)",
                    pytrace=False)
    return exe


@dataclass
class NodeProcess:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)


@dataclass
class RedisClusterServers:
    nodes: list[NodeProcess] = field(default_factory=list)

    @property
    def addresses(self) -> str:
        """``host:port,host:port,...`` as ``REDIS_CLUSTER_NODES`` takes it."""
        return ",".join(n.address for n in self.nodes)

    def client(self) -> RedisCluster:
        return RedisCluster(host="127.0.0.1", port=self.nodes[0].port, socket_timeout=5)

    def node_of(self, key: str) -> NodeProcess:
        """The master serving ``key``'s slot."""
        with self.nodes[0].client() as c:
            slot = int(c.execute_command("CLUSTER", "KEYSLOT", key))
            for start, end, master, *_ in c.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    port = int(master[1])
                    return next(n for n in self.nodes if n.port == port)
        raise AssertionError(f"no node serves the slot of {key!r}")

    def move_slot_of(self, key: str, to: NodeProcess) -> None:
        """Reshard: move ``key``'s slot, with its keys, to master ``to`` (as
        ``redis-cli --cluster reshard`` does); clients holding the old map get MOVED."""
        source = self.node_of(key)
        assert source is not to
        with source.client() as src, to.client() as dst:
            slot = int(src.execute_command("CLUSTER", "KEYSLOT", key))
            src_id, dst_id = src.execute_command("CLUSTER", "MYID"), dst.execute_command(
                "CLUSTER", "MYID")
            dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
                src.execute_command("MIGRATE", "127.0.0.1", to.port, "", 0, 5000, "KEYS", *keys)
            for node in [to, source, *(n for n in self.nodes if n not in (to, source))]:
                with node.client() as c:
                    c.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)

    @contextmanager
    def frozen(self, node: NodeProcess) -> Iterator[None]:
        """``node`` stops answering (SIGSTOP: connections hang, as in a partition or a
        stalled host) and resumes afterwards with its data. Keep it short: the cluster
        marks a node failed after cluster-node-timeout (15 s)."""
        os.kill(node.proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(node.proc.pid, signal.SIGCONT)

    def keys(self, pattern: str) -> list[bytes]:
        found: list[bytes] = []
        for n in self.nodes:
            with n.client() as c:
                found += list(c.scan_iter(match=pattern, count=1000))
        return found

    def delete(self, pattern: str) -> None:
        for n in self.nodes:
            with n.client() as c:
                for key in list(c.scan_iter(match=pattern, count=1000)):
                    c.delete(key)  # one key at a time: keys of other slots can't share a DEL


def _wait(what: str, check: object, deadline_s: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis cluster: {what} within {deadline_s:.0f} s")
        time.sleep(0.05)


def start_cluster(work: Path) -> RedisClusterServers:
    server, cli = _tool("redis-server"), _tool("redis-cli")
    servers = RedisClusterServers()
    try:
        for _ in range(MASTERS):
            port, bus = free_port(), free_port()
            log = open(work / f"redis-{port}.log", "wb")  # noqa: SIM115 - held by the process
            proc = subprocess.Popen(
                [server, "--port", str(port), "--cluster-enabled", "yes",
                 "--cluster-port", str(bus),
                 "--cluster-config-file", str(work / f"nodes-{port}.conf"),
                 "--save", "", "--appendonly", "no", "--bind", "127.0.0.1",
                 "--daemonize", "no", "--dir", str(work)],
                stdout=log, stderr=subprocess.STDOUT,
            )
            log.close()
            node = NodeProcess(port, proc)
            servers.nodes.append(node)
        for node in servers.nodes:
            _wait(f"node {node.address} did not start (see {work})",
                  lambda n=node: n.proc.poll() is None and n.client().ping())
        created = subprocess.run(
            [cli, "--cluster", "create", *(n.address for n in servers.nodes),
             "--cluster-replicas", "0", "--cluster-yes"],
            capture_output=True, text=True, timeout=120,
        )
        if created.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}"
                               f"{created.stderr}")
        for node in servers.nodes:
            _wait(f"node {node.address} did not reach cluster_state:ok",
                  lambda n=node: b"cluster_state:ok" in n.client().execute_command(
                      "CLUSTER", "INFO"))
    except BaseException:
        stop_cluster(servers)
        raise
    return servers


def stop_cluster(servers: RedisClusterServers) -> None:
    for node in servers.nodes:
        if node.proc.poll() is None:
            os.kill(node.proc.pid, signal.SIGCONT)  # a frozen node can't act on SIGKILL late
            node.proc.kill()
        node.proc.wait(timeout=10)


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    """A 3-master Redis Cluster of this session's own, killed at the end."""
    servers = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield servers
    finally:
        stop_cluster(servers)


@pytest.fixture
def cluster_prefix(redis_cluster: RedisClusterServers) -> Iterator[str]:
    """A key prefix of this test's own on the session's cluster; its keys are deleted after."""
    prefix = f"aihub-test-{uuid.uuid4().hex[:12]}:"
    yield prefix
    redis_cluster.delete(f"{prefix}*")
