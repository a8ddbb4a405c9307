"""The webhook target against a real local HTTPS server (stdlib http.server + ssl
with certificates from host_tools/certs.py) that verifies the HMAC signature
the way docs/forwarding.md tells a platform to."""
import asyncio
import http.server
import json
import ssl
import threading
import time

import pytest

from hub import ConfigError
from hub.clock import SystemClock
from hub.forward.outbox import Backoff, Wakeups
from hub.store import Store
from hub.forward.webhook import WebhookForwarder, parse_config, verify
from host_tools import certs

SECRET = b"0123456789abcdef-webhook-secret"


class Platform(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script):
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = list(script)  # per request: a status, or ("sleep", s) then 200
        self.requests = []  # (idempotency key, doc, signature valid)
        self.lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        ok = verify(SECRET, int(self.headers["X-Anju-Timestamp"]), body,
                    self.headers["X-Anju-Signature"])
        with self.server.lock:
            step = self.server.script.pop(0) if self.server.script else 200
            self.server.requests.append((self.headers["Idempotency-Key"], json.loads(body), ok))
        if isinstance(step, tuple):
            time.sleep(step[1])
            step = 200
        self.send_response(step if ok else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    certs.make_ca(d)
    certs.make_server(d, "platform", ["127.0.0.1"])
    return d


@pytest.fixture
def serve(pki):
    servers = []

    def start(script=()):
        srv = Platform(script)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(pki / "platform.pem", pki / "platform.key")
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv
    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def webhook_config(tmp_path, pki, srv, timeout=2.0):
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET + b"\n")
    return parse_config({"url": "https://127.0.0.1:%d/anju/alarms" % srv.server_address[1],
                         "secret_file": str(secret), "timeout": timeout,
                         "ca": str(pki / "ca.pem")})


def queue(store, alarm_id, seqs):
    with store.transaction() as tx:
        for seq in seqs:
            doc = {"id": alarm_id, "seq": seq, "type": "smoke", "severity": "critical",
                   "state": "raised"}
            if seq == 1:
                tx.insert_alarm(doc, 1.0, "t")
            else:
                tx.update_alarm(doc, 1.0, "rules", None, "t")


async def drain(tmp_path, config, setup, until):
    store = Store(tmp_path / "hub.db")
    store.targets = ("webhook",)
    setup(store)
    fwd = WebhookForwarder(store, config, SystemClock(), Wakeups(),
                           backoff=Backoff(base=0.02, cap=0.1))
    task = asyncio.create_task(fwd.run())
    fwd.wakeup.set()
    try:
        end = time.monotonic() + 15
        while time.monotonic() < end and not until(store):
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
        return store, fwd
    finally:
        task.cancel()


async def test_signed_delivered_once_and_in_order_per_alarm(tmp_path, pki, serve):
    srv = serve()
    store, fwd = await drain(tmp_path, webhook_config(tmp_path, pki, srv),
                             lambda s: [queue(s, a, range(1, 6)) for a in ("a", "b", "c")],
                             lambda s: s.outbox_depth() == 0)
    assert store.outbox_depth() == 0 and fwd.delivered == 15
    assert all(ok for _, _, ok in srv.requests)
    keys = [k for k, _, _ in srv.requests]
    assert sorted(keys) == sorted("%s:%d" % (a, s) for a in "abc" for s in range(1, 6))
    for a in "abc":
        assert [d["seq"] for k, d, _ in srv.requests if d["id"] == a] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("script, delivered, dead", [
    ([500, 503], 1, 0),          # server errors: retried until 2xx
    ([429, 408], 1, 0),          # throttled / request timeout: retried
    ([("sleep", 1.0)], 1, 0),    # our timeout (0.4 s): retried
    ([400], 0, 1),               # refused for good: dead letter
    ([404], 0, 1),
], ids=["5xx", "429-408", "timeout", "400", "404"])
async def test_retries_and_dead_letters(tmp_path, pki, serve, script, delivered, dead):
    srv = serve(script)
    store, fwd = await drain(tmp_path, webhook_config(tmp_path, pki, srv, timeout=0.4),
                             lambda s: queue(s, "a", [1]),
                             lambda s: s.outbox_depth() == 0)
    assert store.outbox_depth() == 0
    assert (fwd.delivered, fwd.dead) == (delivered, dead)
    letters = store.dead_letters()
    assert len(letters) == dead
    if dead:
        assert letters[0]["alarm_id"] == "a" and letters[0]["reason"].startswith("HTTP 4")
        assert len(srv.requests) == 1  # never retried
    else:
        assert len(srv.requests) == len(script) + 1
        assert fwd.retried == len(script)


async def test_a_retried_version_holds_the_next_one_of_its_alarm(tmp_path, pki, serve):
    srv = serve([503, 503, 503])  # the first request (a:1) fails three times
    store, fwd = await drain(tmp_path, webhook_config(tmp_path, pki, srv),
                             lambda s: queue(s, "a", [1, 2]),
                             lambda s: s.outbox_depth() == 0)
    seqs = [d["seq"] for _, d, _ in srv.requests]
    assert seqs == [1, 1, 1, 1, 2]


@pytest.mark.parametrize("node, key", [
    ({"url": "http://x/", "secret_file": "s"}, "url"),
    ({"url": "https://x/"}, "secret_file"),
    ({"url": "https://x/", "secret_file": "/nonexistent"}, "secret_file"),
    ({"url": "https://x/", "secret_file": "SHORT"}, "secret_file"),
    ({"url": "https://x/", "secret_file": "GOOD", "timeout": 0}, "timeout"),
])
def test_config_errors_name_the_key(tmp_path, node, key):
    (tmp_path / "short").write_bytes(b"tiny")
    (tmp_path / "good").write_bytes(SECRET)
    node = dict(node)
    node["secret_file"] = {"SHORT": str(tmp_path / "short"), "GOOD": str(tmp_path / "good")}.get(
        node.get("secret_file"), node.get("secret_file"))
    if node["secret_file"] is None:
        del node["secret_file"]
    with pytest.raises(ConfigError, match=key):
        parse_config(node)
