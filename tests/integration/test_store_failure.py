"""A failing store, with the server running as warren-server-powercut (build/tests/, see
tests/power_cut/): its store is on FaultInjectionFS, and signals make that disk die (SIGRTMIN:
every write fails with an I/O error), fill (SIGRTMIN+1: no space), stop answering (SIGRTMIN+2)
or heal (SIGRTMIN+3).

A publish the store could not write is never confirmed (nacked, or its connection closes). A dead
disk is fatal: the server stops at once with exit code 1 and a critical log line. A full disk
is not: it shows in the health checks, /api/nodes and Prometheus until there is room again, and
a server stopped meanwhile exits 1. A stalled disk makes HTTP publish answer 503 (store
back-pressure), as the disk alarm does. After each, the normal server restarted on the same data
directory has every message that was confirmed."""
import base64
import json
import signal
import threading
import time
import urllib.error
import urllib.request

import pika
import pika.exceptions as pexc
import pytest

import wutil

pytestmark = [pytest.mark.needs_own_server, pytest.mark.timeout(120)]

DISK_DIES, DISK_FULL, DISK_STALLS, DISK_HEALS = (signal.SIGRTMIN + i for i in range(4))
QUEUE = "store-failure"
PERSISTENT = pika.BasicProperties(delivery_mode=2)


def body(i):
    return b"m%08d-" % i + b"x" * 1000


def fault_server(server_factory):
    """A running warren-server-powercut with a durable QUEUE."""
    srv = server_factory()
    srv.stop()
    srv.normal_binary, srv.binary = srv.binary, wutil.power_cut_binary(srv.binary)
    srv.start()
    assert "power-cut test build" in srv.log_text()
    conn = wutil.connect(srv)
    conn.channel().queue_declare(QUEUE, durable=True)
    conn.close()
    return srv


def inject(srv, sig, log_line):
    """Sends the fault signal and waits until the server has applied it."""
    before = srv.log_text().count(log_line)
    srv.proc.send_signal(sig)
    wutil.wait_until(lambda: srv.log_text().count(log_line) > before, what="'%s' in the log" % log_line)


def http(srv, method, path, payload=None, port=None):
    """-> (status, parsed JSON or text) of an HTTP request with the server's user."""
    url = "http://%s:%d/%s" % (srv.host, port or srv.management_port, path)
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, method=method)
    token = base64.b64encode(("%s:%s" % (srv.user, srv.password)).encode()).decode()
    req.add_header("Authorization", "Basic " + token)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, text = resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read().decode()
    try:
        return status, json.loads(text)
    except ValueError:
        return status, text


def metric(srv, name):
    _status, text = http(srv, "GET", "metrics", port=srv.prometheus_port)
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no %s in the metrics" % name)


def publish_confirmed(ch, first, n):
    """Publishes body(first..first+n-1) with confirms; every one must be confirmed."""
    for i in range(first, first + n):
        ch.basic_publish("", QUEUE, body(i), PERSISTENT)
    return list(range(first, first + n))


def publish_refused(ch, i, refusals=(pexc.NackError, pexc.AMQPError)):
    """A persistent publish the store cannot write: nacked, or (a server stopping on a dead disk)
    its channel or connection closes."""
    with pytest.raises(refusals):
        ch.basic_publish("", QUEUE, body(i), PERSISTENT)


def drain_on_healthy_disk(srv):
    """Restarts the normal server on the data directory; -> the indexes of QUEUE's messages."""
    srv.binary = srv.normal_binary
    srv.start()
    return [int(b[1:9]) for b in wutil.get_all(srv, QUEUE)]


def assert_confirmed_kept(got, confirmed, unconfirmed):
    """Every confirmed message is there, once and in order; an unconfirmed one may or may not be."""
    confirmed_set = set(confirmed)
    assert [i for i in got if i in confirmed_set] == confirmed
    assert set(got) - confirmed_set <= set(unconfirmed), got


def wait_for_exit(srv):
    """-> (exit code, log) of the server once it has stopped by itself."""
    proc, srv.proc = srv.proc, None
    proc.wait(timeout=30)
    return proc.returncode, srv.log_text()


def test_dead_disk_confirms_nothing_stops_the_server_and_loses_nothing_confirmed(server_factory):
    srv = fault_server(server_factory)
    conn = wutil.connect(srv)
    ch = conn.channel()
    ch.confirm_delivery()
    confirmed = publish_confirmed(ch, 0, 50)
    inject(srv, DISK_DIES, "the store's disk died")
    publish_refused(ch, 50)
    wutil.close_quietly(conn)
    code, log = wait_for_exit(srv)
    assert code == 1, "exit code %s; log:\n%s" % (code, log[-4000:])
    assert "the store cannot write any more (IO error" in log
    assert "stopped with the store failing" in log and "exiting without closing it" in log
    assert_confirmed_kept(drain_on_healthy_disk(srv), confirmed, [50])


def publisher(srv, run, stop):
    """Publishes body(run["first"]), ... with confirms until refused or stopped."""
    conn = wutil.connect(srv)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        i = run["first"]
        while not stop.is_set():
            run["attempted"].append(i)
            ch.basic_publish("", QUEUE, body(i), PERSISTENT)
            run["confirmed"].append(i)
            i += 1
    except (pexc.NackError, pexc.AMQPError):
        pass
    finally:
        wutil.close_quietly(conn)


def test_disk_dying_under_load_stops_the_server_and_loses_nothing_confirmed(server_factory):
    srv = fault_server(server_factory)
    stop = threading.Event()
    runs = [{"first": 1000000 * k, "confirmed": [], "attempted": []} for k in range(3)]
    threads = [threading.Thread(target=publisher, args=(srv, run, stop)) for run in runs]
    for t in threads:
        t.start()
    wutil.wait_until(lambda: all(len(r["confirmed"]) > 20 for r in runs), timeout=20, what="confirmed publishes")
    inject(srv, DISK_DIES, "the store's disk died")
    code, log = wait_for_exit(srv)
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert code == 1, "exit code %s; log:\n%s" % (code, log[-4000:])
    got = drain_on_healthy_disk(srv)
    for run in runs:
        mine = [i for i in got if run["first"] <= i < run["first"] + 1000000]
        assert_confirmed_kept(mine, run["confirmed"], run["attempted"])


def assert_store_alarm(srv):
    status, reply = http(srv, "GET", "api/health/checks/alarms")
    assert status == 503 and reply["status"] == "failed", reply
    assert {"node": reply["alarms"][0]["node"], "resource": "store"} in reply["alarms"], reply
    status, reply = http(srv, "GET", "api/health/checks/virtual-hosts")
    assert status == 503, reply
    status, nodes = http(srv, "GET", "api/nodes")
    assert status == 200 and nodes[0]["store_alarm"] is True, nodes
    assert "space" in nodes[0]["store_error"], nodes
    assert metric(srv, "warren_store_write_failing") == 1
    assert metric(srv, "warren_store_write_failures_total") >= 1


def assert_no_store_alarm(srv):
    assert http(srv, "GET", "api/health/checks/alarms") == (200, {"status": "ok"})
    status, nodes = http(srv, "GET", "api/nodes")
    assert nodes[0]["store_alarm"] is False and nodes[0]["store_error"] is None, nodes
    assert metric(srv, "warren_store_write_failing") == 0


def test_full_disk_shows_in_health_nodes_and_metrics_and_stopping_then_exits_1(server_factory):
    srv = fault_server(server_factory)
    conn = wutil.connect(srv)
    ch = conn.channel()
    ch.confirm_delivery()
    confirmed = publish_confirmed(ch, 0, 20)
    assert_no_store_alarm(srv)
    inject(srv, DISK_FULL, "the store's disk is full")
    publish_refused(ch, 20, pexc.NackError)
    assert srv.is_running(), "a full disk is not fatal"
    assert_store_alarm(srv)
    publish_refused(ch, 21, pexc.NackError)  # still full: nacked again, the server still up
    assert_store_alarm(srv)
    wutil.close_quietly(conn)

    code = srv.stop()
    log = srv.log_text()
    assert code == 1, "exit code %s; log:\n%s" % (code, log[-4000:])
    assert "stopped with the store failing" in log and "exiting without closing it" in log
    assert_confirmed_kept(drain_on_healthy_disk(srv), confirmed, [20, 21])


def test_full_disk_heals_once_there_is_room(server_factory):
    srv = fault_server(server_factory)
    conn = wutil.connect(srv)
    ch = conn.channel()
    ch.confirm_delivery()
    confirmed = publish_confirmed(ch, 0, 20)
    inject(srv, DISK_FULL, "the store's disk is full")
    publish_refused(ch, 20, pexc.NackError)
    assert_store_alarm(srv)
    inject(srv, DISK_HEALS, "the store's disk has room")
    # The store's writer resumes RocksDB before its next write once there is room.
    i = 21
    deadline = time.monotonic() + 30
    while True:
        try:
            ch.basic_publish("", QUEUE, body(i), PERSISTENT)
            confirmed.append(i)
            break
        except pexc.NackError:
            assert time.monotonic() < deadline, "the store did not resume"
            i += 1
            time.sleep(0.1)
    confirmed += publish_confirmed(ch, i + 1, 20)
    assert_no_store_alarm(srv)
    wutil.close_quietly(conn)
    assert srv.stop() == 0
    assert_confirmed_kept(drain_on_healthy_disk(srv), confirmed, list(range(20, i)))


def http_publish(srv, queue, payload):
    return http(srv, "POST", "api/exchanges/%2F/amq.default/publish",
                {"properties": {"delivery_mode": 2}, "routing_key": queue, "payload": payload,
                 "payload_encoding": "string"})


def test_http_publish_is_refused_while_the_store_is_behind(server_factory):
    srv = fault_server(server_factory)
    conn = wutil.connect(srv)
    conn.channel().queue_declare("http-q", durable=True)
    conn.close()
    inject(srv, DISK_STALLS, "the store's disk stopped answering")

    # More than the store's back-pressure limit (Persister::kCongestedBytes, 8 MiB) of persistent
    # messages, written by nobody: the AMQP publisher is paused, and blocks in send.
    def flood():
        c = wutil.connect(srv)
        ch = c.channel()
        for _ in range(100):
            ch.basic_publish("", QUEUE, b"f" * 131072, PERSISTENT)
        c.close()
    publisher_thread = threading.Thread(target=flood)
    publisher_thread.start()

    accepted = 0  # before the store was behind, each waiting for the stalled disk like the flood
    deadline = time.monotonic() + 20
    while True:
        status, reply = http_publish(srv, "http-q", "while stalled")
        if status == 503:
            break
        assert status == 200 and time.monotonic() < deadline, (status, reply)
        accepted += 1
        time.sleep(0.05)
    assert reply == {"error": "service_unavailable",
                     "reason": "publishing is paused: the store is behind; retry later"}
    assert http_publish(srv, "http-q", "still stalled")[0] == 503

    inject(srv, DISK_HEALS, "the store's disk has room and answers again")
    publisher_thread.join(timeout=30)
    assert not publisher_thread.is_alive()
    wutil.wait_until(lambda: http_publish(srv, "http-q", "after")[0] == 200, timeout=10,
                     what="HTTP publish accepted again")
    conn = wutil.connect(srv)
    ch = conn.channel()
    assert wutil.message_count(ch, QUEUE) == 100
    wutil.wait_count(ch, "http-q", accepted + 1)
    conn.close()
    assert srv.stop() == 0


def test_http_publish_is_refused_during_the_disk_alarm(server_factory):
    srv = server_factory(extra_args=["--disk-free-limit", str(1 << 60)])  # more than any disk has free
    conn = wutil.connect(srv)
    ch = conn.channel()
    ch.queue_declare("http-q", durable=True)
    wutil.wait_until(lambda: http(srv, "GET", "api/nodes")[1][0]["disk_free_alarm"], what="the disk alarm")
    assert http_publish(srv, "http-q", "during the alarm") == (503, {
        "error": "service_unavailable",
        "reason": "publishing is blocked: free disk space is below --disk-free-limit (resource alarm)"})
    assert wutil.message_count(ch, "http-q") == 0
    conn.close()
