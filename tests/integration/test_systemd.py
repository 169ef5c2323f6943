"""The Debian package on a fresh Debian 12 root under a real systemd (systemd-nspawn --boot).

Each run boots an ephemeral copy of the Debian 12 root (debian_root.py) with systemd as PID 1,
installs the .deb there with apt (which pulls the runtime libraries from Debian's archive, as on a
new machine), and drives the unit through systemctl: `start` returns only once the server said
READY=1 (Type=notify) and AMQP is open at once; the unit's state, user, StateDirectory mode; a confirmed
message survives `systemctl restart`; kill -9 and a hung (SIGSTOPped) server are restarted by
Restart=on-failure and the watchdog; `systemctl stop` exits cleanly. The container shares the host's
network, so the host's pika talks to the packaged server on loopback ports this test picks, set in
/etc/default/warren (the unit's EnvironmentFile). A drop-in shortens WatchdogSec for the hang case only.
"""
import os
import subprocess
import time

import pika
import pytest

import wutil
from conftest import free_port
from debian_root import MARKS, deb, debian_root, run

pytestmark = MARKS


class Container:
    """An ephemeral copy of the root booted with systemd; commands run inside through nsenter."""

    def __init__(self, root, deb_dir, log_path):
        self.log = open(log_path, "w")
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--ephemeral",
             "--bind-ro=%s:/mnt/warren" % deb_dir, "--console=pipe", "-D", root, "--boot"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        self.init_pid = None
        deadline = time.time() + 60
        while time.time() < deadline and self.proc.poll() is None:
            children = run("pgrep", "-P", str(self.proc.pid), check=False).stdout.split()
            if children:
                self.init_pid = children[0]
                state = self.sh("systemctl is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    return
            time.sleep(0.5)
        raise AssertionError("the container did not boot (state %r); see %s" % (
            self.init_pid and self.sh("systemctl is-system-running", check=False).stdout, log_path))

    def sh(self, script, check=True, timeout=600):
        return run("nsenter", "-t", self.init_pid, "-a", "/bin/sh", "-c", script, check=check, timeout=timeout)

    def show(self, *props):
        out = self.sh("systemctl show warren " + " ".join("-p " + p for p in props)).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def wait_for(self, pred, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = pred()
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError("timed out waiting for " + what + "; journal:\n" +
                             self.sh("journalctl -u warren --no-pager | tail -40", check=False).stdout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # nspawn halts the container's systemd
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


class Endpoint:
    """What wutil.connect needs to reach the packaged server."""

    def __init__(self, port):
        self.host, self.port, self.user, self.password = "127.0.0.1", port, "guest", "guest"


def publish_confirmed(ep, queue, bodies):
    conn = wutil.connect(ep)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(queue, durable=True)
        for body in bodies:
            ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2), mandatory=True)
    finally:
        wutil.close_quietly(conn)


def take(ep, queue):
    conn = wutil.connect(ep)
    try:
        return wutil.get_one(conn.channel(), queue, auto_ack=True)[2]
    finally:
        wutil.close_quietly(conn)


@pytest.mark.timeout(1800)
def test_the_package_runs_under_systemd_on_a_fresh_debian_12(tmp_path):
    package = deb()
    box = Container(debian_root(), os.path.dirname(package), str(tmp_path / "container.log"))
    try:
        # Written before the install: the package enables the unit and its postinst starts it.
        port, mgmt = free_port(), free_port()
        box.sh("printf 'WARREN_PORT=%d\\nWARREN_BIND=127.0.0.1\\nWARREN_MANAGEMENT_PORT=%d\\n"
               "WARREN_MANAGEMENT_BIND=127.0.0.1\\nWARREN_PROMETHEUS_PORT=0\\n' > /etc/default/warren"
               % (port, mgmt))
        box.sh("apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q /mnt/warren/%s"
               % os.path.basename(package), timeout=1200)
        ep = Endpoint(port)
        box.sh("systemctl restart warren")

        # Type=notify: `systemctl restart` returned after READY=1, so AMQP is open now.
        props = box.show("ActiveState", "SubState", "Type", "User", "MainPID", "StatusText", "NRestarts")
        assert (props["ActiveState"], props["SubState"], props["Type"]) == ("active", "running", "notify"), props
        assert props["User"] == "warren"
        publish_confirmed(ep, "systemd-q", [b"one", b"two", b"three"])
        st = box.sh("stat -c '%a %U' /var/lib/warren").stdout.split()
        assert st == ["700", "warren"], st
        assert box.sh("ps -o user= -p %s" % props["MainPID"]).stdout.strip() == "warren"

        box.sh("systemctl restart warren")
        assert take(ep, "systemd-q") == b"one"

        # kill -9: Restart=on-failure brings it back with every confirmed message.
        pid = box.show("MainPID")["MainPID"]
        box.sh("kill -9 %s" % pid)
        box.wait_for(lambda: box.show("MainPID", "ActiveState")["MainPID"] not in ("0", pid)
                     and box.show("ActiveState")["ActiveState"] == "active", 60, "a restart after kill -9")
        assert int(box.show("NRestarts")["NRestarts"]) >= 1
        assert take(ep, "systemd-q") == b"two"

        # A hung server stops sending WATCHDOG=1: systemd kills and restarts it.
        box.sh("mkdir -p /etc/systemd/system/warren.service.d && printf '[Service]\\nWatchdogSec=3\\n"
               "TimeoutAbortSec=2\\n' > /etc/systemd/system/warren.service.d/watchdog.conf && "
               "systemctl daemon-reload && systemctl restart warren")
        restarts = int(box.show("NRestarts")["NRestarts"])
        pid = box.show("MainPID")["MainPID"]
        box.sh("kill -STOP %s" % pid)
        box.wait_for(lambda: int(box.show("NRestarts")["NRestarts"]) > restarts
                     and box.show("ActiveState")["ActiveState"] == "active", 60, "a watchdog restart")
        journal = box.sh("journalctl -u warren --no-pager", check=False).stdout
        assert "Watchdog timeout" in journal, journal[-3000:]
        assert take(ep, "systemd-q") == b"three"

        # A clean stop: SIGTERM, exit 0, the unit inactive (not failed).
        box.sh("systemctl stop warren")
        props = box.show("ActiveState", "Result", "ExecMainStatus")
        assert (props["ActiveState"], props["Result"], props["ExecMainStatus"]) == ("inactive", "success", "0"), props
    finally:
        box.stop()
