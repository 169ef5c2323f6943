"""Online backup (`warrenctl backup DIR`, POST /api/backup): a checkpoint of the store taken while
publishers run, restored by starting a second server on the copy; its manifest; its refusals."""
import hashlib
import json
import os
import subprocess
import threading
import time

import pika
import pytest

import wutil
from conftest import SERVER_BIN
from test_warrenctl import WARRENCTL, ctl

WARREN_DUMP = os.path.join(os.path.dirname(SERVER_BIN), "warren-dump")

pytestmark = pytest.mark.needs_own_server


class Publishers:
    """Threads publishing persistent messages with confirms, each remembering what was confirmed."""

    def __init__(self, srv, queue, n=3):
        self.srv, self.queue = srv, queue
        self.lock = threading.Lock()
        self.confirmed = set()
        self.stop = threading.Event()
        self.errors = []
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(n)]
        for t in self.threads:
            t.start()

    def _run(self, index):
        try:
            conn = wutil.connect(self.srv)
            ch = conn.channel()
            ch.confirm_delivery()
            n = 0
            while not self.stop.is_set():
                body = b"p%d-%d" % (index, n)
                # Returns once the broker confirmed it (raises on a nack).
                ch.basic_publish("", self.queue, body, pika.BasicProperties(delivery_mode=2))
                with self.lock:
                    self.confirmed.add(body)
                n += 1
            wutil.close_quietly(conn)
        except Exception as e:  # reported by finish()
            self.errors.append(repr(e))

    def snapshot(self):
        with self.lock:
            return set(self.confirmed)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
        assert not self.errors, self.errors
        return self.snapshot()


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@pytest.mark.timeout(120)
def test_backup_under_load_restores_every_confirmed_message(server_factory, tmp_path, uniq):
    srv = server_factory()
    queue = uniq("q")
    conn = wutil.connect(srv)
    conn.channel().queue_declare(queue, durable=True)
    wutil.close_quietly(conn)

    pubs = Publishers(srv, queue)
    wutil.wait_until(lambda: len(pubs.snapshot()) >= 2000, timeout=30, what="2000 confirms")
    before = pubs.snapshot()  # confirmed before the backup call starts
    backup = str(tmp_path / "backup")
    out = ctl(srv, "backup", backup)
    after_call = pubs.snapshot()
    time.sleep(0.3)  # the publishers go on after the backup
    total = pubs.finish()
    assert "Backup written" in out and backup in out
    assert len(total) > len(after_call) > len(before)

    # The manifest lists exactly the copy's files, with their sizes and checksums.
    manifest = json.load(open(os.path.join(backup, "warren-backup.json")))
    listed = {f["path"]: f for f in manifest["files"]}
    on_disk = {"store/" + name for name in os.listdir(os.path.join(backup, "store"))}
    assert set(listed) == on_disk
    for path, f in listed.items():
        full = os.path.join(backup, path)
        assert os.path.getsize(full) == f["size"], path
        assert sha256(full) == f["sha256"], path
    assert "store/CURRENT" in listed and any(p.endswith(".log") for p in listed)
    assert manifest["format_version"] >= 1 and manifest["last_sequence_number"] > 0
    assert manifest["warren_version"] and manifest["created_at"].endswith("Z")
    assert manifest["total_size"] == sum(f["size"] for f in manifest["files"])
    assert manifest["source"] == os.path.join(srv.data_dir, "store")

    # warren-dump reads the copy like any data dir.
    r = subprocess.run([WARREN_DUMP, "--data-dir", backup, "verify"], capture_output=True, timeout=60)
    assert r.returncode == 0, (r.stdout, r.stderr)

    # Restore: a second server on the copy, with its own ports, beside the first one.
    restored = server_factory(data_dir=backup)
    got = wutil.get_all(restored, queue)
    assert len(got) == len(set(got)), "a message came back twice"
    assert before <= set(got), "%d confirmed messages missing" % len(before - set(got))
    assert set(got) <= total  # each publish returned only once confirmed
    # The original goes on with every message it confirmed.
    assert len(wutil.get_all(srv, queue)) == len(total)


def test_backup_refuses_an_existing_non_empty_directory(own_server, tmp_path):
    target = tmp_path / "full"
    target.mkdir()
    (target / "keep").write_text("mine")
    code, out, err = ctl(own_server, "backup", str(target), expect=None)
    assert code == 65, (out, err)
    assert "exists and is not empty" in err
    assert os.listdir(target) == ["keep"]


def test_backup_needs_an_administrator(own_server, tmp_path, uniq):
    user = uniq("u").replace(".", "-")
    ctl(own_server, "add_user", user, "pw")
    ctl(own_server, "set_user_tags", user, "management")
    target = tmp_path / "backup"
    code, out, err = ctl(own_server, "--user", user, "--password", "pw", "backup", str(target), expect=None)
    assert code == 77, (out, err)
    assert "Not administrator user" in err
    assert not target.exists()
    # An administrator over HTTP (basic auth, not the token) may.
    ctl(own_server, "--user", "guest", "--password", "guest", "backup", str(target))
    assert (target / "warren-backup.json").exists()


def test_backup_of_a_relative_dir_is_relative_to_warrenctl(own_server, tmp_path):
    r = subprocess.run([WARRENCTL, "backup", "rel"], cwd=tmp_path, capture_output=True, timeout=30,
                       env=dict(os.environ, WARREN_URL="http://127.0.0.1:%d" % own_server.management_port,
                                WARREN_DATA_DIR=own_server.data_dir))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "rel" / "store" / "CURRENT").exists()
