"""Workers on separate "hosts" (network namespaces) against one Postgres, one on a bad network.

The test makes two network namespaces, each joined to this machine by a veth pair on an
address range of its own (10.251.x.0/24), and a Postgres listening only on 127.0.0.1 and
the two host-side addresses. Two workers run in each namespace. The second one's link is
degraded both ways: ``tc netem`` adds 40 ms ± 10 ms of delay and 5% packet loss, or, on a
kernel without netem (this CI's), ``tc tbf`` caps it at 1 Mbit/s with a 30 ms queue
(queueing delay, and tail drops when the workers burst). Mid-load that link is cut for
longer than a lease (2 s), then restored. Afterwards every run completed
exactly once (:func:`tests.faults.audit.check_invariants`), the cut-off workers' leases
expired and their tasks ran elsewhere, and no worker exited.

Needs root and iproute2 (``ip netns``, ``tc``); CI runs as root. Skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from pgflow import Client
from pgflow.db.schema import install
from tests.faults.audit import Figures, check_invariants
from tests.faults.fleet import ROOT, Fleet
from tests.faults.test_kill_and_restart import (
    payloads,
    prepare,
    start_all,
    task_count,
    wait_for_progress,
    wait_until_finished,
)
from tests.replication import standalone_server

pytestmark = pytest.mark.skipif(
    os.name != "posix" or os.geteuid() != 0 or shutil.which("ip") is None,
    reason="network namespaces need root and iproute2 (ip netns, tc); CI runs as root",
)
DEADLINE = 120.0
NETEM = ("netem", "delay", "40ms", "10ms", "loss", "5%")
TBF = ("tbf", "rate", "1mbit", "burst", "8kb", "latency", "30ms")


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


class Namespace:
    """A network namespace joined to this machine by a veth pair on 10.251.``net``.0/24."""

    def __init__(self, tag: str, net: int) -> None:
        self.name = f"pgflow-{tag}"
        self.host_dev, self.ns_dev = f"pgf{tag}h", f"pgf{tag}n"
        self.host_ip, self.ns_ip = f"10.251.{net}.1", f"10.251.{net}.2"

    def create(self) -> None:
        ip("netns", "add", self.name)
        ip("link", "add", self.host_dev, "type", "veth", "peer", "name", self.ns_dev)
        ip("link", "set", self.ns_dev, "netns", self.name)
        ip("addr", "add", f"{self.host_ip}/24", "dev", self.host_dev)
        ip("link", "set", self.host_dev, "up")
        self.inside("ip", "addr", "add", f"{self.ns_ip}/24", "dev", self.ns_dev)
        self.inside("ip", "link", "set", self.ns_dev, "up")
        self.inside("ip", "link", "set", "lo", "up")

    def inside(self, *command: str) -> None:
        ip("netns", "exec", self.name, *command)

    def degrade(self) -> str:
        """Delay and drop packets both ways (netem, else tbf); which one was used."""
        for qdisc in NETEM, TBF:
            try:
                self.inside("tc", "qdisc", "add", "dev", self.ns_dev, "root", *qdisc)
            except subprocess.CalledProcessError:
                continue  # this kernel lacks the qdisc
            tc = ["tc", "qdisc", "add", "dev", self.host_dev, "root", *qdisc]
            subprocess.run(tc, check=True, capture_output=True, timeout=30)
            return qdisc[0]
        raise AssertionError("neither tc netem nor tc tbf is available")

    def link(self, up: bool) -> None:
        ip("link", "set", self.host_dev, "up" if up else "down")

    def delete(self) -> None:
        for command in (["netns", "del", self.name], ["link", "del", self.host_dev]):
            subprocess.run(["ip", *command], check=False, capture_output=True, timeout=30)


class NamespacedFleet(Fleet):
    """A :class:`Fleet` whose workers run inside a network namespace."""

    def __init__(self, namespace: Namespace, url: str, logs: Path) -> None:
        super().__init__(url, logs, concurrency=4)
        self.namespace = namespace

    def spawn(self, count: int = 1) -> None:
        with self._lock:
            for _ in range(count):
                log = open(self.logs / f"worker-{len(self.processes)}.log", "wb")  # noqa: SIM115
                self._files.append(log)
                command = ["ip", "netns", "exec", self.namespace.name, sys.executable, "-m"]
                command += ["tests.faults.worker_proc", self.url, str(self.concurrency)]
                process = subprocess.Popen(
                    command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
                )
                self.processes.append(process)


def test_workers_on_two_hosts_one_lossy_and_cut_off_lose_nothing(
    logs: Path, figures: Figures
) -> None:
    tag, net = f"{os.getpid() % 10_000}", 2 * (os.getpid() % 120)
    clean, lossy = Namespace(f"{tag}a", net), Namespace(f"{tag}b", net + 1)
    try:
        for namespace in (clean, lossy):
            namespace.create()
        lossy.degrade()
        addresses = f"127.0.0.1,{clean.host_ip},{lossy.host_ip}"
        with standalone_server(addresses, "10.251.0.0/16") as server:
            server.execute("create database pgflow")
            local = server.url("pgflow")
            install(local)
            prepare(local)
            remote = {
                ns.name: f"postgresql://postgres@{ns.host_ip}:{server.port}/pgflow?connect_timeout=5"
                for ns in (clean, lossy)
            }
            _load(local, remote, clean, lossy, logs, figures)
    finally:
        for namespace in (clean, lossy):
            namespace.delete()


def wait_for_lease(url: str, pids: list[int], timeout: float = 60.0) -> None:
    """Poll until a worker among ``pids`` holds a lease (a readiness wait, bounded)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "select count(*) from pgflow.step_tasks t join pgflow.workers w "
                "using (worker_id) where t.status = 'started' and w.pid = any(%s)",
                [pids],
            ).fetchone()
            if row is not None and row[0] > 0:
                return
            time.sleep(0.02)
    raise AssertionError("the workers on the lossy network never held a task")


def _load(
    local: str,
    remote: dict[str, str],
    clean: Namespace,
    lossy: Namespace,
    logs: Path,
    figures: Figures,
) -> None:
    load, expected = payloads(runs=20, map_size=200), {}
    (logs / "a").mkdir()
    (logs / "b").mkdir()
    good = NamespacedFleet(clean, remote[clean.name], logs / "a")
    bad = NamespacedFleet(lossy, remote[lossy.name], logs / "b")
    with good, bad, Client(local) as client:
        good.spawn(2)
        bad.spawn(2)
        good.wait_ready(local)
        bad.wait_ready(local)
        start_all(client, load, expected)
        wait_for_progress(local, task_count(20, 200) // 3, good)
        wait_for_lease(local, [p.pid for p in bad.processes])
        lossy.link(up=False)  # the lossy host drops off the network for longer than a lease
        time.sleep(4.0)  # the partition itself, not a synchronisation
        lossy.link(up=True)
        wait_until_finished(local, len(load), good, time.monotonic() + DEADLINE)
        bad_pids = [p.pid for p in bad.processes]
        died = good.died_while_serving() + bad.died_while_serving()
        text = good.log_tail() + bad.log_tail()
    figures.workers_started = 4
    check_invariants(local, expected, figures)
    assert not died, text
    assert figures.requeued > 0  # leases of the cut-off workers expired and were taken over
    with psycopg.connect(local, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from faults.executions where pid = any(%s)", [bad_pids]
        ).fetchone()
    assert row is not None and row[0] > 0, "the workers on the lossy network ran nothing"
