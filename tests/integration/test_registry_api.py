"""The registry's HTTP API against a running HubService in registry mode: real
brokers, real store, real frames from the firmware encoder. Changes apply to
the running hub without a restart (docs/registry.md)."""
import asyncio
import http.client
import json
import time

import paho.mqtt.client as paho
import pytest

from anju import frame
from hub.registry import kek
from hub.clock import SystemClock
from hub.registry.db import open_for_hub
from hub.service import HubService
from tests.authkit import bearer

pytestmark = pytest.mark.broker

KEY = bytes(range(1, 33))
SITE = """
site: {id: sunrise}
hub: {registry: true, http: {host: 127.0.0.1, port: 0}}
buildings:
  - id: b1
    flats:
      - id: b1-101
        residents: [{id: r-101, name: Wang Lan, lives_alone: true}]
"""
DOOR = {"kind": "door_sensor", "board": "esp32c3", "flat": "b1-101", "transport": "mqtt",
        "frame_key": KEY.hex()}


def publish(broker, device, counter):
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="pub-%s-%d" % (device, counter))
    c.connect(broker.host, broker.port)
    c.loop_start()
    try:
        data = frame.encode(KEY, device.encode(), frame.T_DOOR, counter, 0, frame.door_body(True))
        c.publish("anju/sunrise/%s/event" % device, data, qos=1).wait_for_publish(5)
    finally:
        c.disconnect()
        c.loop_stop()


def request(port, method, path, body=None, ctype="application/json", auth=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"X-Anju-Actor": "test", **(auth or {})}
        if body is not None:
            headers["Content-Type"] = ctype
            body = json.dumps(body) if ctype == "application/json" else body
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


async def wait_for(pred, timeout=10.0):
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture
async def running(tmp_path, make_broker):
    site_broker, upstream = make_broker("site"), make_broker("upstream")
    (tmp_path / "site.yaml").write_text(SITE)
    reg, site = open_for_hub(tmp_path / "site.yaml", tmp_path / "hub.db", SystemClock(),
                             kek.create(tmp_path / "kek"))
    hub = HubService(site, tmp_path / "hub.db", SystemClock(),
                     {"host": site_broker.host, "port": site_broker.port},
                     {"host": upstream.host, "port": upstream.port}, registry=reg)
    await hub.start(connect_timeout=10)

    async def call(*args, **kwargs):
        kwargs.setdefault("auth", bearer(hub))
        return await asyncio.to_thread(request, hub.http.port, *args, **kwargs)
    try:
        yield hub, call, site_broker
    finally:
        await hub.stop()
        reg.close()


def inactivity_alarms(hub):
    return [a for a in hub.store.alarms() if a["type"] == "inactivity"]


async def test_device_added_through_the_api_is_heard_removed_is_rejected(running):
    hub, call, broker = running
    await asyncio.to_thread(publish, broker, "door-9", 1)
    await wait_for(lambda: hub.store.rejection_counts().get("unknown_device") == 1)

    status, body = await call("POST", "/api/registry/devices/door-9", DOOR)
    assert status == 201 and body["device"]["keys"] == ["frame_key"]
    assert KEY.hex() not in json.dumps(body)
    await asyncio.to_thread(publish, broker, "door-9", 2)
    await wait_for(lambda: [e["device"] for e in hub.store.events()] == ["door-9"])

    status, body = await call("DELETE", "/api/registry/devices/door-9")
    assert status == 200
    await asyncio.to_thread(publish, broker, "door-9", 3)
    await wait_for(lambda: hub.store.rejection_counts().get("unknown_device") == 2)
    assert len(hub.store.events()) == 1
    status, body = await call("GET", "/api/registry/audit")
    assert [(e["actor"], e["action"], e["target"]) for e in body["entries"][:2]] == [
        ("http:test-admin (test)", "remove", "device door-9"),
        ("http:test-admin (test)", "add", "device door-9")]


async def test_changed_inactivity_threshold_is_used_by_the_running_rule(running):
    hub, call, broker = running
    assert (await call("POST", "/api/registry/devices", dict(DOOR, id="door-101")))[0] == 201
    await asyncio.to_thread(publish, broker, "door-101", 1)
    await wait_for(lambda: len(hub.store.events()) == 1)
    await asyncio.sleep(1.5)
    assert inactivity_alarms(hub) == []  # 12 h by default
    status, body = await call("PUT", "/api/registry/flats/b1-101", {"inactivity": "1s"})
    assert status == 200 and body["flat"]["inactivity"] == "1s"
    await wait_for(lambda: len(inactivity_alarms(hub)) == 1, timeout=5)
    assert inactivity_alarms(hub)[0]["flat"] == "b1-101"


@pytest.mark.parametrize("method, path, body, status, detail, field", [
    ("POST", "/api/registry/devices", dict(DOOR, id="door-1", frame_key="00"), 400,
     "registry devices[door-1]: key 'frame_key': must be 32 bytes", "frame_key"),
    ("POST", "/api/registry/flats", {"id": "b1-101", "building": "b1"}, 409, "already exists",
     "id"),
    ("PUT", "/api/registry/residents/nobody", {"name": "X"}, 404, "no resident 'nobody'", None),
    ("DELETE", "/api/registry/flats/b1-101", None, 409, "still has residents", None),
    ("PUT", "/api/registry/flats/b1-101", {"inactivity": "-5"}, 400, "key 'inactivity'",
     "inactivity"),
    ("POST", "/api/registry/residents", {"id": "r-9", "flat": "b1-101", "name": "Chen",
                                         "from": "2026-13-01"}, 400, "is not a date", "from"),
    ("POST", "/api/registry/residents", {"id": "r-9", "flat": "b1-101"}, 400,
     "missing key 'name'", "name"),
    ("POST", "/api/registry/residents", {"id": "r-9", "flat": "b9-1", "name": "Chen"}, 400,
     "no flat 'b9-1'", "flat"),
    ("POST", "/api/registry/residents", {"id": "r-9", "flat": "b1-101", "name": "Chen",
                                         "role": "boss"}, 400, "allowed: owner", "role"),
])
async def test_refused_changes_answer_with_the_reason_and_change_nothing(running, method, path,
                                                                         body, status, detail,
                                                                         field):
    hub, call, _ = running
    before = hub.registry.version(), hub.site
    got, answer = await call(method, path, body)
    assert got == status
    assert detail in answer["detail"]
    assert answer.get("field") == field  # the key alone, for a form to mark it
    assert (hub.registry.version(), hub.site) == before


async def test_import_and_export_over_http(running):
    hub, call, broker = running
    status, body = await call("POST", "/api/registry/import",
                              "device_id,kind,board,flat,transport,frame_key\n"
                              "door-7,door_sensor,esp32c3,b1-101,mqtt,%s\n" % KEY.hex(), "text/csv")
    assert status == 200 and body["version"] == 2
    await asyncio.to_thread(publish, broker, "door-7", 1)
    await wait_for(lambda: [e["device"] for e in hub.store.events()] == ["door-7"])
    status, body = await call("GET", "/api/registry")
    assert status == 200 and body["site"]["devices"][0]["id"] == "door-7"
    assert KEY.hex() not in json.dumps(body)
    status, body = await call("POST", "/api/registry/import",
                              "device_id,kind,board,flat,transport\nd,door_sensor,x,b9,mqtt\n",
                              "text/csv")
    assert status == 400 and "devices.csv row 2, column flat" in body["detail"]
    status, body = await call("POST", "/api/registry/import", "site: {id: elsewhere}\n",
                              "application/yaml")
    assert status == 409 and "restart" in body["detail"]
    assert hub.registry.version() == 2


async def test_cli_reaches_the_running_hub(running, capsys, monkeypatch):
    from host_tools.cli import main
    hub, call, broker = running
    monkeypatch.setenv("ANJU_TOKEN", bearer(hub, "installer")["Authorization"].split()[1])
    url = "http://127.0.0.1:%d" % hub.http.port
    args = ["registry", "--hub", url, "add", "device", "door-5", "kind=door_sensor",
            "board=esp32c3", "flat=b1-101", "transport=mqtt", "frame_key=" + KEY.hex()]
    assert await asyncio.to_thread(main, args) == 0
    await asyncio.to_thread(publish, broker, "door-5", 1)
    await wait_for(lambda: [e["device"] for e in hub.store.events()] == ["door-5"])
    assert await asyncio.to_thread(main, ["registry", "--hub", url, "add", "device", "door-5"]) == 1
    assert "already exists (HTTP 409)" in capsys.readouterr().err
    assert hub.registry.audit(1)[0]["actor"].startswith("http:test-installer (cli:")


@pytest.mark.parametrize("query, ctype, expect", [
    ("?format=yaml", "application/yaml", "site:\n  id: sunrise\n"),
    ("?format=csv&file=residents.csv", "text/csv", "b1,b1-101,r-101,Wang Lan,,true"),
    ("?format=csv&file=devices.csv", "text/csv", "door-3,door_sensor,esp32c3,b1-101,,mqtt"),
])
async def test_export_as_yaml_and_csv_without_keys(running, query, ctype, expect):
    hub, call, _ = running
    assert (await call("POST", "/api/registry/devices", dict(DOOR, id="door-3")))[0] == 201

    def get():
        conn = http.client.HTTPConnection("127.0.0.1", hub.http.port, timeout=10)
        try:
            conn.request("GET", "/api/registry" + query, headers=bearer(hub))
            resp = conn.getresponse()
            return resp.status, resp.getheader("Content-Type"), resp.read().decode()
        finally:
            conn.close()
    status, got_type, text = await asyncio.to_thread(get)
    assert status == 200 and got_type.startswith(ctype)
    assert expect in text and KEY.hex() not in text
