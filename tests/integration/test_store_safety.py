"""The data directory and the store's failures: files private to the server's user; a WAL damaged
before its end stops start-up with a message naming it (a torn last record, as a crash leaves,
is dropped); a second server on a data directory in use is told who holds it; a store write
failure's fields are in the health checks, /api/nodes and Prometheus."""
import base64
import json
import os
import stat
import subprocess
import urllib.error
import urllib.request

import pika
import pytest

import wutil

pytestmark = [pytest.mark.needs_own_server, pytest.mark.timeout(120)]

QUEUE = "store-safety"
N = 20
PERSISTENT = pika.BasicProperties(delivery_mode=2)


def body(i):
    return b"m%04d-" % i + b"x" * 2000


def get(srv, path, port=None):
    """-> (status, text) of GET http://127.0.0.1:port/path with the server's user."""
    url = "http://%s:%d/%s" % (srv.host, port or srv.management_port, path)
    req = urllib.request.Request(url)
    token = base64.b64encode(("%s:%s" % (srv.user, srv.password)).encode()).decode()
    req.add_header("Authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def start_fails(srv, extra=()):
    """Runs the server's command line, expecting it to refuse to start: -> its output."""
    proc = subprocess.run(srv.command() + list(extra), capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode != 0, "the server started:\n" + proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def fresh_data_dir(tmp_path):
    parent = tmp_path / "srv"
    parent.mkdir()
    return str(parent / "data")  # the server creates it


def test_fresh_data_dir_and_its_files_are_private(server_factory, tmp_path):
    data = fresh_data_dir(tmp_path)
    srv = server_factory(data_dir=data)
    conn = wutil.connect(srv)
    ch = conn.channel()
    ch.queue_declare(QUEUE, durable=True)
    ch.confirm_delivery()
    ch.basic_publish("", QUEUE, body(0), PERSISTENT)
    conn.close()
    srv.stop()  # flushes nothing more, but every file exists by now
    paths = [data]
    for root, dirs, files in os.walk(data):
        paths += [os.path.join(root, n) for n in dirs + files]
    assert any(p.endswith(".warrenctl-token") for p in paths)
    assert any(p.endswith(".log") for p in paths), paths
    open_to_others = ["%s %o" % (p, stat.S_IMODE(os.lstat(p).st_mode)) for p in paths
                      if os.lstat(p).st_mode & 0o077]
    assert open_to_others == []
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700


def test_data_dir_open_to_others_is_warned_about(server_factory, tmp_path):
    data = fresh_data_dir(tmp_path)
    os.makedirs(data, mode=0o755)
    os.chmod(data, 0o755)
    srv = server_factory(data_dir=data)
    assert "open to other local users (mode 755)" in srv.log_text()


def publish_then_kill(server_factory, tmp_path):
    """N confirmed persistent publishes, each its own WAL record, then kill -9: the WAL, not yet
    flushed to a table, is the only copy. -> (server, path of the WAL)."""
    srv = server_factory(data_dir=fresh_data_dir(tmp_path))
    conn = wutil.connect(srv)
    ch = conn.channel()
    ch.queue_declare(QUEUE, durable=True)
    ch.confirm_delivery()
    for i in range(N):
        ch.basic_publish("", QUEUE, body(i), PERSISTENT)
    srv.kill9()
    store = os.path.join(srv.data_dir, "store")
    wals = [os.path.join(store, n) for n in os.listdir(store) if n.endswith(".log")]
    wal = max(wals, key=os.path.getsize)
    assert os.path.getsize(wal) > N * 2000
    return srv, wal


def test_wal_damaged_in_the_middle_stops_start_up(server_factory, tmp_path):
    srv, wal = publish_then_kill(server_factory, tmp_path)
    with open(wal, "r+b") as f:
        f.seek(os.path.getsize(wal) // 2)
        b = f.read(1)
        f.seek(os.path.getsize(wal) // 2)
        f.write(bytes([b[0] ^ 0x5A]))
    size = os.path.getsize(wal)
    out = start_fails(srv)
    assert "write-ahead log" in out and os.path.basename(wal) in out, out
    assert "--truncate-corrupt-wal" in out, out
    assert "start empty" not in out
    assert os.path.getsize(wal) == size

    # The operator's explicit choice: start with the records before the damage.
    srv.extra_args.append("--truncate-corrupt-wal")
    srv.start()
    got = wutil.get_all(srv, QUEUE)
    assert 0 < len(got) < N
    assert got == [body(i) for i in range(len(got))]


def test_torn_wal_tail_is_dropped_and_the_rest_kept(server_factory, tmp_path):
    srv, wal = publish_then_kill(server_factory, tmp_path)
    os.truncate(wal, os.path.getsize(wal) - 100)  # the last record cut short, as a crash leaves it
    srv.start()
    assert wutil.get_all(srv, QUEUE) == [body(i) for i in range(N - 1)]


def test_second_server_on_a_data_dir_in_use_is_told_who_holds_it(server_factory, tmp_path):
    first = server_factory(data_dir=fresh_data_dir(tmp_path))
    second = type(first)(first.binary, data_dir=first.data_dir)
    try:
        out = start_fails(second)
    finally:
        second.cleanup()
    lock = os.path.join(first.data_dir, "store", "LOCK")
    assert "is in use" in out and lock in out, out
    assert "pid %d" % first.proc.pid in out, out
    assert "start empty" not in out and "move the directory" not in out, out
    wutil.assert_healthy(first)


def test_nodes_health_and_metrics_report_the_store(server_factory, tmp_path):
    # The failing state: test_store_failure.py (a disk that fills, dies or stalls under the store)
    # and test_disk_full.py (a real full disk).
    srv = server_factory(data_dir=fresh_data_dir(tmp_path), extra_args=["--disk-free-limit", "1000"])
    assert get(srv, "api/health/checks/alarms") == (200, '{"status":"ok"}')
    assert get(srv, "api/health/checks/virtual-hosts") == (200, '{"status":"ok"}')
    _status, text = get(srv, "metrics", srv.prometheus_port)
    assert "\nwarren_store_write_failing 0\n" in text
    assert "\nwarren_store_write_failures_total 0\n" in text
    assert "\nwarren_alarms_free_disk_space_watermark 0\n" in text
    node = json.loads(get(srv, "api/nodes")[1])[0]
    assert node["store_alarm"] is False and node["store_error"] is None
    assert node["disk_free_limit"] == 1000 and node["disk_free"] > 1000
    assert node["running"] is True and node["name"]
