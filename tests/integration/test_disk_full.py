"""Low disk: with the data directory on a small tmpfs, publishing persistent messages with
confirms fills it until the disk alarm blocks the publisher (connection.blocked); nothing that
was confirmed is lost, the server keeps serving consumers, and it restarts cleanly. Without the
alarm the disk fills up under the store: the publish that cannot be written is nacked, the
store alarm is raised, a stop exits 1, and once the tmpfs is grown the store resumes in place.
Needs root to mount the tmpfs (CI runs as root)."""
import json
import os
import subprocess
import time

import pika
import pytest

import wutil
from test_store_safety import get

pytestmark = [pytest.mark.needs_own_server, pytest.mark.timeout(120)]

TMPFS_SIZE = "256m"
FREE_LIMIT = "96MiB"  # above the store's 64 MiB memtables, so a flush cannot hit ENOSPC first
BODY = b"d" * 65536


@pytest.fixture
def small_disk(tmp_path):
    yield from tmpfs(tmp_path, TMPFS_SIZE)


@pytest.fixture
def tiny_disk(tmp_path):
    yield from tmpfs(tmp_path, "40m")  # full before a memtable flush


def tmpfs(tmp_path, size):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", str(mnt)],
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
    confirmed = 0
    deadline = time.monotonic() + 60
    # pika gives up on a connection blocked for longer than blocked_connection_timeout; a
    # publish the store could not make durable would be nacked instead. Never confirmed.
    with pytest.raises((pika.exceptions.ConnectionBlockedTimeout, pika.exceptions.NackError)):
        while time.monotonic() < deadline:
            ch.basic_publish("", "fill", BODY, pika.BasicProperties(delivery_mode=2))
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
    assert got == BODY
    ch.basic_ack(method.delivery_tag)
    conn.close()

    srv.restart()
    conn = wutil.connect(srv)
    assert conn.channel().queue_declare("fill", durable=True, passive=True).method.message_count >= confirmed - 1
    conn.close()


def fill_until_nacked(srv):
    """Confirmed persistent publishes until the store's write fails: -> the number confirmed. The
    disk alarm is off (limit 1 byte), so the WAL's ENOSPC is what stops them."""
    conn = wutil.connect(srv)
    ch = conn.channel()
    ch.queue_declare("fill", durable=True)
    ch.confirm_delivery()
    confirmed = 0
    with pytest.raises(pika.exceptions.NackError):
        for _ in range(10000):
            ch.basic_publish("", "fill", BODY, pika.BasicProperties(delivery_mode=2))
            confirmed += 1
    wutil.close_quietly(conn)
    assert confirmed > 10 and srv.is_running()
    assert "No space left on device" in json.loads(get(srv, "api/nodes")[1])[0]["store_error"]
    status, text = get(srv, "api/health/checks/alarms")
    assert status == 503 and '"resource":"store"' in text, text
    return confirmed


def grow(disk):
    r = subprocess.run(["mount", "-o", "remount,size=1500m", str(disk)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def assert_kept(srv, confirmed):
    conn = wutil.connect(srv)
    assert conn.channel().queue_declare("fill", durable=True, passive=True).method.message_count >= confirmed
    conn.close()


def test_disk_full_under_the_store_nacks_raises_the_store_alarm_and_exits_1(server_factory, tiny_disk):
    # Before RocksDB's info log became Warren's (storage/info_log.h), the first line it logged
    # after the WAL's ENOSPC aborted the process on an assertion in Debian's RocksDB 7.8.
    srv = server_factory(data_dir=str(tiny_disk / "data"), extra_args=["--disk-free-limit", "1"])
    confirmed = fill_until_nacked(srv)
    assert srv.stop() == 1
    assert "stopped with the store failing" in srv.log_text()
    grow(tiny_disk)
    srv.start()
    assert_kept(srv, confirmed)


def test_disk_full_under_the_store_heals_in_place_once_there_is_room(server_factory, tiny_disk):
    srv = server_factory(data_dir=str(tiny_disk / "data"), extra_args=["--disk-free-limit", "1"])
    confirmed = fill_until_nacked(srv)
    grow(tiny_disk)
    conn = wutil.connect(srv)
    ch = conn.channel()
    ch.confirm_delivery()
    deadline = time.monotonic() + 30
    while True:  # the store's writer resumes RocksDB before its next write once there is room
        try:
            ch.basic_publish("", "fill", BODY, pika.BasicProperties(delivery_mode=2))
            break
        except pika.exceptions.NackError:
            assert time.monotonic() < deadline, "the store did not resume"
            time.sleep(0.2)
    for _ in range(20):
        ch.basic_publish("", "fill", BODY, pika.BasicProperties(delivery_mode=2))
    confirmed += 21
    conn.close()
    assert get(srv, "api/health/checks/alarms") == (200, '{"status":"ok"}')
    assert srv.stop() == 0
    srv.start()
    assert_kept(srv, confirmed)
