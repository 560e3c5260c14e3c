"""The pieces measure.py drives: the namespace LAN (launch.sh), a cluster of `starling node`s
read through their logs, a cluster of `serf agent`s read through their RPC, and per-node costs."""
import ctypes
import os
import socket
import subprocess
import time

import msgpack  # Debian: python3-msgpack (Serf's RPC speaks msgpack)

HERE = os.path.dirname(os.path.abspath(__file__))
LAUNCH = os.path.join(HERE, "launch.sh")
CLONE_NEWNET = 0x40000000
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
libc = ctypes.CDLL("libc.so.6", use_errno=True)


def ns(i):
    return f"stlan-{i}"


def addr(i):
    return f"10.77.{i // 240}.{i % 240 + 10}"


def node_name(i, n):
    return f"node-{i:0{max(3, len(str(n)))}d}"


class Lan:
    """launch.sh up N on entry, launch.sh down on exit (Ctrl-C included)."""

    def __init__(self, n):
        self.n = n

    def __enter__(self):
        # Leftovers of an interrupted run go; a LAN another running process owns stays, and
        # `up` then says so and fails.
        subprocess.run([LAUNCH, "down"], check=False)
        if subprocess.run([LAUNCH, "up", str(self.n)], check=False).returncode != 0:
            raise SystemExit("lan.py: could not build the namespace LAN (see launch.sh above)")
        return self

    def __exit__(self, *exc):
        subprocess.run([LAUNCH, "down"], check=False)


def connect_in_namespace(namespace, address, timeout=1.0):
    """A TCP connection made inside `namespace`; it stays usable from this one."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
    try:
        if libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        try:
            return socket.create_connection(address, timeout=timeout)
        finally:
            libc.setns(own, CLONE_NEWNET)
    finally:
        os.close(own)
        os.close(target)


class Processes:
    def __init__(self):
        self.procs = {}

    def spawn(self, i, namespace, argv, log_path):
        with open(log_path, "w") as log:
            self.procs[i] = subprocess.Popen(["ip", "netns", "exec", namespace] + argv,
                                             stdout=log, stderr=subprocess.STDOUT)

    def pid(self, i):
        return self.procs[i].pid

    def signal(self, i, sig):
        os.kill(self.procs[i].pid, sig)

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
        for p in self.procs.values():
            p.wait()


class StarlingCluster(Processes):
    """Nodes find each other by LAN beacons; their logs carry CLOCK_MONOTONIC timestamps, the
    clock time.monotonic() reads, so events are timed where they happened and the logs need
    reading only now and then (reading them often would steal the nodes' CPU)."""

    poll_seconds = 0.5

    def __init__(self, binary, n, work, drop_rate=0.0, seed=1):
        super().__init__()
        self.bin, self.n, self.work, self.drop_rate, self.seed = binary, n, work, drop_rate, seed
        self.converged = {}
        run = lambda *a: subprocess.run([binary] + list(a), check=True, capture_output=True)
        run("cluster", "init", "--dir", f"{work}/cluster", "--name", "lan")
        run("cluster", "enroll", "--cluster", f"{work}/cluster", "--count", str(n), "--prefix",
            "node-", "--out-dir", f"{work}/bundles")

    def log(self, i):
        return f"{self.work}/{node_name(i, self.n)}.log"

    def start(self, i):
        name = node_name(i, self.n)
        argv = [self.bin, "node", "--bundle", f"{self.work}/bundles/{name}.bundle", "--state",
                f"{self.work}/state/{name}"]
        if self.drop_rate > 0:
            argv += ["--test-drop-rate", str(self.drop_rate), "--test-fault-seed",
                     str(self.seed * 1000 + i)]
        self.spawn(i, ns(i), argv, self.log(i))

    def events(self, i):
        try:
            with open(self.log(i)) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return
        for line in lines:
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "peer" and parts[2] != "address":
                yield float(parts[0]), parts[2], parts[3]
            elif len(parts) >= 3 and parts[1] == "node" and parts[2] == "up":
                yield float(parts[0]), "self", ""

    def ready(self, i):
        return any(kind == "self" for _, kind, _ in self.events(i))

    def converged_at(self, i):
        alive = set()
        for t, kind, peer in self.events(i):
            if kind == "up":
                alive.add(peer)
            elif kind in ("suspect", "failed", "left"):
                alive.discard(peer)
            if len(alive) == self.n - 1:
                return t
        return None

    def all_see_all(self, n):
        for i in range(1, n + 1):
            if i not in self.converged:
                t = self.converged_at(i)
                if t is None:
                    return None
                self.converged[i] = t
        return max(self.converged.values())

    def failed_at(self, i, victim):
        name = node_name(victim, self.n)
        return next((t for t, kind, peer in self.events(i) if kind == "failed" and peer == name),
                    None)

    def failed_by(self, victim, n):
        return {i for i in range(1, n + 1) if i != victim and self.failed_at(i, victim)}

    def all_detected(self, victim, n, also_gone=None):
        times = [self.failed_at(i, victim) for i in range(1, n + 1) if i not in (victim, also_gone)]
        return None if None in times else max(times)

    def false_failures(self, victim, n):
        name = node_name(victim, self.n)
        return sum(1 for i in range(1, n + 1) for _, kind, peer in self.events(i)
                   if kind == "failed" and peer != name)


class SerfRpc:
    """Serf's agent RPC (msgpack header, then body) on one persistent connection."""

    def __init__(self, sock):
        self.sock, self.seq = sock, 0
        self.unpacker = msgpack.Unpacker(raw=False)
        self.call("handshake", {"Version": 1}, reply_body=False)

    def _next(self):
        while True:
            try:
                return next(self.unpacker)
            except StopIteration:
                data = self.sock.recv(1 << 16)
                if not data:
                    raise ConnectionError("serf closed the RPC connection")
                self.unpacker.feed(data)

    def call(self, command, body, reply_body=True):
        self.seq += 1
        self.sock.sendall(msgpack.packb({"Command": command, "Seq": self.seq}) +
                          msgpack.packb(body))
        header = self._next()
        if header.get("Error"):
            raise RuntimeError(f"serf {command}: {header['Error']}")
        return self._next() if reply_body else None

    def members(self, status="", name=""):
        return self.call("members-filtered", {"Tags": {}, "Status": status, "Name": name})["Members"]


class SerfCluster(Processes):
    """Serf agents (encrypted, LAN profile) joining the first one; read by polling their RPC, so
    an event is timed when a poll sees it (at most a poll interval late)."""

    poll_seconds = 0.05

    def __init__(self, n, work, key):
        super().__init__()
        self.n, self.work, self.key = n, work, key
        self.rpcs, self.converged, self.detected = {}, {}, {}

    def start(self, i):
        argv = ["serf", "agent", f"-node={node_name(i, self.n)}", f"-bind={addr(i)}:7946",
                "-rpc-addr=127.0.0.1:7373", f"-encrypt={self.key}", "-profile=lan",
                "-log-level=warn"]
        if i > 1:
            argv.append(f"-join={addr(1)}:7946")
        self.spawn(i, ns(i), argv, f"{self.work}/{node_name(i, self.n)}.log")

    def rpc(self, i):
        if i not in self.rpcs:
            try:
                self.rpcs[i] = SerfRpc(connect_in_namespace(ns(i), ("127.0.0.1", 7373)))
            except OSError:
                return None
        return self.rpcs[i]

    def ready(self, i):
        return self.rpc(i) is not None

    def all_see_all(self, n):
        for i in range(1, n + 1):
            if i in self.converged:
                continue
            r = self.rpc(i)
            if r is not None and len(r.members(status="alive")) == n:
                self.converged[i] = time.monotonic()
        return max(self.converged.values()) if len(self.converged) == n else None

    def _status(self, i, victim):
        found = self.rpc(i).members(name=f"^{node_name(victim, self.n)}$")
        return found[0]["Status"] if found else None

    def failed_by(self, victim, n):
        return {i for i in range(1, n + 1) if i != victim and self._status(i, victim) == "failed"}

    def all_detected(self, victim, n, also_gone=None):
        if self.detected.get("victim") != victim:
            self.detected = {"victim": victim}
        survivors = [i for i in range(1, n + 1) if i not in (victim, also_gone)]
        for i in survivors:
            if i not in self.detected and self._status(i, victim) == "failed":
                self.detected[i] = time.monotonic()
        found = [self.detected[i] for i in survivors if i in self.detected]
        return max(found) if len(found) == len(survivors) else None

    def false_failures(self, victim, n):
        name = node_name(victim, self.n)
        return sum(1 for i in range(1, n + 1) if i != victim
                   for m in self.rpc(i).members(status="failed") if m["Name"] != name)

    def stop(self):
        for r in self.rpcs.values():
            r.sock.close()
        super().stop()


def ip_octets(pid):
    """IP-level bytes in and out of the process's namespace: the protocol's own traffic, UDP and
    TCP with their headers, without the LAN's ARP."""
    with open(f"/proc/{pid}/net/netstat") as f:
        lines = [l.split() for l in f if l.startswith("IpExt:")]
    fields = dict(zip(lines[0][1:], lines[1][1:]))
    return int(fields["InOctets"]), int(fields["OutOctets"])


def node_stats(cluster, n):
    """CPU seconds and RSS of each node's process; bytes through its veth (what it sent is what
    the bridge side received: ARP included) and at the IP layer (ARP excluded)."""
    stats = {}
    for i in range(1, n + 1):
        pid = cluster.pid(i)
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/status") as f:
            rss = next((int(l.split()[1]) for l in f if l.startswith("VmRSS:")), None)
        if rss is None:  # a zombie: the process is gone and its parent has not reaped it yet
            raise RuntimeError(f"node {i} (pid {pid}) exited during the measurement")
        counter = lambda what: int(open(f"/sys/class/net/stlv{i}/statistics/{what}").read())
        ip_in, ip_out = ip_octets(pid)
        stats[i] = {
            "ip_sent_bytes": ip_out,
            "ip_received_bytes": ip_in,
            "cpu_seconds": (int(fields[11]) + int(fields[12])) / CLOCK_TICKS,
            "rss_kib": rss,
            "sent_bytes": counter("rx_bytes"),
            "received_bytes": counter("tx_bytes"),
        }
    return stats
