"""The HTTP front door under hostile clients (issue 8, finding 8): bodies are not read before
authentication and are capped, the Prometheus port answers 405 to anything but GET, slow clients
cannot hold the workers, cross-site writes and DNS rebinding are refused, the UI's security
headers, /get's caps, and warrenctl's local admin token stays on the loopback.

Raw sockets where the point is what the server does before a body arrives."""
import base64
import http.client
import json
import os
import socket
import subprocess
import time
import urllib.parse

import pika
import pytest

import wutil
from conftest import SERVER_BIN

pytestmark = pytest.mark.needs_own_server  # Warren's own limits, not RabbitMQ's

GUEST = "Basic " + base64.b64encode(b"guest:guest").decode()
BAD = "Basic " + base64.b64encode(b"guest:wrong").decode()
MAX_BODY = 20000000  # management.h kMaxBody
MAX_OBJECT_BODY = 1 << 20  # management.h kMaxObjectBody


def q(name):
    return urllib.parse.quote(name, safe="")


def request(srv, method, path, body=None, headers=None, port=None):
    """One request on a fresh connection -> (status, headers, body bytes)."""
    conn = http.client.HTTPConnection(srv.host, port or srv.management_port, timeout=10)
    try:
        hdrs = {"Authorization": GUEST}
        if body is not None:
            hdrs["Content-Type"] = "application/json"
        hdrs.update(headers or {})
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def raw_head(srv, head, port=None, timeout=5.0):
    """Sends only a request head and reads the reply until the server closes or `timeout`.
    -> (status or None, reply text, seconds until the reply began)."""
    s = socket.create_connection((srv.host, port or srv.management_port), timeout=timeout)
    start = time.monotonic()
    data = b""
    first = None
    try:
        s.sendall(head.encode())
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            if first is None:
                first = time.monotonic() - start
            data += chunk
    finally:
        s.close()
    text = data.decode("utf-8", "replace")
    status = int(text.split(" ", 2)[1]) if text.startswith("HTTP/1.") else None
    return status, text, first


# ---- 1. Nothing of a body is read before authentication, and bodies are capped ----

def test_unauthenticated_body_is_refused_before_it_is_read(server, uniq):
    name = uniq("http-noread")
    # 50 MB announced, none sent: the reply must not wait for it.
    status, text, first = raw_head(server, (
        "PUT /api/queues/%%2F/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\n"
        "Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n") % (name, BAD), timeout=4)
    assert status == 401, text
    assert "Login failed" in text
    assert first is not None and first < 4
    status, _, _ = request(server, "GET", "/api/queues/%2F/" + name)
    assert status == 404


def test_oversized_bodies_are_413_with_a_reason(server, uniq):
    name = uniq("http-big")
    # Over the server-wide cap (RabbitMQ's 20 MB http_max_body_size): refused before reading.
    status, text, first = raw_head(server, (
        "POST /api/exchanges/%%2F/amq.default/publish HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\n"
        "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n") % (GUEST, MAX_BODY + 1), timeout=4)
    assert status == 413, text
    assert "payload_too_large" in text and str(MAX_BODY) in text
    # An object declaration has a smaller cap (the reply comes before the body is sent, as above:
    # a client still sending would see the connection closed under it).
    status, text, _ = raw_head(server, (
        "PUT /api/queues/%%2F/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\n"
        "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n") % (name, GUEST, MAX_OBJECT_BODY + 1),
        timeout=4)
    assert status == 413, text
    assert text.endswith("limit of %d bytes\"}" % MAX_OBJECT_BODY), text
    assert request(server, "GET", "/api/queues/%2F/" + q(name))[0] == 404
    # A publish body may be larger than an object's.
    wutil_conn = wutil.connect(server)
    try:
        wutil_conn.channel().queue_declare(name, auto_delete=False)
    finally:
        wutil.close_quietly(wutil_conn)
    body = json.dumps({"properties": {}, "routing_key": name, "payload": "x" * (2 * MAX_OBJECT_BODY),
                       "payload_encoding": "string"})
    status, _, reply = request(server, "POST", "/api/exchanges/%2F/amq.default/publish", body=body)
    assert (status, json.loads(reply)) == (200, {"routed": True})
    assert request(server, "DELETE", "/api/queues/%2F/" + q(name))[0] == 204


def test_chunked_request_bodies_are_refused(server):
    status, text, _ = raw_head(server, (
        "PUT /api/vhosts/chunky HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n") % GUEST, timeout=4)
    assert status == 411, text
    assert request(server, "GET", "/api/vhosts/chunky")[0] == 404


def test_put_without_a_body_is_answered_at_once(server, uniq):
    name = uniq("http-nobody")
    # curl -X PUT sends no Content-Length: the body is empty, not "until the client closes".
    status, text, first = raw_head(server, (
        "PUT /api/vhosts/%s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\nConnection: close\r\n\r\n")
        % (name, GUEST), timeout=4)
    assert status == 201, text
    assert first < 4
    assert request(server, "DELETE", "/api/vhosts/" + name)[0] == 204


# ---- 2. Prometheus: 405 without reading ----

def test_prometheus_answers_405_to_a_post_without_reading_it(server):
    status, text, first = raw_head(server, (
        "POST /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 52428800\r\n\r\n"),
        port=server.prometheus_port, timeout=4)
    assert status == 405, text
    assert "Allow: GET, HEAD" in text
    assert first is not None and first < 4
    status, _, body = request(server, "GET", "/metrics", port=server.prometheus_port)
    assert status == 200 and b"warren_queues" in body


# ---- 3. Slow clients ----

@pytest.mark.timeout(90)
def test_slow_clients_do_not_stop_a_normal_request(server):
    slow = []
    try:
        for _ in range(50):
            s = socket.create_connection((server.host, server.management_port), timeout=5)
            s.sendall(b"GET /api/overview HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            slow.append(s)
        for round_ in range(3):
            for s in slow:
                s.sendall(b"a")  # one more header byte from each, as a slow-loris does
            start = time.monotonic()
            status, _, body = request(server, "GET", "/api/overview")
            assert status == 200, body
            assert time.monotonic() - start < 5
    finally:
        for s in slow:
            s.close()


@pytest.mark.timeout(60)
def test_a_head_that_never_completes_is_closed_with_408(server):
    s = socket.create_connection((server.host, server.management_port), timeout=30)
    try:
        s.sendall(b"GET /api/overview HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        start = time.monotonic()
        data = b""
        while True:
            try:
                s.sendall(b"X")
            except OSError:
                break
            try:
                s.settimeout(1)
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            except socket.timeout:
                pass
        waited = time.monotonic() - start
    finally:
        s.close()
    assert data.startswith(b"HTTP/1.1 408"), data
    assert waited < 25  # head_timeout is 10 s from the first byte


def test_an_oversized_head_is_431(server):
    status, text, _ = raw_head(server, "GET /api/overview HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: %s\r\n\r\n"
                               % ("b" * 40000), timeout=5)
    assert status == 431, text


def test_keep_alive_serves_several_requests_on_one_connection(server):
    conn = http.client.HTTPConnection(server.host, server.management_port, timeout=10)
    try:
        for _ in range(3):
            conn.request("GET", "/api/overview", headers={"Authorization": GUEST})
            resp = conn.getresponse()
            assert resp.status == 200
            resp.read()
        # A refused body does not poison the connection: the server closes it instead.
        conn.request("PUT", "/api/vhosts/x", body="{}", headers={"Authorization": BAD,
                                                                  "Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 401
        resp.read()
    finally:
        conn.close()


# ---- 4. Cross-site writes, DNS rebinding, security headers ----

def test_write_bodies_must_be_json(server, uniq):
    name = uniq("http-ct")
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        status, _, reply = request(server, "PUT", "/api/queues/%2F/" + q(name), body='{"durable":false}',
                                   headers={"Content-Type": ctype})
        assert status == 415, (ctype, reply)
        assert "application/json" in json.loads(reply)["reason"]
    assert request(server, "GET", "/api/queues/%2F/" + q(name))[0] == 404
    status, _, _ = request(server, "PUT", "/api/queues/%2F/" + q(name), body='{"durable":false}',
                           headers={"Content-Type": "application/json; charset=utf-8"})
    assert status == 201
    # curl as the README shows it.
    url = "http://%s:%d/api/queues/%%2F/%s" % (server.host, server.management_port, q(name))
    out = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", "guest:guest", "-X", "PUT",
                          "-H", "content-type: application/json", "-d", '{"durable":false}', url],
                         capture_output=True, timeout=20)
    assert out.stdout == b"204"
    assert request(server, "DELETE", "/api/queues/%2F/" + q(name))[0] == 204


def test_cross_origin_writes_are_refused(server, uniq):
    name = uniq("http-origin")
    status, _, reply = request(server, "PUT", "/api/queues/%2F/" + q(name), body="{}",
                               headers={"Origin": "http://evil.example"})
    assert status == 403, reply
    assert "cross-origin" in json.loads(reply)["reason"]
    status, _, _ = request(server, "PUT", "/api/queues/%2F/" + q(name), body="{}", headers={"Origin": "null"})
    assert status == 403
    assert request(server, "GET", "/api/queues/%2F/" + q(name))[0] == 404
    same = "http://%s:%d" % (server.host, server.management_port)
    status, _, _ = request(server, "PUT", "/api/queues/%2F/" + q(name), body="{}", headers={"Origin": same})
    assert status == 201
    status, _, _ = request(server, "DELETE", "/api/queues/%2F/" + q(name), headers={"Origin": "http://evil.example"})
    assert status == 403
    assert request(server, "DELETE", "/api/queues/%2F/" + q(name))[0] == 204


def test_foreign_host_headers_are_refused(server):
    for path in ("/api/overview", "/"):
        status, _, reply = request(server, "GET", path, headers={"Host": "evil.example:%d" % server.management_port})
        assert status == 403, (path, reply)
        assert "evil.example" in json.loads(reply)["reason"]
    for host in ("127.0.0.1:%d" % server.management_port, "localhost", "[::1]:%d" % server.management_port,
                 socket.gethostname()):
        assert request(server, "GET", "/api/overview", headers={"Host": host})[0] == 200, host


def test_allowed_hosts_flag(server_factory):
    srv = server_factory(extra_args=["--management-allowed-hosts", "broker.test,mq.example.com"])
    assert request(srv, "GET", "/api/overview", headers={"Host": "broker.test:15672"})[0] == 200
    assert request(srv, "GET", "/api/overview", headers={"Host": "MQ.example.com"})[0] == 200
    assert request(srv, "GET", "/api/overview", headers={"Host": "other.test"})[0] == 403


def test_security_headers(server):
    for path in ("/", "/app.js", "/api/overview"):
        status, headers, _ = request(server, "GET", path)
        assert status == 200
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"


# ---- 6. /get caps ----

def publish(srv, queue, n, size):
    conn = pika.BlockingConnection(wutil.params(srv))
    try:
        ch = conn.channel()
        ch.queue_declare(queue)
        body = b"m" * size
        for _ in range(n):
            ch.basic_publish("", queue, body)
        wutil.wait_count(ch, queue, n, timeout=30)
    finally:
        wutil.close_quietly(conn)


def get(srv, queue, count):
    body = json.dumps({"count": count, "ackmode": "ack_requeue_true", "encoding": "auto"})
    status, _, reply = request(srv, "POST", "/api/queues/%%2F/%s/get" % q(queue), body=body)
    assert status == 200, reply
    return json.loads(reply)


@pytest.mark.timeout(120)
def test_get_count_is_capped(server, uniq):
    name = uniq("http-getcount")
    publish(server, name, 10050, 1)
    assert len(get(server, name, 1000000)) == 10000
    assert len(get(server, name, 5)) == 5
    assert request(server, "DELETE", "/api/queues/%2F/" + q(name))[0] == 204


@pytest.mark.timeout(120)
def test_get_reply_bytes_are_capped(server, uniq):
    name = uniq("http-getbytes")
    publish(server, name, 20, 1 << 20)
    got = get(server, name, 100)
    # Stops once 16 MiB of payloads are in the reply; the rest stay queued, in order.
    assert len(got) == 16
    status, _, reply = request(server, "GET", "/api/queues/%2F/" + q(name))
    assert json.loads(reply)["messages"] == 20
    assert request(server, "DELETE", "/api/queues/%2F/" + q(name))[0] == 204


# ---- 5. warrenctl's local admin token ----

WARRENCTL = os.path.join(os.path.dirname(SERVER_BIN), "warrenctl")


def warrenctl(srv, url, *args):
    env = {k: v for k, v in os.environ.items() if k not in ("WARREN_USER", "WARREN_PASSWORD")}
    env.update(WARREN_URL=url, WARREN_DATA_DIR=srv.data_dir)
    r = subprocess.run([WARRENCTL] + list(args), env=env, capture_output=True, timeout=30)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def test_warrenctl_sends_the_token_to_loopback_urls_only(own_server):
    srv = own_server
    port = srv.management_port
    for url in ("http://127.0.0.1:%d" % port, "http://localhost:%d" % port, "http://[::1]:%d" % port):
        if url.startswith("http://[::1]") and not socket.has_ipv6:
            continue
        code, out, err = warrenctl(srv, url, "list_vhosts")
        if "[::1]" in url and code == 69:
            continue  # no IPv6 listener (the server binds 127.0.0.1)
        assert code == 0, (url, out, err)
    # 0.0.0.0 reaches this machine too, but is not the loopback: the token is not sent.
    code, out, err = warrenctl(srv, "http://0.0.0.0:%d" % port, "list_vhosts")
    assert code == 77, (out, err)
    assert "not a loopback address" in err and "--user" in err
    code, out, err = warrenctl(srv, "http://0.0.0.0:%d" % port, "--user", "guest", "--password", "guest",
                               "list_vhosts")
    assert code == 0, (out, err)
