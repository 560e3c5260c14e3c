#!/usr/bin/env python3
"""The .deb on a clean Debian 12: `dpkg -i` into a debootstrap root (the postinst creates the
starling user), `systemd-analyze verify` of the installed unit, and a first boot run the way the
unit runs it (its ExecStart as User=starling, in the installed root) with the operator's bundle
on a mounted provisioning medium: the node installs it 0600 owned by starling and reports
READY=1 to a stand-in for systemd's notify socket; SIGTERM gives STOPPING=1 and exit 0; then
`dpkg --purge` removes the package.

Not part of CI: it needs root (chroot, mount) and debootstrap with a Debian mirror, and takes
minutes. CI runs tests/package/check_deb.sh (dpkg-deb -x) and tests/firmware/check_service.py.

  check_deb_debootstrap.py STARLING_DEB HOST_STARLING [ROOT]
  ROOT: an existing debootstrap root to copy (e.g. made once with
        debootstrap --variant=minbase --include=adduser,systemd bookworm ROOT MIRROR); without it one is
        made in a temporary directory from the mirror in $DEBIAN_MIRROR.
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

WAIT_S = 60


def fail(message):
    print(f"FAIL: {message}")
    sys.exit(1)


def sh(*args, **kw):
    print("+", " ".join(shlex.quote(a) for a in args))
    return subprocess.run(args, check=True, **kw)


def main():
    deb, host_bin = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    work = tempfile.mkdtemp(prefix="starling-deb12-")
    root = f"{work}/root"
    mounted = []
    proc = None
    try:
        if len(sys.argv) > 3:
            sh("cp", "-a", sys.argv[3], root)
        else:
            mirror = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
            sh("debootstrap", "--variant=minbase", "--include=adduser,systemd", "bookworm", root, mirror,
               stdout=subprocess.DEVNULL)
        with open(f"{root}/etc/os-release") as f:
            release = f.read()
        if 'VERSION_ID="12"' not in release:
            fail(f"not a Debian 12 root: {release}")
        sh("mount", "-t", "proc", "proc", f"{root}/proc")
        mounted.append(f"{root}/proc")

        shutil.copy(deb, f"{root}/tmp/starling.deb")
        sh("chroot", root, "dpkg", "-i", "/tmp/starling.deb")
        sh("chroot", root, "id", "starling")
        sh("chroot", root, "/usr/bin/starling", "config", "check")
        unit = f"{root}/usr/lib/systemd/system/starling.service"
        out = subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={root}", unit],
                             capture_output=True, text=True)
        if out.returncode != 0 or out.stderr.strip():
            fail(f"systemd-analyze verify: {out.stderr}")
        print("systemd-analyze verify: clean")

        # What the operator ships: one bundle per device on a USB stick, by hostname.
        sh(host_bin, "cluster", "init", "--dir", f"{work}/cluster", stdout=subprocess.DEVNULL)
        host = socket.gethostname()
        medium = f"{root}/media/usb0/starling"
        os.makedirs(medium)
        sh(host_bin, "cluster", "enroll", "--cluster", f"{work}/cluster", "--name", "till-07",
           "--out", f"{medium}/{host}.bundle", stdout=subprocess.DEVNULL)
        os.chmod(f"{medium}/{host}.bundle", 0o644)  # as vfat shows it
        # The device's network settings (loopback here), as an operator edits the conffile.
        conf = f"{root}/etc/starling/starling.toml"
        with open(conf) as f:
            text = f.read()
        text = text.replace('[node]\n', '[node]\nlisten = "127.0.0.1:17946"\ninterface = "none"\n', 1)
        with open(conf, "w") as f:
            f.write(text)
        # What StateDirectory=starling / StateDirectoryMode=0700 prepare before ExecStart.
        uid = int(subprocess.run(["chroot", root, "id", "-u", "starling"], capture_output=True,
                                 text=True, check=True).stdout)
        gid = int(subprocess.run(["chroot", root, "id", "-g", "starling"], capture_output=True,
                                 text=True, check=True).stdout)
        os.makedirs(f"{root}/var/lib/starling", exist_ok=True)
        os.chown(f"{root}/var/lib/starling", uid, gid)
        os.chmod(f"{root}/var/lib/starling", 0o700)

        exec_start = next(l for l in open(unit) if l.startswith("ExecStart="))
        command = shlex.split(exec_start[len("ExecStart="):])
        os.makedirs(f"{root}/run/systemd", exist_ok=True)
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(f"{root}/run/systemd/notify")
        os.chmod(f"{root}/run/systemd/notify", 0o777)
        notify.settimeout(WAIT_S)
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "NOTIFY_SOCKET": "/run/systemd/notify",
               "WATCHDOG_USEC": "30000000"}
        proc = subprocess.Popen(["chroot", "--userspec=starling:starling", root, *command],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        messages = []
        deadline = time.monotonic() + WAIT_S
        while "READY=1" not in messages and time.monotonic() < deadline:
            messages.append(notify.recv(4096).decode().split("\n")[0])
        if "READY=1" not in messages:
            fail(f"no READY=1: {messages}")
        installed = f"{root}/var/lib/starling/node.bundle"
        st = os.stat(installed)
        if stat.S_IMODE(st.st_mode) != 0o600 or st.st_uid != uid:
            fail(f"installed bundle: mode {oct(st.st_mode)}, uid {st.st_uid}")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=WAIT_S)
        log = proc.stdout.read()
        print("--- node log\n" + log)
        notify.settimeout(1)
        try:
            while True:
                messages.append(notify.recv(4096).decode().split("\n")[0])
        except socket.timeout:
            pass
        if "STOPPING=1" not in messages or code != 0:
            fail(f"stop: exit {code}, notifications {messages}")
        proc = None
        sh("chroot", root, "dpkg", "--purge", "starling")
        if os.path.exists(f"{root}/usr/bin/starling"):
            fail("the binary is still there after purge")
        print(f"debootstrap OK: installed, verified, first boot READY, stopped, purged "
              f"({len(messages)} notifications)")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for m in reversed(mounted):
            subprocess.run(["umount", m])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
