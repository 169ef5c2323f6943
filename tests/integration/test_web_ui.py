"""The management web UI at / on the management port: its files over plain HTTP, and the
end-to-end test in a real headless browser (tests/ui/e2e.mjs: Debian's chromium driven by
playwright-core) that logs in, creates a queue, publishes, gets the message back and saves a
screenshot.

The browser test needs chromium, node and tests/ui/node_modules (scripts/install-test-deps.sh,
which scripts/test.sh runs); when they are missing it fails, it does not skip. Warren's own UI,
so the whole file is skipped against RabbitMQ, whose UI is another one.
"""
import os
import shutil
import signal
import subprocess
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.needs_own_server

HERE = os.path.dirname(os.path.abspath(__file__))
UI_TEST_DIR = os.path.join(os.path.dirname(HERE), "ui")
E2E = os.path.join(UI_TEST_DIR, "e2e.mjs")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
E2E_TIMEOUT = 150  # seconds; e2e.mjs gives up by itself after 120
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def get(srv, path, headers=None):
    """-> (status, headers, body bytes); no credentials unless given in headers."""
    req = urllib.request.Request("http://%s:%d%s" % (srv.host, srv.management_port, path),
                                 headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def test_root_is_the_app_page(server):
    status, headers, body = get(server, "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    assert b'<script type="module" src="app.js">' in body
    assert b'id="login-form"' in body
    assert get(server, "/index.html")[2] == body


def test_assets_are_served_with_their_types(server):
    for path, content_type, marker in [("/app.js", "text/javascript; charset=utf-8", b"import "),
                                       ("/app.css", "text/css; charset=utf-8", b"#topbar"),
                                       ("/chart.js", "text/javascript; charset=utf-8", b"canvas")]:
        status, headers, body = get(server, path)
        assert status == 200, path
        assert headers["Content-Type"] == content_type, path
        assert marker in body, path


def test_other_paths_are_404_and_the_api_is_unchanged(server):
    for path in ["/nope", "/app.jsx", "/appXjs", "/ui/app.js", "/api/no-such-endpoint"]:
        assert get(server, path)[0] == 404, path
    assert get(server, "/api/overview")[0] == 401


def test_ui_requests_get_401_without_a_browser_login_prompt(server):
    status, headers, _ = get(server, "/api/whoami")
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Basic realm="RabbitMQ Management"'  # curl, rabbitmqadmin
    status, headers, _ = get(server, "/api/whoami", {"X-Requested-With": "XMLHttpRequest"})
    assert status == 401
    assert "WWW-Authenticate" not in headers


def require_browser_tools():
    problems = []
    if not os.access(CHROMIUM, os.X_OK):
        problems.append("no chromium at %s" % CHROMIUM)
    if shutil.which("node") is None:
        problems.append("no node on PATH")
    if not os.path.isdir(os.path.join(UI_TEST_DIR, "node_modules", "playwright-core")):
        problems.append("no %s/node_modules/playwright-core" % UI_TEST_DIR)
    if problems:
        pytest.fail("the web UI browser test cannot run: %s; run scripts/install-test-deps.sh"
                    % "; ".join(problems), pytrace=False)


@pytest.mark.timeout(E2E_TIMEOUT + 30)
def test_browser_logs_in_creates_a_queue_publishes_and_gets_it_back(server_factory, tmp_path):
    require_browser_tools()
    srv = server_factory()
    screenshot = tmp_path / "web-ui.png"
    url = "http://%s:%d/" % (srv.host, srv.management_port)
    proc = subprocess.Popen(["node", E2E, url, srv.user, srv.password, str(screenshot)],
                            cwd=UI_TEST_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=dict(os.environ, CHROMIUM=CHROMIUM))
    try:
        output, _ = proc.communicate(timeout=E2E_TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM first: playwright then closes the browser it launched.
        proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        pytest.fail("e2e.mjs did not finish in %d s:\n%s" % (E2E_TIMEOUT, output.decode("utf-8", "replace")))
    text = output.decode("utf-8", "replace")
    assert proc.returncode == 0, "e2e.mjs exited with %d:\n%s" % (proc.returncode, text)
    assert "e2e: PASSED" in text, text
    data = screenshot.read_bytes()
    assert data.startswith(PNG_SIGNATURE), "not a PNG: %s" % screenshot
    assert len(data) > 10000, "a %d-byte screenshot is too small to show the page" % len(data)
    print("web UI screenshot: %s" % screenshot)
