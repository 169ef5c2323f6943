"""What an idle connection costs (issue 11): it holds no read buffer (plain TCP connections read
into one buffer of the broker thread, keeping only the start of a frame that has not arrived
whole) and gives back the output capacity of a burst once its output has drained."""
import time
import urllib.request

import pytest

import wutil

KiB = 1024
READ_ARENA = 512 * KiB  # net::Server::kReadArenaBytes, counted as connection_buffers


def connection_buffers(srv):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % srv.prometheus_port, timeout=10) as resp:
        for line in resp.read().decode().splitlines():
            if line.startswith('warren_memory_used_bytes{use="connection_buffers"}'):
                return int(float(line.split(" ")[1]))
    raise AssertionError("no connection_buffers gauge")


@pytest.mark.measures_rss
@pytest.mark.needs_own_server
def test_an_idle_connection_costs_at_most_16_kib(server_factory):
    # Many connections, so that malloc's and the kernel's granularity (and other threads' noise)
    # are small against the total; it was about 130 KiB each with a 128 KiB read buffer.
    n = 1000
    srv = server_factory()
    pid = srv.proc.pid
    warm = wutil.connect(srv)  # the first connection touches the read arena's pages
    warm.channel().queue_declare("", exclusive=True)
    time.sleep(0.5)
    before = wutil.rss_kib(pid)
    conns = []
    try:
        for _ in range(n):
            conns.append(wutil.connect(srv))
        time.sleep(1)
        with_connections = wutil.rss_kib(pid)
        for c in conns:
            c.channel()
        time.sleep(1)
        with_channels = wutil.rss_kib(pid)
    finally:
        for c in conns:
            wutil.close_quietly(c)
        wutil.close_quietly(warm)
    per_connection = (with_connections - before) / n
    per_channel = (with_channels - with_connections) / n
    print("RSS %d -> %d KiB with %d connections (%.1f KiB each), %d KiB with a channel on each (%.1f KiB more)"
          % (before, with_connections, n, per_connection, with_channels, per_channel))
    assert per_connection <= 16, "%.1f KiB per idle connection" % per_connection
    assert per_connection + per_channel <= 16, "%.1f KiB per idle connection with a channel" % (
        per_connection + per_channel)
    wutil.assert_healthy(srv)


@pytest.mark.needs_own_server
def test_connections_give_their_buffers_back_after_a_burst(server_factory, uniq):
    """Bodies larger than a frame (received in parts, delivered by reference) and bursts of small
    messages: once the connections are idle, only the read arena is accounted."""
    srv = server_factory()
    assert connection_buffers(srv) == READ_ARENA
    queue = uniq("burst")
    conns = [wutil.connect(srv) for _ in range(4)]
    try:
        ch = conns[0].channel()
        ch.queue_declare(queue)
        large = bytes(range(256)) * (4 * KiB)  # 1 MiB, eight 128 KiB frames
        for i, c in enumerate(conns):
            pub = c.channel()
            pub.confirm_delivery()
            pub.basic_publish("", queue, large)
            for j in range(2000):
                pub.basic_publish("", queue, b"m%d-%d" % (i, j))
        got = wutil.collect(conns[0], ch, queue, 4 * 2001, timeout=30)
        assert sum(1 for _, _, body in got if body == large) == 4
        wutil.wait_until(lambda: connection_buffers(srv) == READ_ARENA, timeout=10,
                         what="connection buffers back to the read arena")
    finally:
        for c in conns:
            wutil.close_quietly(c)
    wutil.assert_healthy(srv)
