"""A minimal Debian 12 root for the tests that install the package on a fresh machine
(test_systemd.py, test_dockerfile.py): made once per build directory with debootstrap and reused;
each test runs an ephemeral copy of it (systemd-nspawn --ephemeral), so the cached root stays clean.
"""
import glob
import os
import shutil
import subprocess

import pytest

from conftest import SERVER_BIN

BUILD_DIR = os.path.dirname(os.path.dirname(SERVER_BIN))
DEB_GLOB = os.path.join(BUILD_DIR, "packages", "warren_*.deb")
ROOT = os.path.join(BUILD_DIR, "debian12-root")
SOURCES = """Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

def _unavailable():
    if os.geteuid() != 0:
        return "systemd-nspawn needs root"
    if not glob.glob(DEB_GLOB):
        return "no .deb at %s (scripts/package.sh or scripts/test.sh builds it)" % DEB_GLOB
    return None


UNAVAILABLE = _unavailable()
# Marks for a test that needs the root and the .deb.
MARKS = [pytest.mark.needs_own_server, pytest.mark.skipif(UNAVAILABLE is not None, reason=UNAVAILABLE or "")]


def run(*cmd, check=True, timeout=600):
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError("%s exited %d:\n%s\n%s" % (" ".join(cmd), result.returncode, result.stdout,
                                                        result.stderr))
    return result


def deb():
    return sorted(glob.glob(DEB_GLOB))[-1]


def debian_root():
    """The root: bookworm minbase with systemd, its apt sources as a new machine has them."""
    done = os.path.join(ROOT, ".warren-root-complete")
    if not os.path.exists(done):
        shutil.rmtree(ROOT, ignore_errors=True)
        run("debootstrap", "--variant=minbase", "--include=systemd,systemd-sysv,dbus,procps,ca-certificates",
            "bookworm", ROOT, "http://deb.debian.org/debian", timeout=1200)
        with open(os.path.join(ROOT, "etc/apt/sources.list.d/debian.sources"), "w") as f:
            f.write(SOURCES)
        os.remove(os.path.join(ROOT, "etc/apt/sources.list"))
        open(done, "w").close()
    return ROOT
