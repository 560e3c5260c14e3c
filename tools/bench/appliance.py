#!/usr/bin/env python3
"""Appliance figures for notes and reports (never assertions):

  cold-start   `starling node` from exec to READY=1 on its notify socket, without a model load:
               median, min and max of --runs starts (bundle installed, loopback, no discovery).
  citizenship  a CPU-bound foreground job (SHA-256 over 1 MiB blocks in this process, standing in
               for the device's own work) alone, then beside `starling train --cpu-budget auto`
               (the profile's default budget), then alone again: its throughput drop.
  budget       `starling train --cpu-budget PCT` alone for --seconds: its CPU share of the
               machine from /proc/PID/stat (utime + stime over wall time x cores), robust to
               other load; PSI and busy back-off are turned off in its config to isolate the
               budget (they are tested in tests/firmware).
  --no-backoff  citizenship with PSI and busy back-off off as well: what SCHED_IDLE and the
               budget alone cost the foreground (on a machine shared with other work the default
               back-off may pause the trainer throughout, and the figure is then noise).

  appliance.py STARLING {cold-start|citizenship|budget|all} [--runs 20] [--seconds 60]
               [--budget 25] [--data /usr/share/datasets/fashion-mnist] [--no-backoff]
"""
import argparse
import hashlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count()


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cold_start(binary, runs, work):
    subprocess.run([binary, "cluster", "init", "--dir", f"{work}/cluster"], check=True,
                   capture_output=True)
    subprocess.run([binary, "cluster", "enroll", "--cluster", f"{work}/cluster", "--name",
                    "bench", "--out", f"{work}/node.bundle"], check=True, capture_output=True)
    notify = f"{work}/notify"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(notify)
    listener.settimeout(10)
    times = []
    for i in range(runs):
        state = f"{work}/state{i}"
        env = dict(os.environ, NOTIFY_SOCKET=notify)
        start = time.monotonic()
        proc = subprocess.Popen([binary, "node", "--bundle", f"{work}/node.bundle", "--state",
                                 state, "--listen", f"127.0.0.1:{free_udp_port()}",
                                 "--interface", "none"], env=env, stdout=subprocess.DEVNULL)
        while True:
            message = listener.recv(4096).decode()
            if message.split("\n")[0] == "READY=1":
                times.append((time.monotonic() - start) * 1000)
                break
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        while True:  # drop what the node said while leaving
            try:
                listener.settimeout(0.05)
                listener.recv(4096)
            except socket.timeout:
                listener.settimeout(10)
                break
    print(f"cold start to READY: median {statistics.median(times):.1f} ms, "
          f"min {min(times):.1f}, max {max(times):.1f} ({runs} runs, {CORES} cores)")


def foreground(seconds):
    """MiB/s of SHA-256 over 1 MiB blocks for `seconds`: the device's own CPU-bound job."""
    block = bytes(1 << 20)
    done = 0
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        hashlib.sha256(block).digest()
        done += 1
    return done / (time.monotonic() - start)


def cpu_ticks(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def start_trainer(binary, data, budget, work, config=None):
    command = [binary, "train", "--data", data, "--epochs", "1000", "--cpu-budget", budget,
               "--out", f"{work}/bench.ckpt"]
    if config:
        command += ["--config", config]
    log = f"{work}/train-{budget.rstrip('%')}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    while "\ntraining " not in "\n" + open(log).read():  # past the data load
        if proc.poll() is not None:
            raise RuntimeError("starling train exited: " + open(log).read())
        time.sleep(0.1)
    return proc


def stop(proc):
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def no_backoff_config(work):
    config = f"{work}/no-backoff.toml"
    with open(config, "w") as f:
        f.write("[governor]\npsi_cpu = 100\npsi_memory = 100\npsi_io = 100\nbusy_cpu = 100\n")
    return config


def citizenship(binary, data, seconds, work, backoff):
    alone = foreground(seconds)
    trainer = start_trainer(binary, data, "auto", work,
                            None if backoff else no_backoff_config(work))
    ticks0, t0 = cpu_ticks(trainer.pid), time.monotonic()
    beside = foreground(seconds)
    share = (cpu_ticks(trainer.pid) - ticks0) / TICKS / ((time.monotonic() - t0) * CORES)
    stop(trainer)
    again = foreground(seconds)
    base = (alone + again) / 2
    print(f"citizenship: foreground {alone:.1f} / {again:.1f} MiB/s alone, {beside:.1f} beside "
          f"the trainer (default budget{'' if backoff else ', no back-off'}): drop {100 * (1 - beside / base):.1f}%; trainer's CPU "
          f"share {100 * share:.1f}% of {CORES} cores ({seconds:.0f} s each)")


def budget(binary, data, pct, seconds, work):
    trainer = start_trainer(binary, data, f"{pct}%", work, no_backoff_config(work))
    time.sleep(2)  # past the first burst of banked budget
    ticks0, t0 = cpu_ticks(trainer.pid), time.monotonic()
    time.sleep(seconds)
    share = (cpu_ticks(trainer.pid) - ticks0) / TICKS / ((time.monotonic() - t0) * CORES)
    stop(trainer)
    print(f"budget {pct}%: the trainer's CPU share over {seconds:.0f} s was {100 * share:.1f}% "
          f"of {CORES} cores (/proc/PID/stat)")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("binary")
    p.add_argument("what", choices=["cold-start", "citizenship", "budget", "all"])
    p.add_argument("--runs", type=int, default=20)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--budget", type=int, default=25)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--no-backoff", action="store_true")
    a = p.parse_args()
    binary = os.path.abspath(a.binary)
    with tempfile.TemporaryDirectory(prefix="starling-bench-") as work:
        print(f"== {os.uname().nodename}: {CORES} cores, load {os.getloadavg()[0]:.2f}")
        if a.what in ("cold-start", "all"):
            cold_start(binary, a.runs, work)
        if a.what in ("citizenship", "all"):
            citizenship(binary, a.data, min(a.seconds, 30), work, not a.no_backoff)
        if a.what in ("budget", "all"):
            budget(binary, a.data, a.budget, a.seconds, work)


if __name__ == "__main__":
    sys.exit(main())
