"""Hosts as network namespaces, joined by veth pairs: a small test fabric.

Owns creating N namespaces (``presplit-<run tag>-h<i>``), wiring them either
to one bridge (which lives in its own ``...-sw`` namespace, so the root
namespace is never touched) or pairwise (one veth pair and one /30 per pair),
giving them 10.x addresses, bringing up ``lo``, and deleting it all again.

veth ends are created directly inside their namespaces (``ip -n A link add
... peer ... netns B``), so interface names never meet in the root namespace
and two runs on one machine cannot collide. Addresses are private to the
namespaces: no traffic leaves them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

from presplit.backends.qemu.cleanup import PREFIX, Teardown, _running, run_tag
from presplit.errors import PresplitError


class NetnsError(PresplitError, RuntimeError):
    """An ``ip`` command failed; the message carries the command and its stderr."""


def _ip(*args: str) -> str:
    cmd = ["ip", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise NetnsError(f"`{' '.join(cmd)}` failed (exit {proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


@dataclass(frozen=True)
class FabricHost:
    """One host of the fabric."""

    index: int
    name: str  # e.g. "p1234-h0": also the cgroup host directory
    netns: str  # e.g. "presplit-p1234-h0"


@dataclass
class Fabric:
    """N namespaces on a bridge (``topology="bridge"``) or fully meshed (``"pairwise"``)."""

    n_hosts: int
    topology: str = "bridge"
    octet: int = 77  # 10.<octet>.x.y: only visible inside the namespaces
    tag: str = field(default_factory=run_tag)
    teardown: Teardown | None = None
    hosts: list[FabricHost] = field(default_factory=list, init=False)
    _addr: dict[tuple[int, int | None], str] = field(default_factory=dict, init=False)
    _created: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        if self.topology not in ("bridge", "pairwise"):
            raise ValueError(f"topology must be 'bridge' or 'pairwise', not {self.topology!r}")
        if not 1 <= self.n_hosts <= 200:
            raise ValueError("n_hosts must be within 1..200")
        self.hosts = [
            FabricHost(i, f"{self.tag}-h{i}", f"{PREFIX}-{self.tag}-h{i}") for i in range(self.n_hosts)
        ]

    @property
    def switch_netns(self) -> str:
        return f"{PREFIX}-{self.tag}-sw"

    def create(self) -> Fabric:
        """Create the namespaces and links; on failure, remove what was made."""
        if self.teardown is not None:
            self.teardown.add(f"fabric {self.tag}", self.destroy)
        try:
            names = [h.netns for h in self.hosts]
            if self.topology == "bridge":
                names.append(self.switch_netns)
            for ns in names:
                _ip("netns", "add", ns)
                self._created.append(ns)
                _ip("-n", ns, "link", "set", "lo", "up")
            if self.topology == "bridge":
                self._wire_bridge()
            else:
                self._wire_pairwise()
        except Exception:
            self.destroy()
            raise
        return self

    def _wire_bridge(self) -> None:
        sw = self.switch_netns
        _ip("-n", sw, "link", "add", "br0", "type", "bridge")
        _ip("-n", sw, "link", "set", "br0", "up")
        for h in self.hosts:
            port = f"h{h.index}"
            _ip("-n", h.netns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", sw)
            _ip("-n", sw, "link", "set", port, "master", "br0")
            _ip("-n", sw, "link", "set", port, "up")
            addr = f"10.{self.octet}.0.{h.index + 1}"
            _ip("-n", h.netns, "addr", "add", f"{addr}/24", "dev", "eth0")
            _ip("-n", h.netns, "link", "set", "eth0", "up")
            self._addr[(h.index, None)] = addr

    def _wire_pairwise(self) -> None:
        for k, (a, b) in enumerate(combinations(self.hosts, 2)):
            # one /30 per pair: 10.<octet>.<k / 64>.<(k % 64) * 4 + 1 or 2>
            base = f"10.{self.octet}.{k // 64}.{(k % 64) * 4}"
            net, last = base.rsplit(".", 1)
            addr_a, addr_b = f"{net}.{int(last) + 1}", f"{net}.{int(last) + 2}"
            dev_a, dev_b = f"to{b.index}", f"to{a.index}"
            _ip("-n", a.netns, "link", "add", dev_a, "type", "veth", "peer", "name", dev_b, "netns", b.netns)
            for host, dev, addr in ((a, dev_a, addr_a), (b, dev_b, addr_b)):
                _ip("-n", host.netns, "addr", "add", f"{addr}/30", "dev", dev)
                _ip("-n", host.netns, "link", "set", dev, "up")
            self._addr[(a.index, b.index)] = addr_a
            self._addr[(b.index, a.index)] = addr_b

    def adopt(self) -> Fabric:
        """The fabric an earlier process created (a restarted controller's): addresses only, nothing created.

        Only the bridge topology (whose addresses follow from the host index). Hosts whose namespace
        is gone stay listed; :func:`namespace_exists` tells which are there.
        """
        if self.topology != "bridge":
            raise ValueError("only a bridge fabric can be adopted")
        for h in self.hosts:
            self._addr[(h.index, None)] = f"10.{self.octet}.0.{h.index + 1}"
        return self

    def address(self, host: int, peer: int | None = None) -> str:
        """The address of ``host`` as seen from ``peer`` (any peer on a bridge)."""
        key = (host, None) if self.topology == "bridge" else (host, peer)
        if key not in self._addr:
            raise KeyError(f"no address for host {host} towards {peer} in a {self.topology} fabric")
        return self._addr[key]

    def run(self, host: int, argv: list[str], *, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a command inside host ``host``'s namespace."""
        return subprocess.run(["ip", "netns", "exec", self.hosts[host].netns, *argv],
                              capture_output=True, text=True, timeout=timeout)

    def destroy(self) -> None:
        """Delete every namespace of the fabric (their veth ends go with them)."""
        errors = []
        while self._created:
            ns = self._created.pop()
            try:
                _ip("netns", "delete", ns)
            except NetnsError as exc:
                errors.append(str(exc))
        if self.teardown is not None:
            self.teardown.discard(f"fabric {self.tag}")
        if errors:
            raise NetnsError("; ".join(errors))

    def __enter__(self) -> Fabric:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def namespace_exists(netns: str) -> bool:
    """Whether the named network namespace is there (``ip netns add`` made it, nobody deleted it)."""
    return Path("/var/run/netns", netns).exists()


def namespace_pids(netns: str) -> list[int]:
    """The processes inside a network namespace (``ip netns pids``); empty if it is gone."""
    proc = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return [int(x) for x in proc.stdout.split()] if proc.returncode == 0 else []


def kill_namespace_host(netns: str, *, timeout: float = 10.0) -> list[int]:
    """A host failing as a whole: SIGKILL every process in ``netns``, then delete the namespace
    (its veth pair, and so its port on the bridge, goes with it). Returns the pids killed."""
    killed = []
    deadline = time.monotonic() + timeout
    while True:
        pids = namespace_pids(netns)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                if pid not in killed:
                    killed.append(pid)
            except ProcessLookupError:
                pass
        if not [p for p in pids if _running(p)] or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    _ip("netns", "delete", netns)
    return killed
