"""Low disk: with the data directory on a small tmpfs, publishing persistent messages with
confirms fills it until the disk alarm blocks the publisher (connection.blocked); nothing that
was confirmed is lost, the server keeps serving consumers, and it restarts cleanly. Needs root
to mount the tmpfs (CI runs as root)."""
import os
import subprocess
import time

import pika
import pytest

import wutil

pytestmark = [pytest.mark.needs_own_server, pytest.mark.timeout(120)]

TMPFS_SIZE = "256m"
FREE_LIMIT = "96MiB"  # above the store's 64 MiB memtables, so a flush cannot hit ENOSPC first


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + TMPFS_SIZE, "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: " + r.stderr.strip())
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_low_disk_blocks_publishers_and_loses_nothing_confirmed(server_factory, small_disk):
    srv = server_factory(data_dir=str(small_disk / "data"), extra_args=["--disk-free-limit", FREE_LIMIT])
    params = wutil.params(srv, blocked_connection_timeout=3)
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.queue_declare("fill", durable=True)
    ch.confirm_delivery()
    body = b"d" * 65536
    confirmed = 0
    deadline = time.monotonic() + 60
    # pika gives up on a connection blocked for longer than blocked_connection_timeout; a
    # publish the store could not make durable would be nacked instead. Never confirmed.
    with pytest.raises((pika.exceptions.ConnectionBlockedTimeout, pika.exceptions.NackError)):
        while time.monotonic() < deadline:
            ch.basic_publish("", "fill", body, pika.BasicProperties(delivery_mode=2))
            confirmed += 1
    wutil.close_quietly(conn)
    assert confirmed > 10
    assert "disk alarm" in srv.log_text()
    assert "blocked: resource alarm" in srv.log_text() or "store write failed" in srv.log_text()

    # Consumers keep working during the alarm, and every confirmed message is there.
    conn = wutil.connect(srv)
    ch = conn.channel()
    count = ch.queue_declare("fill", durable=True, passive=True).method.message_count
    assert count >= confirmed
    method, _props, got = ch.basic_get("fill", auto_ack=False)
    assert got == body
    ch.basic_ack(method.delivery_tag)
    conn.close()

    srv.restart()
    conn = wutil.connect(srv)
    assert conn.channel().queue_declare("fill", durable=True, passive=True).method.message_count >= confirmed - 1
    conn.close()
