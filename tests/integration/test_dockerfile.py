"""deploy/Dockerfile, checked statically: there is no Docker engine on the test machines (and
hadolint is not packaged by Debian), so these are the invariants a reviewer would look for."""
import os
import re
import subprocess

import pytest

from conftest import REPO, SERVER_BIN

DOCKERFILE = os.path.join(REPO, "deploy", "Dockerfile")


def instructions():
    """[(stage index, INSTRUCTION, arguments)], continuation lines joined, comments dropped."""
    with open(DOCKERFILE) as f:
        text = re.sub(r"\\\n", " ", "".join(line for line in f if not line.lstrip().startswith("#")))
    out, stage = [], -1
    for line in text.splitlines():
        if not line.strip():
            continue
        word, _, args = line.strip().partition(" ")
        word = word.upper()
        if word == "FROM":
            stage += 1
        out.append((stage, word, " ".join(args.split())))
    return out


def runtime():
    ins = instructions()
    last = ins[-1][0]
    return [(w, a) for s, w, a in ins if s == last]


def test_every_stage_is_pinned_debian_12():
    froms = [a for _, w, a in instructions() if w == "FROM"]
    assert len(froms) >= 2, "multi-stage: a build stage and a runtime stage"
    for image in froms:
        assert re.match(r"debian:bookworm-slim( AS \w+)?$", image, re.I), image
        assert "latest" not in image


def test_the_runtime_stage_runs_as_warren_with_its_volume_ports_and_health_check():
    stage = runtime()
    words = [w for w, _ in stage]
    users = [a for w, a in stage if w == "USER"]
    assert users and users[-1] not in ("root", "0") and not users[-1].startswith(("root:", "0:")), users
    assert words.index("USER") < words.index("ENTRYPOINT"), "the server must not start as root"
    assert ("VOLUME", "/var/lib/warren") in stage
    exposed = {p for w, a in stage if w == "EXPOSE" for p in a.split()}
    assert {"5672", "5671", "15672"} <= exposed, exposed
    health = [a for w, a in stage if w == "HEALTHCHECK"]
    assert len(health) == 1 and "await_startup" in health[0] and "warrenctl" in health[0], health
    assert ("ENV", "WARREN_DATA_DIR=/var/lib/warren") in stage
    assert ("ENTRYPOINT", '["/usr/sbin/warren-server"]') in stage


def test_the_runtime_stage_installs_the_package_and_no_build_tools():
    runs = " ".join(a for w, a in runtime() if w == "RUN")
    assert "/tmp/packages/warren_" in runs and "--no-install-recommends" in runs
    assert not re.search(r"\S+-dev\b|build-essential|cmake", runs), runs
    assert "rm -rf /var/lib/apt/lists/*" in runs


def test_the_default_user_variables_it_documents_are_the_servers():
    with open(DOCKERFILE) as f:
        named = set(re.findall(r"\bWARREN_[A-Z_]+\b", f.read()))
    assert {"WARREN_DEFAULT_USER", "WARREN_DEFAULT_PASS", "WARREN_DATA_DIR"} <= named
    if not os.path.exists(SERVER_BIN):
        pytest.skip("no server binary to ask for its --help")
    help_text = subprocess.run([SERVER_BIN, "--help"], capture_output=True, text=True, timeout=30).stdout
    for var in named:
        assert "env %s]" % var in help_text, var


def test_the_build_context_leaves_out_builds_and_data():
    with open(os.path.join(REPO, ".dockerignore")) as f:
        ignored = {line.strip() for line in f if line.strip() and not line.startswith("#")}
    assert {".git", "build", "build-*", "data"} <= ignored, ignored
