"""Running as a service: systemd's notifications (READY, STATUS, WATCHDOG, STOPPING) through a
fake NOTIFY_SOCKET, the unit file (systemd-analyze verify), the graceful shutdown (confirms of the
last batch, then 320 CONNECTION_FORCED; exit 0; a second signal exits at once; nothing confirmed
lost) and the log outputs (JSON lines, a log file reopened on SIGUSR1, rotation by size)."""
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

import amqp_raw
import wutil

pytestmark = [pytest.mark.needs_own_server, pytest.mark.timeout(120)]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHUTDOWN_TEXT = "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'"


class FakeSystemd:
    """A Unix datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, directory):
        self.path = os.path.join(directory, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def receive(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096).decode()
        except socket.timeout:
            return None
        self.messages.append(data)
        return data

    def wait_for(self, prefix, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = self.receive(max(0.01, deadline - time.monotonic()))
            if message is not None and message.startswith(prefix):
                return message
        raise AssertionError("no %r from the server within %.0f s; got %r" % (prefix, timeout, self.messages))

    def close(self):
        self.sock.close()


@pytest.fixture
def fake_systemd(tmp_path, monkeypatch):
    systemd = FakeSystemd(str(tmp_path))
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.path)
    yield systemd
    systemd.close()


def persistent_publish(channel, routing_key, body):
    props = struct.pack("!B", 2)  # delivery-mode 2
    data = amqp_raw.frame(amqp_raw.FRAME_METHOD, channel,
                          amqp_raw.method_payload("basic.publish", 0, "", routing_key, False, False))
    data += amqp_raw.frame(amqp_raw.FRAME_HEADER, channel, amqp_raw.content_header(len(body), flags=0x1000, props=props))
    data += amqp_raw.frame(amqp_raw.FRAME_BODY, channel, body)
    return data


def test_notify_ready_status_watchdog_stopping(own_server, fake_systemd, monkeypatch, uniq):
    srv = own_server
    queue = uniq("recovered")
    conn = wutil.connect(srv)
    ch = conn.channel()
    ch.queue_declare(queue, durable=True)
    ch.basic_publish("", queue, b"x")
    conn.close()
    srv.stop()
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    srv.start()
    ready = fake_systemd.wait_for("READY=1")
    assert "STATUS=serving AMQP on" in ready
    statuses = [m for m in fake_systemd.messages if m.startswith("STATUS=")]
    assert any(("queue '%s'" % queue) in m and "EXTEND_TIMEOUT_USEC=" in m for m in statuses), statuses
    # READY came after the listeners opened: both accept now.
    for port in (srv.port, srv.management_port):
        socket.create_connection((srv.host, port), timeout=1).close()
    pings_from = len(fake_systemd.messages)
    time.sleep(0.6)
    while fake_systemd.receive(0.05) is not None:
        pass
    pings = [m for m in fake_systemd.messages[pings_from:] if m == "WATCHDOG=1"]
    assert 4 <= len(pings) <= 10, fake_systemd.messages[pings_from:]
    srv.proc.send_signal(signal.SIGTERM)
    assert fake_systemd.wait_for("STOPPING=1").startswith("STOPPING=1\nSTATUS=shutting down")
    assert srv.proc.wait(timeout=10) == 0
    srv.proc = None


def test_no_notify_socket_changes_nothing(own_server):
    assert "NOTIFY_SOCKET" not in os.environ
    assert "systemd watchdog" not in own_server.log_text()
    assert own_server.stop() == 0


def test_unit_file_verifies(tmp_path):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    with open(os.path.join(ROOT, "deploy", "warren.service")) as f:
        unit = f.read()
    assert "ExecStart=/usr/sbin/warren-server --config /etc/warren/warren.conf" in unit
    for line in ("Type=notify", "NotifyAccess=main", "WatchdogSec=", "Restart=on-failure", "StateDirectory=warren",
                 "StateDirectoryMode=0700", "UMask=0077", "User=warren"):
        assert line in unit
    # The binary must exist for verify: the built one stands in for /usr/sbin's.
    server = os.path.abspath(os.environ.get("WARREN_SERVER", os.path.join(ROOT, "build", "bin", "warren-server")))
    path = tmp_path / "warren.service"
    path.write_text(unit.replace("/usr/sbin/warren-server", server))
    result = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    # Outside a booted systemd, verify also complains about the host's own units; only ours counts.
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "warren.service" in line]
    assert not ours, "\n".join(ours)


def test_sigterm_confirms_the_last_batch_then_closes_320(own_server, uniq):
    srv = own_server
    queue = uniq("shutdown")
    with amqp_raw.RawConnection(srv.host, srv.port) as raw:
        assert raw.handshake().name == "connection.open_ok"
        raw.open_channel(1)
        raw.call(1, "queue.declare", 0, queue, False, True, False, False, False, {}, expect="queue.declare_ok")
        raw.call(1, "confirm.select", False, expect="confirm.select_ok")
        total = 3000
        raw.send(b"".join(persistent_publish(1, queue, b"m%05d" % i) for i in range(total)))
        # Some are confirmed, some are still on their way to the disk when the signal comes.
        first = raw.expect("basic.ack", timeout=10)
        srv.proc.send_signal(signal.SIGTERM)
        confirmed = first.args[0]
        while True:
            m = raw.read_method(timeout=10)
            if m.name == "basic.ack":
                tag, multiple = m.args
                assert multiple or tag == confirmed + 1
                confirmed = max(confirmed, tag)
                continue
            assert m.name == "connection.close", m
            assert tuple(m.args[:2]) == (320, SHUTDOWN_TEXT)
            raw.send_method(0, "connection.close_ok")
            break
    assert srv.proc.wait(timeout=10) == 0
    srv.proc = None
    log = srv.log_text()
    assert "received signal 15, shutting down" in log and "Warren stopped" in log
    srv.start()
    bodies = wutil.get_all(srv, queue)
    assert len(bodies) >= confirmed >= 1
    assert bodies[:confirmed] == [b"m%05d" % i for i in range(confirmed)]


def test_pika_sees_the_320_close(own_server):
    import pika
    conn = wutil.connect(own_server)
    own_server.proc.send_signal(signal.SIGTERM)
    with pytest.raises(pika.exceptions.ConnectionClosedByBroker) as closed:
        wutil.pump(conn, 10)
    assert closed.value.reply_code == 320 and closed.value.reply_text == SHUTDOWN_TEXT
    assert own_server.proc.wait(timeout=10) == 0
    own_server.proc = None


def test_second_signal_exits_at_once(own_server):
    srv = own_server
    # A client that never answers connection.close keeps the shutdown waiting for close-ok.
    raw = amqp_raw.RawConnection(srv.host, srv.port)
    assert raw.handshake().name == "connection.open_ok"
    srv.proc.send_signal(signal.SIGTERM)
    assert raw.expect("connection.close", timeout=5).args[0] == 320
    time.sleep(0.2)
    assert srv.proc.poll() is None, "the shutdown should be waiting for close-ok"
    started = time.monotonic()
    srv.proc.send_signal(signal.SIGINT)
    srv.proc.wait(timeout=5)
    assert time.monotonic() - started < 2.0  # the close-ok wait alone is 3 s
    assert srv.proc.returncode == -signal.SIGINT
    srv.proc = None
    assert "received signal 2 again, exiting at once" in srv.log_text()
    raw.close()
    srv.start()
    wutil.assert_healthy(srv)


def test_shutdown_timeout_bounds_an_unanswered_close(own_server):
    srv = own_server
    raw = amqp_raw.RawConnection(srv.host, srv.port)
    assert raw.handshake().name == "connection.open_ok"
    started = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=10) == 0
    # The connection's close-ok timeout (3 s) drops the silent client.
    assert time.monotonic() - started < 6
    srv.proc = None
    raw.close()


def test_json_console_lines(server_factory):
    srv = server_factory(extra_args=["--log-formatter", "json"])
    srv.stop()
    lines = [line for line in srv.log_text().splitlines() if line.startswith("{")]
    assert len(lines) >= 3
    for line in lines:
        record = json.loads(line)
        assert set(record) == {"time", "level", "msg"}
        assert record["level"] in ("debug", "info", "warning", "error", "critical")
        assert len(record["time"]) == 32 and record["time"][10] == " "
    assert any(json.loads(line)["msg"].startswith("Warren ") for line in lines)


def test_log_file_reopened_on_sigusr1(server_factory, tmp_path):
    path = tmp_path / "warren.log"
    srv = server_factory(extra_args=["--log-file", str(path), "--log-file-formatter", "json"])
    wutil.wait_until(lambda: path.exists() and "accepting AMQP 0-9-1" in path.read_text(), what="the log file")
    os.rename(path, str(path) + ".old")
    srv.proc.send_signal(signal.SIGUSR1)
    wutil.wait_until(lambda: path.exists() and "log file reopened" in path.read_text(), what="a new log file")
    wutil.connect(srv).close()
    srv.stop()
    fresh = [json.loads(line) for line in path.read_text().splitlines()]
    assert "accepting AMQP 0-9-1" not in " ".join(r["msg"] for r in fresh)
    assert any("Warren stopped" == r["msg"] for r in fresh)
    assert "accepting AMQP 0-9-1" in (tmp_path / "warren.log.old").read_text()


def test_log_file_rotates_by_size(server_factory, tmp_path):
    path = tmp_path / "warren.log"
    srv = server_factory(extra_args=["--log-file", str(path), "--log-file-rotation-size", "2000",
                                     "--log-file-rotation-count", "2", "--log-file-level", "debug"])
    for _ in range(20):
        wutil.connect(srv).close()
    srv.stop()
    names = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("warren.log"))
    assert names == ["warren.log", "warren.log.1", "warren.log.2"]
    for name in names:
        assert (tmp_path / name).stat().st_size <= 2000
    assert "Warren stopped" in path.read_text()
