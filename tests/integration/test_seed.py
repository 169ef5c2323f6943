"""The seed tutorial (shared/seed): producer.py and consumer.py, unchanged, as users run them."""
import os
import select
import signal
import subprocess
import time

import pytest

import wutil

PYTHON = "/usr/bin/python3"
EXPECTED_LINE = "b'hello world'"


def seed_env(port):
    env = dict(os.environ)
    env["AMQP_PORT"] = str(port)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_producer(seed_dir, port):
    r = subprocess.run([PYTHON, os.path.join(seed_dir, "producer.py")], env=seed_env(port),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, "producer.py failed:\n%s" % r.stderr.decode(errors="replace")


def start_consumer(seed_dir, port):
    return subprocess.Popen([PYTHON, os.path.join(seed_dir, "consumer.py")], env=seed_env(port),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)


def wait_for_line(proc, expected, timeout=15.0, count=1):
    """Read the consumer's stdout until `count` lines equal `expected`."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while True:
        lines = [l.decode(errors="replace").strip() for l in buf.split(b"\n")[:-1]]
        if lines.count(expected) >= count:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], min(left, 0.2))
        if ready:
            chunk = os.read(fd, 4096)
            if not chunk:
                if proc.poll() is not None:
                    break
                continue
            buf += chunk
    err = b""
    if proc.poll() is not None:
        err = proc.stderr.read()
    raise AssertionError("consumer did not print %r %d time(s) within %.0f s; stdout=%r stderr=%r"
                         % (expected, count, timeout, buf, err[-3000:]))


def stop_consumer(proc, sig):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    proc.stdout.close()
    proc.stderr.close()


def run_seed_tutorial(seed_dir, port):
    """The whole user story; also usable by hand against RabbitMQ with user/pass set up."""
    run_producer(seed_dir, port)
    for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGTERM):
        proc = start_consumer(seed_dir, port)
        try:
            wait_for_line(proc, EXPECTED_LINE)
        finally:
            stop_consumer(proc, sig)


@pytest.mark.needs_own_server
@pytest.mark.timeout(120)
def test_seed_tutorial_redelivers_after_consumer_is_killed(server_factory, seed_dir):
    assert os.path.exists(os.path.join(seed_dir, "producer.py")), seed_dir
    srv = server_factory(user="user", password="pass")
    run_seed_tutorial(seed_dir, srv.port)


@pytest.mark.needs_own_server
@pytest.mark.timeout(120)
def test_seed_two_messages_both_printed_and_kept(server_factory, seed_dir):
    srv = server_factory(user="user", password="pass")
    run_producer(seed_dir, srv.port)
    run_producer(seed_dir, srv.port)
    proc = start_consumer(seed_dir, srv.port)
    try:
        wait_for_line(proc, EXPECTED_LINE, count=2)
    finally:
        stop_consumer(proc, signal.SIGKILL)
    conn = wutil.connect(srv)
    try:
        ch = conn.channel()
        wutil.wait_count(ch, "hello", 2)
    finally:
        conn.close()
