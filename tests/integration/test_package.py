"""The Debian package (deploy/CMakeLists.txt, deploy/debian/): its files and control data, lintian,
and a real life cycle on this machine — install, run the installed server as the warren user,
upgrade over itself, remove, purge — that always ends purged.

It tests the .deb that scripts/test.sh (or scripts/package.sh) built ($WARREN_DEB, by default
BUILD_DIR/packages/warren_*.deb beside $WARREN_SERVER) and builds nothing itself. Installing needs
root (the CI machine's user); installs from concurrent runs on one machine are serialised by a lock.
"""
import contextlib
import fcntl
import glob
import grp
import io
import os
import pwd
import re
import shutil
import stat
import subprocess
import tarfile
import time

import pika
import pytest

import wutil
from conftest import EXTERNAL, REPO, SERVER_BIN, WarrenServer

pytestmark = pytest.mark.package

DEB_GLOB = os.path.join(os.path.dirname(os.path.dirname(SERVER_BIN)), "packages", "warren_*.deb")
DEBS = [os.environ["WARREN_DEB"]] if os.environ.get("WARREN_DEB") else sorted(glob.glob(DEB_GLOB))
DEB = DEBS[-1] if DEBS else None
if DEB is None or EXTERNAL:
    pytestmark = [pytestmark, pytest.mark.skip(
        reason="no .deb at %s (scripts/package.sh or scripts/test.sh builds it)" % DEB_GLOB)]

STATE = "/var/lib/warren"
CONF = "/etc/warren/warren.conf"
LOCK = "/run/lock/warren-package-test.lock"
WANTS = "/etc/systemd/system/multi-user.target.wants/warren.service"


def project_version():
    with open(os.path.join(REPO, "CMakeLists.txt")) as f:
        return re.search(r"project\(warren VERSION ([0-9.]+)", f.read()).group(1)


def run(*cmd, check=True):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (" ".join(cmd), r.returncode, r.stdout, r.stderr))
    return r


def control():
    fields = {}
    for line in run("dpkg-deb", "-f", DEB).stdout.splitlines():
        if not line.startswith(" ") and ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def installed():
    r = run("dpkg-query", "-W", "-f=${Status}", "warren", check=False)
    return r.returncode == 0 and "installed" in r.stdout and "not-installed" not in r.stdout


def dpkg(*args):
    # An apt-get elsewhere on the machine may hold dpkg's lock for a while: wait, do not fail.
    deadline = time.monotonic() + 300
    while True:
        r = run("dpkg", *args, check=False)
        if r.returncode == 0 or "lock" not in r.stderr or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert r.returncode == 0, "dpkg %s exited %d:\n%s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr)
    return r


def purge():
    if run("dpkg-query", "-W", "warren", check=False).returncode == 0:
        dpkg("--purge", "warren")


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def tar_text(tar, name):
    return tar.extractfile(name).read().decode()


def test_the_package_holds_the_binaries_unit_config_man_pages_and_docs():
    names = {line.split()[-1].lstrip(".") for line in run("dpkg-deb", "-c", DEB).stdout.splitlines()}
    for path in ("/usr/sbin/warren-server", "/usr/bin/warrenctl", "/usr/bin/warren-dump",
                 "/lib/systemd/system/warren.service", CONF,
                 "/usr/share/man/man8/warren-server.8.gz", "/usr/share/man/man1/warrenctl.1.gz",
                 "/usr/share/man/man1/warren-dump.1.gz",
                 "/usr/share/doc/warren/copyright", "/usr/share/doc/warren/changelog.gz"):
        assert path in names, "%s missing from %s" % (path, DEB)
    assert not any(n.startswith(STATE) for n in names), "the state directory is made by postinst"

    with tarfile.open(fileobj=io.BytesIO(subprocess.run(["dpkg-deb", "--fsys-tarfile", DEB],
                                                        capture_output=True, check=True).stdout)) as tar:
        unit = tar_text(tar, "./lib/systemd/system/warren.service")
        conf = tar_text(tar, "." + CONF)
        server = tar.getmember("./usr/sbin/warren-server")
    assert re.search(r"^ExecStart=/usr/sbin/warren-server\b", unit, re.M), unit
    assert re.search(r"^User=warren$", unit, re.M), unit
    # The service's data directory is the one postinst makes: the unit's environment or command
    # line says so, or else the packaged configuration must.
    assert (re.search(r"^Environment=\"?WARREN_DATA_DIR=/var/lib/warren\b", unit, re.M)
            or re.search(r"^ExecStart=.* --data-dir[ =]/var/lib/warren\b", unit, re.M)
            or re.search(r"^warren\.data_dir\s*=\s*/var/lib/warren\s*$", conf, re.M)), unit
    assert server.mode & 0o777 == 0o755 and server.uid == 0


def test_the_control_data_names_version_depends_and_the_conffile():
    f = control()
    assert f["Package"] == "warren"
    assert f["Version"] == project_version()
    assert f["Section"] == "net" and f["Priority"] == "optional"
    assert re.match(r".+ <[^@>]+@[^>]+>$", f["Maintainer"]), f["Maintainer"]
    assert f["Description"]
    depends = {d.split()[0] for d in f["Depends"].split(", ")}
    for lib in ("adduser", "libc6", "libstdc++6", "librocksdb7.8", "libprotobuf32", "libre2-9"):
        assert lib in depends, f["Depends"]
    assert run("dpkg-deb", "-I", DEB, "conffiles").stdout.split() == [CONF]
    for script in ("postinst", "prerm", "postrm"):
        assert run("dpkg-deb", "-I", DEB, script).stdout.startswith("#!/bin/sh\n")


@pytest.mark.timeout(600)
def test_lintian_finds_no_errors():
    if not shutil.which("lintian"):
        pytest.skip("no lintian (scripts/install-test-deps.sh installs it)")
    r = run("lintian", "--fail-on", "error", "--tag-display-limit", "0", DEB, check=False)
    tags = r.stdout.splitlines()
    errors = [t for t in tags if t.startswith("E:")]
    assert r.returncode == 0 and not errors, r.stdout + r.stderr
    # Warnings are allowed; the run's output shows them (pytest -rA, or a failure elsewhere).
    print("lintian:\n" + "\n".join(tags))


@contextlib.contextmanager
def exclusive_machine():
    if os.geteuid() != 0:
        pytest.skip("installing a package needs root")
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        purge()  # a run killed before its finally
        try:
            yield
        finally:
            purge()


def installed_server(tmp_path):
    """The installed binary, as the warren user, on the packaged config, its state in STATE."""
    srv = WarrenServer("/usr/sbin/warren-server", data_dir=STATE, prometheus_port=0,
                       wrapper=["setpriv", "--reuid=warren", "--regid=warren", "--init-groups", "--"],
                       extra_args=["--config", CONF])
    srv.log_path = str(tmp_path / "installed-server.log")
    return srv


def publish(srv, queue, bodies):
    conn = wutil.connect(srv)
    try:
        ch = conn.channel()
        ch.confirm_delivery()
        ch.queue_declare(queue, durable=True)
        for body in bodies:
            ch.basic_publish("", queue, body, pika.BasicProperties(delivery_mode=2), mandatory=True)
    finally:
        wutil.close_quietly(conn)


def take(srv, queue):
    conn = wutil.connect(srv)
    try:
        return wutil.get_one(conn.channel(), queue, auto_ack=True)[2]
    finally:
        wutil.close_quietly(conn)


def as_warren(*cmd):
    return run("setpriv", "--reuid=warren", "--regid=warren", "--init-groups", "--", *cmd)


@pytest.mark.timeout(900)
def test_install_run_upgrade_remove_and_purge(tmp_path):
    with exclusive_machine():
        dpkg("-i", DEB)
        user = pwd.getpwnam("warren")
        assert user.pw_uid < 1000 and user.pw_dir == STATE, user
        assert grp.getgrgid(user.pw_gid).gr_name == "warren"
        st = os.stat(STATE)
        assert stat.S_IMODE(st.st_mode) == 0o700 and st.st_uid == user.pw_uid, oct(st.st_mode)
        assert os.path.isfile(CONF)
        if shutil.which("deb-systemd-helper"):
            assert os.path.lexists(WANTS), "a first install enables the unit"

        srv = installed_server(tmp_path)
        try:
            srv.start()
            as_warren("/usr/bin/warrenctl", "--data-dir", STATE, "--url",
                      "http://127.0.0.1:%d" % srv.management_port, "await_startup", "--timeout", "10")
            publish(srv, "pkg", [b"one", b"two"])
            assert take(srv, "pkg") == b"one"
            assert srv.stop() == 0
            dump = as_warren("/usr/bin/warren-dump", "--data-dir", STATE, "queues").stdout
            assert "pkg" in dump, dump

            # Upgrade over itself: the data and an administrator's edit of the conffile stay.
            with open(CONF, "a") as f:
                f.write("# edited by test_package\n")
            dpkg("-i", DEB)
            with open(CONF) as f:
                assert f.read().endswith("# edited by test_package\n")
            srv.start()
            assert take(srv, "pkg") == b"two"
            assert srv.stop() == 0
        finally:
            srv.cleanup()

        dpkg("-r", "warren")
        assert not os.path.exists("/usr/sbin/warren-server")
        assert user_exists("warren") and os.path.isdir(os.path.join(STATE, "store"))
        assert os.path.isfile(CONF), "remove keeps conffiles"

        dpkg("-P", "warren")
        assert not installed()
        assert not os.path.exists(STATE) and not os.path.exists("/etc/warren")
        assert not user_exists("warren")
        with pytest.raises(KeyError):
            grp.getgrnam("warren")
        assert not os.path.lexists(WANTS)
