#!/usr/bin/env python3
"""The node as systemd runs it: the unit's ExecStart command, a NOTIFY_SOCKET listener standing
in for systemd, and a first boot. With no bundle anywhere the node logs one line and says why in
STATUS (asking for more start-up time); a corrupt bundle on a mounted medium is refused with its
path; a valid one is installed 0600 into the state directory (a --state flag winning over the
config file's state_dir) and the node reports READY=1, pings the watchdog at half WATCHDOG_USEC
and on SIGTERM sends STOPPING=1 and exits 0. Waits poll with bounds; nothing is timed.

  check_service.py STARLING_BINARY UNIT_FILE
"""
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

WAIT_S = 30  # bound on every wait: generous for a busy 2-core CI machine


def fail(message, log=None):
    print(f"FAIL: {message}")
    if log and os.path.exists(log):
        print("--- node log"), print(open(log).read())
    sys.exit(1)


def unit_command(unit_file):
    """The ExecStart line's arguments after the binary."""
    for line in open(unit_file):
        if line.startswith("ExecStart="):
            return shlex.split(line[len("ExecStart="):])[1:]
    fail(f"{unit_file} has no ExecStart")


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Systemd:
    """The notify socket: every datagram the node sends, in order."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.2)
        self.messages = []

    def drain(self):
        try:
            while True:
                self.messages.append(self.sock.recv(4096).decode())
        except (socket.timeout, BlockingIOError):
            pass

    def wait_for(self, what, predicate, log, start=0):
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            self.drain()
            if any(predicate(m) for m in self.messages[start:]):
                return
        fail(f"no {what} from the node within {WAIT_S} s; got {self.messages}", log)


def wait_log(log, text, proc):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if text in open(log).read():
            return
        if proc.poll() is not None:
            fail(f"the node exited ({proc.returncode}) before logging '{text}'", log)
        time.sleep(0.1)
    fail(f"the node did not log '{text}' within {WAIT_S} s", log)


def main():
    binary, unit = os.path.abspath(sys.argv[1]), sys.argv[2]
    work = tempfile.mkdtemp(prefix="starling-service-")
    proc = None
    try:
        run = lambda *args: subprocess.run([binary, *args], check=True, capture_output=True)
        run("cluster", "init", "--dir", f"{work}/cluster", "--name", "fleet")
        run("cluster", "enroll", "--cluster", f"{work}/cluster", "--name", "till-07",
            "--out", f"{work}/good.bundle")
        port = free_udp_port()
        with open(f"{work}/starling.toml", "w") as f:
            f.write(f'[node]\nlisten = "127.0.0.1:{port}"\ninterface = "none"\n'
                    f'state_dir = "{work}/state-from-file"\nprovisioning = ["{work}/media"]\n')
        systemd = Systemd(f"{work}/notify")
        log = f"{work}/node.log"
        env = dict(os.environ, NOTIFY_SOCKET=f"{work}/notify", WATCHDOG_USEC="1000000")
        env.pop("WATCHDOG_PID", None)
        command = [binary, *unit_command(unit), "--config", f"{work}/starling.toml",
                   "--state", f"{work}/state"]
        print("starting:", " ".join(command))
        with open(log, "w") as out:
            proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)

        # First boot, nothing provisioned: one clear line, STATUS says why, no exit.
        wait_log(log, "no enrollment bundle found", proc)
        systemd.wait_for("STATUS=waiting", lambda m: m.startswith("STATUS=waiting for an enrollment"), log)
        systemd.wait_for("EXTEND_TIMEOUT_USEC", lambda m: m.startswith("EXTEND_TIMEOUT_USEC="), log)
        if any(m == "READY=1" for m in systemd.messages):
            fail("READY=1 before a bundle was found", log)

        medium = f"{work}/media/usb0/starling"
        os.makedirs(medium)
        with open(f"{medium}/node.bundle", "wb") as f:
            f.write(b"STAR" + b"\x00" * 60)  # a torn copy
        wait_log(log, "no valid enrollment bundle", proc)
        if f"{medium}/node.bundle" not in open(log).read():
            fail("the refusal does not name the corrupt file", log)

        shutil.copyfile(f"{work}/good.bundle", f"{medium}/node.bundle.tmp")
        os.rename(f"{medium}/node.bundle.tmp", f"{medium}/node.bundle")
        systemd.wait_for("READY=1", lambda m: m.split("\n")[0] == "READY=1", log)
        installed = f"{work}/state/node.bundle"
        if not os.path.exists(installed):
            fail("the bundle was not installed into the --state directory", log)
        if stat.S_IMODE(os.stat(installed).st_mode) != 0o600:
            fail(f"installed bundle has mode {oct(os.stat(installed).st_mode)}", log)
        if os.path.exists(f"{work}/state-from-file"):
            fail("the config file's state_dir was used although --state was given", log)
        if open(log).read().count("no enrollment bundle found") != 1:
            fail("the same reason was logged more than once", log)
        systemd.wait_for("STATUS=listening", lambda m: m.startswith("STATUS=listening on 127.0.0.1"), log)

        ready_at = len(systemd.messages)
        systemd.wait_for("WATCHDOG=1 after READY", lambda m: m == "WATCHDOG=1", log, ready_at)

        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            fail("the node did not exit within the bound after SIGTERM", log)
        systemd.drain()
        if "STOPPING=1" not in systemd.messages:
            fail(f"no STOPPING=1: {systemd.messages}", log)
        if code != 0:
            fail(f"exit code {code} after SIGTERM", log)
        print(f"service OK: {len(systemd.messages)} notifications, "
              f"{systemd.messages.count('WATCHDOG=1')} watchdog pings")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
