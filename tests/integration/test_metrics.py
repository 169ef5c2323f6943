"""Prometheus text exposition at GET /metrics on --prometheus-port (no authentication)."""
import re
import urllib.request

import pytest

import wutil

pytestmark = pytest.mark.needs_own_server

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$')


def scrape(srv):
    url = "http://%s:%d/metrics" % (srv.host, srv.prometheus_port)
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    samples = {}
    types = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in types, "metric family %s exposed twice" % name
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "malformed line: %r" % line
        key = m.group(1) + (m.group(2) or "")
        assert key not in samples, "sample %s exposed twice" % key
        samples[key] = float(m.group(3))
    return samples, types


def test_metrics(server_factory, uniq):
    srv = server_factory()
    samples, types = scrape(srv)
    for name, kind in [("warren_connections", "gauge"), ("warren_channels", "gauge"), ("warren_consumers", "gauge"),
                       ("warren_published_total", "counter"), ("warren_delivered_total", "counter"),
                       ("warren_acked_total", "counter"), ("warren_store_fsync_seconds", "histogram"),
                       ("warren_store_write_seconds", "histogram"),
                       ("warren_process_resident_memory_bytes", "gauge"),
                       ("warren_queue_messages_ready", "gauge"), ("warren_queue_messages_unacked", "gauge")]:
        assert types.get(name) == kind, name
    assert samples["warren_process_resident_memory_bytes"] > 1_000_000
    assert samples['warren_store_fsync_seconds_bucket{le="+Inf"}'] == samples["warren_store_fsync_seconds_count"]
    published0 = samples["warren_published_total"]

    q = uniq("metrics-q")
    conn = wutil.connect(srv)
    try:
        ch = conn.channel()
        ch.queue_declare(q, durable=True)
        ch.confirm_delivery()
        for i in range(5):
            ch.basic_publish("", q, b"m%d" % i)
        labels = '{vhost="/",queue="%s"}' % q
        samples, _ = scrape(srv)
        assert samples["warren_published_total"] - published0 == 5
        assert samples["warren_queue_messages_ready" + labels] == 5
        assert samples["warren_connections"] == 1
        assert samples["warren_channels"] == 1
        assert samples["warren_store_fsync_seconds_count"] >= 1
        assert samples["warren_store_write_seconds_count"] >= samples["warren_store_fsync_seconds_count"]
        assert samples['warren_store_write_seconds_bucket{le="+Inf"}'] == samples["warren_store_write_seconds_count"]
        assert samples["warren_store_write_seconds_sum"] > 0

        # Two deliveries unacked with a consumer, then acked.
        ch.basic_qos(prefetch_count=2)
        got = []
        ch.basic_consume(q, lambda c, m, p, b: got.append(m.delivery_tag))
        wutil.wait_until(lambda: len(got) == 2, conn=conn, what="two deliveries")
        samples, _ = scrape(srv)
        assert samples["warren_consumers"] == 1
        assert samples["warren_queue_messages_unacked" + labels] == 2
        assert samples["warren_queue_messages_ready" + labels] == 3
        assert samples["warren_delivered_total"] >= 2
        ch.basic_ack(got[-1], multiple=True)
        wutil.wait_until(lambda: len(got) == 4, conn=conn, what="two more deliveries")
        samples, _ = scrape(srv)
        assert samples["warren_acked_total"] >= 2
        assert samples["warren_delivered_total"] >= 4
    finally:
        wutil.close_quietly(conn)
    samples, _ = scrape(srv)
    assert samples["warren_connections"] == 0


def test_prometheus_port_zero_disables(server_factory):
    srv = server_factory(prometheus_port=0)
    assert "Prometheus metrics on" not in srv.log_text()
    wutil.assert_healthy(srv)


def test_management_api_publishes_count(server_factory, uniq):
    import base64
    import json
    srv = server_factory()
    q = uniq("metrics-api-q")
    conn = wutil.connect(srv)
    try:
        conn.channel().queue_declare(q)
    finally:
        wutil.close_quietly(conn)
    before, _ = scrape(srv)
    url = "http://%s:%d/api/exchanges/%%2F/amq.default/publish" % (srv.host, srv.management_port)
    body = json.dumps({"properties": {}, "routing_key": q, "payload": "x", "payload_encoding": "string"}).encode()
    req = urllib.request.Request(url, data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", "Basic " + base64.b64encode(b"guest:guest").decode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read()) == {"routed": True}
    after, _ = scrape(srv)
    assert after["warren_published_total"] - before["warren_published_total"] == 1
    assert after['warren_queue_messages_ready{vhost="/",queue="%s"}' % q] == 1
