"""warren-perf (tools/perf): the load generator run against the real broker in the configurations
the benchmarks use (autoack, durable with confirms and manual acks, fanout, a fixed message count,
a missing predeclared queue, amqps), checking its single JSON line and exit code, and that a broker
that goes silent cannot hold a run past its time."""
import json
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import SERVER_BIN, SLOWDOWN
from test_tls import _tls_server, certs  # noqa: F401 (certs is a fixture)

WARREN_PERF = os.path.join(os.path.dirname(SERVER_BIN), "warren-perf")
LATENCY_KEYS = {"p50", "p99", "p999", "max"}


def perf(srv, *args, expect=0, scheme="amqp", port=None):
    uri = "%s://%s:%s@127.0.0.1:%d/%%2F" % (scheme, srv.user, srv.password, port or srv.port)
    r = subprocess.run([WARREN_PERF, "--uri", uri, "--quiet", *args], capture_output=True, timeout=30)
    out, err = r.stdout.decode(), r.stderr.decode()
    assert r.returncode == expect, "warren-perf %s: exit %d, stdout=%r stderr=%r" % (args, r.returncode, out, err)
    lines = out.splitlines()
    assert len(lines) == 1, out
    result = json.loads(lines[0])
    assert result["tool"] == "warren-perf"
    assert set(result["latency_us"]) == LATENCY_KEYS and set(result["confirm_latency_us"]) == LATENCY_KEYS
    assert result["errors"] == len(result["error_msgs"])  # under the cap of 100 messages
    if expect == 0:
        assert result["errors"] == 0, result["error_msgs"]
    return result


def test_autoack_one_to_one(server, uniq):
    r = perf(server, "-x", "1", "-y", "1", "-a", "-z", "2", "-u", uniq("q"), "--delete", "--label", "autoack")
    assert r["label"] == "autoack"
    assert r["seconds"] >= 2
    assert r["published"] > 0 and r["consumed"] > 0 and r["publish_rate"] > 0 and r["consume_rate"] > 0
    assert r["latency_us"]["p50"] > 0 and r["latency_us"]["max"] >= r["latency_us"]["p99"]
    assert r["confirmed"] == 0 and r["client_cpu_pct"] > 0


def test_durable_persistent_confirms_manual_ack(server, uniq):
    r = perf(server, "-x", "1", "-y", "1", "--durable", "--persistent", "-c", "50", "-q", "100",
             "-z", "2", "-u", uniq("q"), "--delete")
    assert r["confirmed"] > 0 and r["confirmed"] <= r["published"] and r["nacked"] == 0
    assert r["confirm_latency_us"]["p50"] > 0 and r["confirm_rate"] > 0
    assert r["consumed"] > 0


def test_fanout_to_three_queues(server, uniq):
    r = perf(server, "-x", "1", "-y", "3", "-e", uniq("x"), "-t", "fanout", "--queues", "3", "-u", uniq("q"),
             "-a", "-C", "2000", "-z", "20", "--delete")
    assert r["published"] == 2000
    assert r["consumed"] == 3 * 2000


def test_message_count_is_exact(server, uniq):
    r = perf(server, "-x", "2", "-y", "2", "-C", "500", "-c", "20", "-q", "50", "-A", "5", "-z", "20",
             "-u", uniq("q"), "--delete", "--broker-pid", str(os.getpid()), "--threads", "2")
    assert (r["published"], r["confirmed"], r["consumed"]) == (1000, 1000, 1000)
    assert "broker_cpu_pct" in r


def test_mandatory_publishes_without_a_route_are_returned(server, uniq):
    r = perf(server, "-x", "1", "-y", "0", "-e", "amq.direct", "-k", uniq("nowhere"), "--predeclared",
             "-f", "mandatory", "-C", "300", "-c", "10", "-z", "20")
    assert (r["published"], r["returned"], r["confirmed"]) == (300, 300, 300)


def test_missing_predeclared_queue_is_an_error(server, uniq):
    r = perf(server, "-x", "1", "-y", "1", "--predeclared", "-u", uniq("missing"), "-z", "5", expect=1)
    assert r["errors"] >= 1
    assert "404" in r["error_msgs"][0] and "NOT_FOUND" in r["error_msgs"][0], r["error_msgs"]


def test_connection_refused_and_bad_flags(uniq):
    from conftest import free_port
    r = subprocess.run([WARREN_PERF, "--uri", "amqp://127.0.0.1:%d" % free_port(), "-z", "1"],
                       capture_output=True, timeout=30)
    assert r.returncode == 1
    assert "cannot connect" in json.loads(r.stdout)["error_msgs"][0]
    for bad in (["-s", "4"], ["--uri", "http://x"], ["-t", "nosuch"], ["--queue-args", "novalue"]):
        assert subprocess.run([WARREN_PERF, *bad], capture_output=True, timeout=30).returncode == 2, bad


@pytest.mark.needs_own_server
def test_amqps_with_cacert(server_factory, certs, tmp_path, uniq):  # noqa: F811
    srv = _tls_server(server_factory, certs, tmp_path)
    r = perf(srv, "-x", "1", "-y", "1", "-C", "300", "-c", "10", "-z", "20", "-u", uniq("q"), "--delete",
             "--cacert", certs("ca.pem"), "--cert", certs("client.pem"), "--key", certs("client.key"),
             scheme="amqps", port=srv.ssl_port)
    assert (r["published"], r["confirmed"], r["consumed"]) == (300, 300, 300)
    r = perf(srv, "-x", "1", "-y", "0", "-C", "10", "-c", "10", "-z", "20", "-u", uniq("q"), "--delete",
             "--tls-verify", "none", scheme="amqps", port=srv.ssl_port)
    assert r["confirmed"] == 10
    # A server certificate that the given CA did not sign is refused.
    r = perf(srv, "-x", "1", "-y", "0", "-z", "1", "--cacert", certs("rogue-ca.pem"),
             scheme="amqps", port=srv.ssl_port, expect=1)
    assert "TLS handshake" in r["error_msgs"][0]


def test_a_silent_broker_cannot_hold_a_run():
    # Accepts TCP (the kernel completes the handshake) and never says a word.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    try:
        started = time.monotonic()
        r = subprocess.run([WARREN_PERF, "--uri", "amqp://127.0.0.1:%d" % listener.getsockname()[1],
                            "--quiet", "-z", "1"], capture_output=True, timeout=30)
        assert r.returncode == 1
        assert "no answer" in json.loads(r.stdout)["error_msgs"][0]
        assert time.monotonic() - started < 10 * SLOWDOWN  # -z 1: set-up waits 1 s plus a grace of 2, closing 2
    finally:
        listener.close()


@pytest.mark.needs_own_server
def test_a_broker_stopping_mid_run_cannot_hold_it(own_server, uniq):
    uri = "amqp://guest:guest@127.0.0.1:%d/%%2F" % own_server.port
    proc = subprocess.Popen([WARREN_PERF, "--uri", uri, "--quiet", "-a", "-z", "2", "-u", uniq("q")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1)
        started = time.monotonic()
        own_server.proc.send_signal(signal.SIGSTOP)
        out, _ = proc.communicate(timeout=30)
        assert time.monotonic() - started < 6 * SLOWDOWN  # the rest of -z 2, then 2 s to close
        assert proc.returncode == 0
        assert json.loads(out)["published"] > 0
    finally:
        own_server.proc.send_signal(signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
