"""The memory high watermark (RabbitMQ's vm_memory_high_watermark): past it every publishing
connection is blocked (connection.blocked "low on memory") and not read until consumers drain
the backlog; the alarm shows in the management API and the metrics; resident memory stays
bounded. Below it, queues page transient messages and large bodies to disk by a byte window as
well as a message window. Servers run with tiny limits so a few MiB exercise all of it."""
import base64
import json
import subprocess
import time
import urllib.error
import urllib.request

import pika
import pytest

import wutil
from conftest import SERVER_BIN

pytestmark = [pytest.mark.needs_own_server, pytest.mark.timeout(180)]

MiB = 1 << 20
TRANSIENT = pika.BasicProperties(delivery_mode=1)
# RSS may exceed the watermark by the idle process (code, RocksDB, HTTP threads: about 23 MiB
# here), the store's memtables, allocator slack and what the blocked publisher had in flight.
RSS_SLACK = 96 * MiB


def api(srv, path):
    req = urllib.request.Request("http://127.0.0.1:%d/api/%s" % (srv.management_port, path))
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def metrics(srv):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % srv.prometheus_port, timeout=10) as resp:
        text = resp.read().decode()
    return {line.split(" ")[0]: float(line.split(" ")[1]) for line in text.splitlines()
            if line and not line.startswith("#")}


def node(srv):
    status, nodes = api(srv, "nodes")
    assert status == 200
    return nodes[0]


def rss(srv):
    with open("/proc/%d/status" % srv.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.measures_rss
def test_publishers_blocked_past_the_watermark_until_a_consumer_drains(server_factory, uniq):
    limit = 48 * MiB
    # Windows larger than the limit: the backlog stays in memory, so it reaches the watermark.
    srv = server_factory(extra_args=["--memory-high-watermark", "48MiB", "--queue-memory-window", "1000000",
                                     "--queue-memory-window-bytes", "1GiB"])
    queue = uniq("mem")
    body = b"m" * (256 * 1024)
    events = []
    pub = pika.BlockingConnection(wutil.params(srv))
    pub.add_on_connection_blocked_callback(lambda _c, frame: events.append(("blocked", frame.method.reason)))
    pub.add_on_connection_unblocked_callback(lambda _c, _frame: events.append(("unblocked", None)))
    ch = pub.channel()
    ch.queue_declare(queue)
    published = 0
    peak_rss = 0
    deadline = time.monotonic() + 60
    # Publish until the server reports the alarm: one publish at a time, so pika never has more
    # than one message unsent when the server stops reading (its basic_publish waits for the
    # socket, and would wait for ever on a blocked connection).
    while api(srv, "health/checks/alarms")[0] != 503 and time.monotonic() < deadline:
        ch.basic_publish("", queue, body, TRANSIENT)
        published += 1
        if published % 16 == 0:
            peak_rss = max(peak_rss, rss(srv))
        assert published * len(body) < 4 * limit, "not blocked after publishing 4x the watermark"
    # As in RabbitMQ, a connection is blocked at its first publish during the alarm.
    ch.basic_publish("", queue, body, TRANSIENT)
    published += 1
    wutil.wait_until(lambda: pub.process_data_events(0.1) or events, what="connection.blocked")
    assert events == [("blocked", "low on memory")]
    assert "memory alarm" in srv.log_text() and "blocked: resource alarm (low on memory)" in srv.log_text()

    # The alarm shows everywhere RabbitMQ shows it.
    status, body_json = api(srv, "health/checks/alarms")
    assert status == 503 and body_json["status"] == "failed"
    assert body_json["alarms"] == [{"node": node(srv)["name"], "resource": "memory"}]
    n = node(srv)
    assert n["mem_alarm"] is True and n["disk_free_alarm"] is False
    assert n["mem_limit"] == limit and n["mem_used"] >= limit
    m = metrics(srv)
    assert m["warren_alarms_memory_used_watermark"] == 1
    assert m["warren_resident_memory_limit_bytes"] == limit
    assert m['warren_memory_used_bytes{use="messages"}'] >= limit * 0.9

    # The server no longer reads the blocked connection (pika itself waits while its socket is
    # full, so it cannot show this by publishing more); memory stays where the alarm stopped it.
    pub.process_data_events(1)
    peak_rss = max(peak_rss, rss(srv))
    assert node(srv)["mem_used"] < limit + 4 * len(body) + MiB
    assert peak_rss < limit + RSS_SLACK, "RSS %d MiB" % (peak_rss // MiB)

    # A consumer drains the queue during the alarm; the publisher is unblocked and everything
    # it sent arrives.
    con = wutil.connect(srv)
    cch = con.channel()
    got = 0
    deadline = time.monotonic() + 60
    while got < published and time.monotonic() < deadline:
        method, _props, payload = cch.basic_get(queue, auto_ack=True)
        if method is None:
            pub.process_data_events(0.05)
            continue
        assert payload == body
        got += 1
        if got % 32 == 0:
            pub.process_data_events(0)
    pub.process_data_events(0.5)
    assert got == published
    # Unblocked, the publisher's data still in the socket may take the queue over the watermark
    # again before the consumer catches up (blocked again, as RabbitMQ would): pairs, ending unblocked.
    assert len(events) % 2 == 0 and events[-1] == ("unblocked", None)
    assert events[0::2] == [("blocked", "low on memory")] * (len(events) // 2)
    assert events[1::2] == [("unblocked", None)] * (len(events) // 2)
    assert api(srv, "health/checks/alarms") == (200, {"status": "ok"})
    assert node(srv)["mem_alarm"] is False
    assert metrics(srv)["warren_alarms_memory_used_watermark"] == 0
    ch.basic_publish("", queue, b"after", TRANSIENT)  # publishing works again
    wutil.wait_count(cch, queue, 1)
    pub.close()
    con.close()


def test_zero_watermark_blocks_every_publisher(server_factory, uniq):
    srv = server_factory(extra_args=["--memory-high-watermark", "0"])
    wutil.wait_until(lambda: api(srv, "health/checks/local-alarms")[0] == 503, what="memory alarm on")
    assert api(srv, "health/checks/local-alarms")[1]["reason"] == "There are alarms in effect on the node"
    reasons = []
    conn = pika.BlockingConnection(wutil.params(srv))
    conn.add_on_connection_blocked_callback(lambda _c, frame: reasons.append(frame.method.reason))
    ch = conn.channel()
    queue = uniq("zero")
    ch.queue_declare(queue)  # not a publish: answered
    ch.basic_publish("", queue, b"x")
    wutil.wait_until(lambda: reasons, conn=conn, what="connection.blocked")
    assert reasons == ["low on memory"]
    wutil.close_quietly(conn)


@pytest.mark.parametrize("value", ["1.5", "lots", "12XB", "0.4GB"])
def test_invalid_watermark_is_refused_at_start(tmp_path, value):
    r = subprocess.run([SERVER_BIN, "--data-dir", str(tmp_path), "--port", "0", "--management-port", "0",
                        "--prometheus-port", "0", "--memory-high-watermark", value],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "invalid memory high watermark '%s'" % value in r.stdout + r.stderr


def test_transient_queue_pages_beyond_its_window_and_returns_everything_in_order(server_factory, uniq):
    srv = server_factory(extra_args=["--queue-memory-window", "100", "--queue-memory-window-bytes", "1MiB"])
    queue = uniq("transient")
    n = 6000
    body = b"t" * 1000
    conn = wutil.connect(srv)
    ch = conn.channel()
    ch.queue_declare(queue, auto_delete=False)  # not durable
    ch.confirm_delivery()
    for i in range(n):
        ch.basic_publish("", queue, b"%08d" % i + body, TRANSIENT)
    assert ch.queue_declare(queue, passive=True).method.message_count == n
    # About 6 MiB queued, at most the window (100 messages) in memory.
    assert node(srv)["mem_used"] < 2 * MiB
    got = []
    ch.basic_qos(prefetch_count=200)
    for method, _props, payload in ch.consume(queue, inactivity_timeout=10):
        if method is None:
            break
        got.append(int(payload[:8]))
        assert payload[8:] == body
        ch.basic_ack(method.delivery_tag)
        if len(got) == n:
            break
    assert got == list(range(n))
    ch.cancel()

    # A transient queue's paged messages go at restart with the queue.
    for i in range(500):
        ch.basic_publish("", queue, b"%08d" % i, TRANSIENT)
    conn.close()
    srv.restart()
    assert "1 transient queues' paged messages discarded" in srv.log_text()
    conn = wutil.connect(srv)
    ch = conn.channel()
    ch.queue_declare(queue)
    assert ch.queue_declare(queue, passive=True).method.message_count == 0
    ch.basic_publish("", queue, b"fresh")  # a new queue's ids never meet the old entries
    method, _props, payload = ch.basic_get(queue, auto_ack=True)
    assert payload == b"fresh"
    conn.close()


@pytest.mark.parametrize("durable", [True, False])
def test_large_messages_respect_the_byte_window(server_factory, uniq, durable):
    window = 8 * MiB
    srv = server_factory(extra_args=["--queue-memory-window-bytes", "8MiB"])
    queue = uniq("large")
    size = 2 * MiB
    count = 24  # 48 MiB: six times the window
    conn = wutil.connect(srv)
    ch = conn.channel()
    ch.queue_declare(queue, durable=durable)
    ch.confirm_delivery()
    for i in range(count):
        ch.basic_publish("", queue, bytes([65 + i % 26]) * size, pika.BasicProperties(delivery_mode=2))
    assert ch.queue_declare(queue, durable=durable, passive=True).method.message_count == count
    used = node(srv)["mem_used"]
    assert used <= window + 2 * size, "%d MiB in memory" % (used // MiB)
    for i in range(count):
        method, _props, payload = ch.basic_get(queue, auto_ack=True)
        assert method is not None, "message %d missing" % i
        assert payload == bytes([65 + i % 26]) * size
    conn.close()
