"""deploy/Dockerfile. There is no Docker engine on the test machines (and hadolint is not packaged
by Debian), so the invariants a reviewer would look for are checked statically, and the runtime
stage is executed: its instructions are played, as Docker would, in an ephemeral copy of a fresh
Debian 12 root (debian_root.py, systemd-nspawn without booting): the RUN lines as root, the package
from this build in place of the build stage's, then the ENTRYPOINT as the USER with the ENV and the
variables `docker run -e` would pass, and the HEALTHCHECK command until it passes."""
import json
import os
import re
import shlex
import subprocess
import time

import pika
import pytest

import wutil
from conftest import REPO, SERVER_BIN, free_port
from debian_root import MARKS, deb, debian_root

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


def play_runtime_stage(env):
    """The runtime stage as one shell script; refuses an instruction it does not know how to play."""
    lines, user, run_env = ["set -e", "unset NOTIFY_SOCKET  # nspawn's; a container has none"], "root", {}
    for word, args in runtime():
        if word == "FROM":
            assert args == "debian:bookworm-slim", "the root stands for %s" % args
        elif word == "ARG":
            lines.append("export " + args)
        elif word == "RUN":
            lines.append(args)
        elif word == "COPY":
            assert args == "--from=build /src/build/packages/ /tmp/packages/", args
            lines.append("mkdir -p /tmp/packages && cp /mnt/warren/*.deb /tmp/packages/")
        elif word == "ENV":
            key, _, value = args.partition("=")
            run_env[key] = value
        elif word == "USER":
            user = args
        elif word == "WORKDIR":
            lines.append("cd " + shlex.quote(args))
        elif word == "HEALTHCHECK":
            health = json.loads(args.split(" CMD ", 1)[1])
        elif word == "ENTRYPOINT":
            entrypoint = json.loads(args)
        elif word not in ("VOLUME", "EXPOSE", "STOPSIGNAL"):
            raise AssertionError("the test cannot play %s %s" % (word, args))
    run_env.update(env)
    as_user = "setpriv --reuid=%s --regid=%s --init-groups -- env %s " % (
        user, user, " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in run_env.items()))
    lines += [
        "stat -c '%U %a' /var/lib/warren > /mnt/out/volume",
        as_user + " ".join(map(shlex.quote, entrypoint)) + " > /mnt/out/server.log 2>&1 &",
        "server=$!",
        "healthy=0",
        "for i in $(seq 60); do",
        "  if " + as_user + " ".join(map(shlex.quote, health)) + "; then healthy=1; break; fi",
        "  sleep 1",
        "done",
        "echo $healthy > /mnt/out/healthy",
        "while [ ! -e /mnt/out/stop ]; do sleep 0.2; done",
        "kill -TERM $server",
        "status=0; wait $server || status=$?",
        "echo $status > /mnt/out/exit",
    ]
    return "\n".join(lines) + "\n"


def wait_file(path, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                text = f.read().strip()
            if text:
                return text
        time.sleep(0.25)
    raise AssertionError("no %s after %d s" % (path, timeout))


@MARKS[0]
@MARKS[1]
@pytest.mark.timeout(1800)
def test_the_runtime_stage_runs_on_a_fresh_debian_12_root(tmp_path):
    port = free_port()
    env = {"WARREN_DEFAULT_USER": "admin", "WARREN_DEFAULT_PASS": "change-me", "WARREN_PORT": str(port),
           "WARREN_BIND": "127.0.0.1", "WARREN_MANAGEMENT_PORT": str(free_port()),
           "WARREN_MANAGEMENT_BIND": "127.0.0.1", "WARREN_PROMETHEUS_PORT": "0"}
    out = tmp_path / "out"
    out.mkdir()
    package = deb()
    with open(tmp_path / "nspawn.log", "w") as log:
        box = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--ephemeral",
             "--bind-ro=%s:/mnt/warren" % os.path.dirname(package), "--bind=%s:/mnt/out" % out,
             "-D", debian_root(), "/bin/sh", "-c", play_runtime_stage(env)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
    try:
        healthy = wait_file(out / "healthy", 1200)
        with open(tmp_path / "nspawn.log") as f:
            assert healthy == "1", f.read()[-3000:] + (out / "server.log").read_text()[-3000:]
        assert (out / "volume").read_text().split() == ["warren", "700"]

        class Endpoint:
            host, user, password = "127.0.0.1", "admin", "change-me"
        Endpoint.port = port
        conn = wutil.connect(Endpoint)
        try:
            ch = conn.channel()
            ch.confirm_delivery()
            ch.queue_declare("image-q", durable=True)
            ch.basic_publish("", "image-q", b"in the image", pika.BasicProperties(delivery_mode=2), mandatory=True)
            assert wutil.get_one(ch, "image-q", auto_ack=True)[2] == b"in the image"
        finally:
            wutil.close_quietly(conn)

        (out / "stop").write_text("1")
        assert wait_file(out / "exit", 60) == "0", (out / "server.log").read_text()[-3000:]
        box.wait(60)
    finally:
        if box.poll() is None:
            # SIGTERM makes nspawn kill the whole container; SIGKILL would orphan the server in it.
            (out / "stop").write_text("1")
            box.terminate()
            try:
                box.wait(30)
            except subprocess.TimeoutExpired:
                box.kill()
                box.wait(10)
