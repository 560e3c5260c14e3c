#!/usr/bin/python3
"""Membership figures on a network-namespace LAN (launch.sh), Starling beside Serf.

For each implementation, size N and run: start N nodes (the first, then the rest at once), time
until all N see all N alive after the last start, measure idle CPU, RSS and bytes per node,
optionally pause one node (SIGSTOP) and count false failures, then kill -9 one node and time
until every survivor marks it failed (and, with --silent-failure, stop another for good: no
ICMP answers then, only timeouts). Prints medians over the runs; --out writes every figure.
Root only; uses only addresses inside the namespaces launch.sh creates.

  measure.py --bin build/node-rel/bin/starling --sizes 10,30,100 --runs 3 [--impls starling,serf]
"""
import argparse
import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lan import Lan, SerfCluster, StarlingCluster, node_stats  # noqa: E402

def wait_until(predicate, limit_seconds, what, poll_seconds=0.05):
    deadline = time.monotonic() + limit_seconds
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(poll_seconds)


def start_all(cluster, n):
    """The first node, once it is up, then the others back to back; returns the last start."""
    cluster.start(1)
    wait_until(lambda: cluster.ready(1), 20, "first node up")
    last = time.monotonic()
    for i in range(2, n + 1):
        last = time.monotonic()
        cluster.start(i)
    return last


def idle_window(cluster, n, seconds):
    before = node_stats(cluster, n)
    time.sleep(seconds)
    after = node_stats(cluster, n)
    per_node = []
    for i in range(1, n + 1):
        b, a = before[i], after[i]
        per_node.append({
            "cpu_percent": 100.0 * (a["cpu_seconds"] - b["cpu_seconds"]) / seconds,
            "rss_mib": a["rss_kib"] / 1024.0,
            "sent_bps": (a["sent_bytes"] - b["sent_bytes"]) / seconds,
            "received_bps": (a["received_bytes"] - b["received_bytes"]) / seconds,
            "ip_sent_bps": (a["ip_sent_bytes"] - b["ip_sent_bytes"]) / seconds,
            "ip_received_bps": (a["ip_received_bytes"] - b["ip_received_bytes"]) / seconds,
        })
    return {k: statistics.median(p[k] for p in per_node) for k in per_node[0]}


def pause_check(cluster, n, paused, seconds):
    """SIGSTOP one node for `seconds`, then SIGCONT; how many survivors marked it failed."""
    cluster.signal(paused, signal.SIGSTOP)
    end = time.monotonic() + seconds
    failed_by = set()
    while time.monotonic() < end:
        failed_by |= cluster.failed_by(paused, n)
        time.sleep(0.2)
    cluster.signal(paused, signal.SIGCONT)
    settle = time.monotonic() + 5
    while time.monotonic() < settle:
        failed_by |= cluster.failed_by(paused, n)
        time.sleep(0.2)
    return len(failed_by)


def one_run(impl, args, n, run):
    work = tempfile.mkdtemp(prefix=f"measure-{impl}-{n}-")
    key = base64.b64encode(os.urandom(16)).decode()
    with Lan(n):
        if impl == "starling":
            cluster = StarlingCluster(args.bin, n, work, args.drop_rate, seed=run)
        else:
            cluster = SerfCluster(n, work, key)
        try:
            last_start = start_all(cluster, n)
            converged = wait_until(lambda: cluster.all_see_all(n), 120, "all see all alive",
                                   cluster.poll_seconds)
            figures = {"join_seconds": converged - last_start}
            time.sleep(args.settle_seconds)
            figures.update(idle_window(cluster, n, args.idle_seconds))
            if args.pause_seconds > 0:
                figures["paused_marked_failed_by"] = pause_check(cluster, n, 2, args.pause_seconds)
                time.sleep(args.settle_seconds)
            victim = n // 2 + 1
            killed_at = time.monotonic()
            cluster.signal(victim, signal.SIGKILL)
            detected = wait_until(lambda: cluster.all_detected(victim, n), 120,
                                  "kill -9 seen by all survivors", cluster.poll_seconds)
            figures["kill_seconds"] = detected - killed_at
            figures["false_failures"] = cluster.false_failures(victim, n)
            if args.silent_failure:  # a host that stops answering at all: no ICMP refusals
                silent = n // 2 + 2 if n > 3 else 1
                stopped_at = time.monotonic()
                cluster.signal(silent, signal.SIGSTOP)
                detected = wait_until(lambda: cluster.all_detected(silent, n, also_gone=victim),
                                      120, "a silent node seen failed", cluster.poll_seconds)
                figures["silent_seconds"] = detected - stopped_at
            return figures
        finally:
            cluster.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--bin", required=True, help="the starling binary (a Release build)")
    p.add_argument("--sizes", default="10,30")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--impls", default="starling,serf")
    p.add_argument("--idle-seconds", type=float, default=60)
    p.add_argument("--settle-seconds", type=float, default=10)
    p.add_argument("--pause-seconds", type=float, default=0, help="SIGSTOP one node this long")
    p.add_argument("--drop-rate", type=float, default=0.0, help="Starling's injected loss")
    p.add_argument("--silent-failure", action="store_true",
                   help="also time the detection of a node stopped for good (SIGSTOP)")
    p.add_argument("--out", help="write every run's figures here (JSON)")
    args = p.parse_args()
    if os.geteuid() != 0:
        sys.exit("measure.py: needs root (network namespaces)")
    results = {}
    for impl in args.impls.split(","):
        for n in [int(s) for s in args.sizes.split(",")]:
            runs = []
            for run in range(1, args.runs + 1):
                figures = one_run(impl, args, n, run)
                print(f"{impl} N={n} run {run}: " +
                      ", ".join(f"{k}={v:.4g}" for k, v in figures.items()), flush=True)
                runs.append(figures)
            median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            results[f"{impl}/{n}"] = {"runs": runs, "median": median}
            print(f"== {impl} N={n} median: " +
                  ", ".join(f"{k}={v:.4g}" for k, v in median.items()), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
