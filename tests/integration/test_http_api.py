"""The hub's HTTP API against a running HubService: real brokers, real store,
real face models (docs/http_api.md).

Requests are made from a worker thread (`asyncio.to_thread`): the handlers
reach the store through the hub's loop, which must keep running meanwhile.
"""
import asyncio
import base64
import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub.config import site as config
from hub.clock import SystemClock
from hub.service import HubService
from tests.authkit import bearer
from tests.face.standins import Subscriber
from tests.facedata import IMAGES, MODELS

REPO = Path(__file__).resolve().parents[2]
SITE = "garden-court"

pytestmark = pytest.mark.broker

SITE_YAML = """
site: {id: garden-court, name: Garden Court}
buildings:
  - id: b1
    flats:
      - id: b1-101
hub:
  http: {host: 127.0.0.1, port: 0}
"""

FACE_YAML = """
face:
  models_dir: "%(models)s"
  embedding_model: "%(models)s/mobilefacenet_batch1.tflite"
  detector_ranges: [short, full]
  gallery: "%(gallery)s"
  snapshots: "%(snap)s"
"""


def b64(path):
    return base64.b64encode(Path(path).read_bytes()).decode()


class Client:
    def __init__(self, port, auth=None):
        self.port = port
        self.auth = auth or {}

    def _request(self, method, path, body, headers):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {**self.auth, **(headers or {})}
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
            if body is not None:
                headers = {"Content-Type": "application/json", **headers}
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, json.loads(data), dict(resp.getheaders())
        finally:
            conn.close()

    async def __call__(self, method, path, body=None, headers=None):
        return await asyncio.to_thread(self._request, method, path, body, headers)


async def wait_until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


@pytest.fixture
def make_hub(tmp_path, make_broker):
    """Factory: (hub, client, upstream broker) for a started hub; `face=False` without a face section."""
    async def start(face=True):
        site_broker, upstream = make_broker("site"), make_broker("upstream")
        text = SITE_YAML
        if face:
            text += FACE_YAML % {"models": MODELS, "gallery": tmp_path / "gallery.db",
                                 "snap": tmp_path / "snap"}
        (tmp_path / "site.yaml").write_text(text)
        hub = HubService(config.load_site(tmp_path / "site.yaml"), tmp_path / "hub.db", SystemClock(),
                         {"host": site_broker.host, "port": site_broker.port},
                         {"host": upstream.host, "port": upstream.port})
        await hub.start(connect_timeout=10)
        return hub, Client(hub.http.port, bearer(hub)), upstream

    return start


async def test_health_reports_links_outbox_and_uptime(make_hub):
    hub, call, _ = await make_hub()
    try:
        assert hub.http.port > 0
        assert await wait_until(lambda: hub.links()["upstream"])
        status, body, _ = await call("GET", "/health")
        assert status == 200
        assert body["mqtt"] == {"connected": True} and body["upstream"] == {"connected": True}
        assert body["status"] == "ok" and body["outbox_depth"] == 0 and body["uptime_s"] >= 0
        assert body["face"] == {"enabled": True, "entrances": []}
    finally:
        await hub.stop()


async def test_alarms_list_shows_an_alarm_raised_from_another_thread(make_hub):
    hub, call, upstream = await make_hub()
    seen = Subscriber(upstream.host, upstream.port, f"anju/upstream/{SITE}/alarms")
    try:
        alarm_id = await asyncio.to_thread(
            hub.face.alarms.raise_alarm, "watchlist_face", "high",
            {"site": SITE, "building": "b1", "entrance": "b1-main"},
            {"snapshot": "2026-11-24/x.jpg", "score": 0.71, "person_id": "w-7"})
        status, body, _ = await call("GET", "/api/alarms")
        assert status == 200 and body["total"] == 1
        alarm = body["alarms"][0]
        assert alarm["id"] == alarm_id and alarm["type"] == "watchlist_face"
        assert alarm["evidence"] == {"snapshot": "2026-11-24/x.jpg", "score": 0.71, "person_id": "w-7"}
        assert await wait_until(lambda: seen.messages)
        assert seen.messages[0][1]["id"] == alarm_id
        status, body, _ = await call("GET", "/api/alarms?limit=abc")
        assert (status, body["error"]) == (400, "bad_request")
    finally:
        seen.close()
        await hub.stop()


async def test_enroll_list_identify_delete_and_the_access_log(make_hub):
    hub, call, _ = await make_hub()
    try:
        status, body, _ = await call("POST", "/api/face/persons",
                                     {"id": "r-101", "name": "Resident", "entrances": ["b1-main"],
                                      "photos": [b64(IMAGES / "obama" / sorted(os.listdir(IMAGES / "obama"))[0])]})
        assert status == 201, body
        assert body["id"] == "r-101" and body["list"] == "resident" and body["embeddings"] == 1

        status, body, _ = await call("GET", "/api/face/persons")
        assert status == 200 and [p["id"] for p in body["persons"]] == ["r-101"]
        assert body["persons"][0]["entrances"] == ["b1-main"]
        status, body, _ = await call("GET", "/api/face/persons?list=watch")
        assert status == 200 and body["persons"] == []

        others = sorted(os.listdir(IMAGES / "obama"))[1:]
        status, body, _ = await call("POST", "/api/face/identify", {"photo": b64(IMAGES / "obama" / others[0])})
        assert status == 200 and body["resident"]["id"] == "r-101" and body["resident"]["score"] >= 0.4
        biden = sorted(os.listdir(IMAGES / "biden"))[0]
        status, body, _ = await call("POST", "/api/face/identify", {"photo": b64(IMAGES / "biden" / biden)})
        assert status == 200 and body["resident"]["id"] is None

        status, body, _ = await call("POST", "/api/face/persons",
                                     {"id": "r-102", "name": "X", "photos": [base64.b64encode(b"no image").decode()]})
        assert (status, body["error"]) == (422, "bad_image")

        status, body, _ = await call("DELETE", "/api/face/persons/r-101")
        assert (status, body) == (200, {"deleted": "r-101"})
        status, body, _ = await call("DELETE", "/api/face/persons/r-101")
        assert (status, body["error"]) == (404, "not_found")
        status, body, _ = await call("GET", "/api/face/persons")
        assert body["persons"] == []

        status, body, _ = await call("GET", "/api/access-log")
        assert status == 200
        assert [e["kind"] for e in body["entries"]] == ["face_person_deleted", "face_person_enrolled"]
        assert body["entries"][1]["payload"]["person_id"] == "r-101"
        # who did it: the account, in the access log and the account audit
        assert [e["payload"]["account"] for e in body["entries"]] == ["test-admin"] * 2
        audit = [(e["account"], e["action"], e["outcome"]) for e in hub.accounts.audit(50)]
        assert ("test-admin", "POST face_enroll", "ok") in audit
        assert ("test-admin", "DELETE face_delete", "ok") in audit
        status, body, _ = await call("GET", "/api/access-log?kind=face_person_enrolled&limit=1")
        assert [e["kind"] for e in body["entries"]] == ["face_person_enrolled"]
        status, body, _ = await call("GET", "/api/access-log?limit=0")
        assert (status, body["error"]) == (400, "bad_request")
        # the API's view is the store's
        assert [e["kind"] for e in hub.store.access_log()] == ["face_person_deleted", "face_person_enrolled"]
    finally:
        await hub.stop()


@pytest.mark.parametrize("method,path,body,status,error", [
    ("POST", "/api/face/identify", b"{not json", 400, "bad_json"),
    ("POST", "/api/face/identify", b"[1, 2]", 400, "bad_json"),
    ("POST", "/api/face/identify", b"", 400, "bad_json"),
    ("POST", "/api/face/identify", {"photo": "%%%not base64"}, 400, "bad_request"),
    ("POST", "/api/face/persons", {"id": "r-1", "name": "A", "photos": []}, 400, "bad_request"),
    ("POST", "/api/face/persons", {"id": "r-1", "name": "A", "photos": "x"}, 400, "bad_request"),
    ("GET", "/api/nothing-here", None, 404, "not_found"),
    ("GET", "/console/no-such-page.html", None, 404, "not_found"),
    ("GET", "/console/../service.py", None, 404, "not_found"),
    ("POST", "/", {}, 405, "method_not_allowed"),
    ("POST", "/health", {}, 405, "method_not_allowed"),
    ("PUT", "/api/face/persons", {}, 405, "method_not_allowed"),
    ("GET", "/api/face/persons/r-1", None, 405, "method_not_allowed"),
])
async def test_errors_are_json_with_status(make_hub, method, path, body, status, error):
    hub, call, _ = await make_hub()
    try:
        got, doc, headers = await call(method, path, body)
        assert (got, doc["error"]) == (status, error), doc
        assert headers["Content-Type"] == "application/json" and doc["detail"]
        if status == 405:
            assert headers["Allow"]
        # the server keeps serving after every error
        assert (await call("GET", "/health"))[0] == 200
    finally:
        await hub.stop()


def _raw_request(port, head):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        data = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), json.loads(rest.partition(b"\r\n\r\n")[2])


async def test_oversized_body_is_refused_before_it_is_read(make_hub):
    hub, call, _ = await make_hub()
    try:
        head = (b"POST /api/face/persons HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Authorization: %s\r\n"
                b"Content-Length: %d\r\n\r\n" % (call.auth["Authorization"].encode(), 10 * 1024 * 1024 + 1))
        status, doc = await asyncio.to_thread(_raw_request, hub.http.port, head)
        assert (status, doc["error"]) == (413, "payload_too_large")
        # a body just under the limit is read (and refused for what it says, not its size)
        big = b'{"photo": "' + b"A" * (9 * 1024 * 1024) + b'"}'
        status, doc, _ = await call("POST", "/api/face/identify", big)
        assert (status, doc["error"]) == (422, "bad_image")
    finally:
        await hub.stop()


async def test_a_failing_handler_is_a_500_and_the_server_lives_on(make_hub, caplog):
    hub, call, _ = await make_hub()
    try:
        hub.face.gallery.close()   # the gallery's database is gone under the API
        status, doc, _ = await call("GET", "/api/face/persons")
        assert (status, doc["error"]) == (500, "internal")
        assert "http GET /api/face/persons failed" in caplog.text
        assert (await call("GET", "/health"))[0] == 200
    finally:
        await hub.stop()


async def test_without_a_face_section_the_face_routes_are_404(make_hub):
    hub, call, _ = await make_hub(face=False)
    try:
        assert hub.face is None
        status, doc, _ = await call("GET", "/api/face/persons")
        assert (status, doc["error"]) == (404, "face_disabled")
        status, doc, _ = await call("GET", "/health")
        assert status == 200 and doc["face"] == {"enabled": False, "entrances": []}
    finally:
        await hub.stop()
    # stopped means stopped: the port no longer answers
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", hub.http.port), timeout=2).close()


def test_a_hub_without_face_never_imports_the_face_packages(tmp_path):
    (tmp_path / "site.yaml").write_text(SITE_YAML)
    code = (
        "import sys, asyncio\n"
        "from hub.config import site as config\n"
        "from hub.clock import SystemClock\n"
        "from hub.service import HubService\n"
        "site = config.load_site(sys.argv[1])\n"
        "hub = HubService(site, sys.argv[2], SystemClock(), {'host': '127.0.0.1', 'port': 1},"
        " {'host': '127.0.0.1', 'port': 1})\n"
        "bad = sorted(m for m in sys.modules if m.startswith('hub.face') or m in ('numpy', 'cv2'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "site.yaml"), str(tmp_path / "hub.db")],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "[]"


def test_anju_hub_run_serves_the_api_from_the_site_file(tmp_path, make_broker):
    from host_tools.mosquitto import free_port
    site_broker, upstream = make_broker("site"), make_broker("upstream")
    port = free_port()
    (tmp_path / "site.yaml").write_text(SITE_YAML.replace("port: 0", "port: %d" % port))
    with open(tmp_path / "hub.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "host_tools.cli", "hub", "run", "--config", str(tmp_path / "site.yaml"),
             "--db", str(tmp_path / "hub.db"), "--mqtt", "%s:%d" % (site_broker.host, site_broker.port),
             "--upstream", "%s:%d" % (upstream.host, upstream.port)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        client, deadline, body = Client(port), time.monotonic() + 30, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status, body, _ = client._request("GET", "/health", None, None)
                if body["mqtt"]["connected"] and body["upstream"]["connected"]:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert body is not None and body["status"] == "ok", (tmp_path / "hub.log").read_text()
        assert body["face"]["enabled"] is False
    finally:
        proc.terminate()
        assert proc.wait(timeout=20) == 0, (tmp_path / "hub.log").read_text()


def test_an_invalid_face_section_stops_the_hub_with_a_config_error(tmp_path):
    from hub import ConfigError
    (tmp_path / "site.yaml").write_text(SITE_YAML + "face:\n  agree_frame: 3\n")
    site = config.load_site(tmp_path / "site.yaml")
    with pytest.raises(ConfigError, match=r"site.yaml.*face: unknown keys \['agree_frame'\]"):
        HubService(site, tmp_path / "hub.db", SystemClock(), {"host": "127.0.0.1", "port": 1},
                   {"host": "127.0.0.1", "port": 1})
