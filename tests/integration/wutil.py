"""Small helpers shared by the system tests (pika-based)."""
import base64
import contextlib
import json
import os
import time
import urllib.error
import urllib.request

import pika
import pika.exceptions as pexc
import pytest


def params(server, user=None, password=None, host=None, **kw):
    kw.setdefault("socket_timeout", 10)
    kw.setdefault("stack_timeout", 20)
    kw.setdefault("blocked_connection_timeout", 60)
    kw.setdefault("connection_attempts", 1)
    return pika.ConnectionParameters(
        host=host or server.host, port=server.port,
        credentials=pika.PlainCredentials(user or server.user, password or server.password),
        **kw)


def connect(server, **kw):
    return pika.BlockingConnection(params(server, **kw))


def close_quietly(conn):
    try:
        if conn.is_open:
            conn.close()
    except Exception:
        pass


@contextlib.contextmanager
def channel_error(code):
    """Expect the broker to close the channel with reply code `code`."""
    with pytest.raises(pexc.ChannelClosedByBroker) as ei:
        yield ei
    assert ei.value.reply_code == code, "expected channel close %d, got %d %s" % (
        code, ei.value.reply_code, ei.value.reply_text)


@contextlib.contextmanager
def connection_error(code):
    """Expect the broker to close the whole connection with reply code `code`."""
    with pytest.raises(pexc.ConnectionClosedByBroker) as ei:
        yield ei
    assert ei.value.reply_code == code, "expected connection close %d, got %d %s" % (
        code, ei.value.reply_code, ei.value.reply_text)


def wait_until(pred, timeout=5.0, interval=0.02, conn=None, what="condition"):
    """Poll pred() until true; pumps pika I/O on `conn` while waiting."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        if conn is not None:
            conn.process_data_events(time_limit=interval)
        else:
            time.sleep(interval)


def pump(conn, seconds):
    """Process pika I/O for `seconds` (lets deliveries arrive)."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        conn.process_data_events(time_limit=min(left, 0.1))


def get_one(ch, queue, timeout=5.0, auto_ack=False):
    """basic.get until a message arrives (delivery may be asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        method, props, body = ch.basic_get(queue, auto_ack=auto_ack)
        if method is not None:
            return method, props, body
        if time.monotonic() > deadline:
            raise AssertionError("no message in %s within %.1f s" % (queue, timeout))
        time.sleep(0.02)


def get_all(server, queue, with_properties=False):
    """basic.get (auto-ack) on a new connection until the queue answers empty; -> the bodies (or
    (body, properties) pairs)."""
    conn = connect(server)
    try:
        ch = conn.channel()
        got = []
        while True:
            method, props, body = ch.basic_get(queue, auto_ack=True)
            if method is None:
                return got
            got.append((body, props) if with_properties else body)
    finally:
        close_quietly(conn)


def collect(conn, ch, queue, n, timeout=5.0, auto_ack=True, **consume_kw):
    """Consume until n messages arrived; returns [(method, props, body)].  Cancels after."""
    got = []

    def on_msg(c, m, p, b):
        got.append((m, p, b))

    tag = ch.basic_consume(queue, on_msg, auto_ack=auto_ack, **consume_kw)
    wait_until(lambda: len(got) >= n, timeout, conn=conn, what="%d messages from %s" % (n, queue))
    ch.basic_cancel(tag)
    return got


def message_count(ch, queue):
    return ch.queue_declare(queue, passive=True).method.message_count


def wait_count(ch, queue, n, timeout=5.0):
    """Wait until the queue holds exactly n ready messages (counts can lag a little)."""
    deadline = time.monotonic() + timeout
    while True:
        c = message_count(ch, queue)
        if c == n:
            return
        if time.monotonic() > deadline:
            raise AssertionError("queue %s has %d messages, expected %d" % (queue, c, n))
        time.sleep(0.02)


def assert_healthy(server, timeout=5.0):
    """A normal client can still connect, declare, publish and consume."""
    conn = connect(server)
    try:
        ch = conn.channel()
        q = ch.queue_declare("", exclusive=True).method.queue
        ch.basic_publish("", q, b"still-alive")
        _m, _p, body = get_one(ch, q, timeout, auto_ack=True)
        assert body == b"still-alive"
    finally:
        close_quietly(conn)


def power_cut_binary(server_binary):
    """warren-server-powercut (tests/power_cut/): beside the server's build, or WARREN_POWER_CUT_SERVER."""
    default = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(server_binary))), "tests",
                           "warren-server-powercut")
    path = os.environ.get("WARREN_POWER_CUT_SERVER") or default
    if not os.path.exists(path):
        pytest.fail("power-cut server %s does not exist (build the project first, or set "
                    "WARREN_POWER_CUT_SERVER)" % path, pytrace=False)
    return path


def http_api(srv, method, path, body=None, user=None, password=None, raw_body=None, auth=True, timeout=30):
    """A management API call: -> (status, parsed JSON or None, headers)."""
    url = "http://%s:%d/api/%s" % (srv.host, srv.management_port, path)
    data = raw_body if raw_body is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if auth:
        token = base64.b64encode(("%s:%s" % (user or srv.user, password or srv.password)).encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, text, headers = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as e:
        status, text, headers = e.code, e.read(), e.headers
    return status, (json.loads(text) if text else None), headers


def api(srv, method, path, body=None, user=None, password=None):
    """A management API call: -> (status, parsed JSON or None)."""
    status, parsed, _headers = http_api(srv, method, path, body, user, password)
    return status, parsed


def rss_kib(pid):
    """The resident memory of process `pid`, KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")
