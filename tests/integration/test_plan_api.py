"""The site plan and the responders over the real hub (hub/console/plan.py,
hub/responders/, docs/console.md "The plan"): what each role sees of the plan,
the plan image upload (admin only, PNG/JPEG checked, size-limited), positions
over HTTP and over MQTT on a broker running the generated ACL, the stream's
responder events, the nearest responder and a dispatch that names whom it
sends. Real hub, brokers and aiohttp server."""
import asyncio
import io
import json
import uuid

import aiohttp
import paho.mqtt.client as paho
import pytest

from hub.console import plan as console_plan
from hub.responders.mqtt import ResponderPositions
from tests.authkit import bearer
from tests.integration import hubkit
from tests.integration.hubkit import raise_alarm, start_hub, wait_for
from tests.integration.test_alarm_stream import Events

pytestmark = pytest.mark.broker

RESPONDERS = """
responders:
  - {id: p-zhang, name: 张警官, kind: police}
  - {id: g-wu, name: 吴网格, kind: grid_worker}
  - {id: v-li, name: 李阿姨, kind: volunteer, on_duty: false}
"""
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def site():
    return hubkit.site(extra=RESPONDERS)


@pytest.fixture
async def hub(tmp_path, make_broker):
    made = await start_hub(tmp_path / "hub.db", make_broker("site"), make_broker("upstream"),
                           site())
    try:
        yield made
    finally:
        await made.stop()


def url(hub, path):
    return "http://127.0.0.1:%d%s" % (hub.http.port, path)


async def get(session, hub, path, role):
    async with session.get(url(hub, path), headers=bearer(hub, role)) as r:
        return r.status, await r.json()


async def post_position(session, hub, rid, body, headers):
    async with session.post(url(hub, "/api/responders/%s/position" % rid), json=body,
                            headers=headers) as r:
        return r.status, await r.json()


def responder_headers(hub, rid):
    return bearer(hub, "responder", rid)


async def test_each_role_sees_the_plan_it_may(hub):
    raise_alarm(hub, "tamper:door-101")
    async with aiohttp.ClientSession() as session:
        status, doc = await get(session, hub, "/api/site/plan", "read_only")
        assert status == 200 and doc["auto_layout"] and doc["image"] is None
        (b1,) = doc["buildings"]
        assert b1["id"] == "b1" and len(b1["outline"]) == 4 and b1["auto"]
        flats = {f["id"]: f for floor in b1["floors"] for f in floor["flats"]}
        assert flats["b1-101"]["lives_alone"] and len(flats["b1-101"]["alarms"]) == 1
        assert "residents" not in flats["b1-101"]
        assert "Wang Lan" not in json.dumps(doc) and "张警官" not in json.dumps(doc, ensure_ascii=False)
        assert {r["id"] for r in doc["responders"]} == {"p-zhang", "g-wu", "v-li"}
        # the installer sees the devices and their state; no residents
        status, doc = await get(session, hub, "/api/site/plan", "installer")
        assert [d["id"] for d in doc["devices"]] == ["door-101", "door-102"]
        assert doc["devices"][0]["status"] == "unknown" and len(doc["devices"][0]["alarms"]) == 1
        assert "Wang Lan" not in json.dumps(doc)
        # the police liaison sees the residents and the responders' names
        status, doc = await get(session, hub, "/api/site/plan", "police_liaison")
        names = [r["name"] for floor in doc["buildings"][0]["floors"] for f in floor["flats"]
                 for r in f["residents"]]
        assert sorted(names) == ["Li Wei", "Wang Lan"]
        assert {r["name"] for r in doc["responders"]} == {"张警官", "吴网格", "李阿姨"}
        # a responder's account sees nothing of the plan
        async with session.get(url(hub, "/api/site/plan"),
                               headers=responder_headers(hub, "p-zhang")) as r:
            assert r.status == 403


async def test_the_plan_image_is_for_the_admin_and_checked(hub):
    async with aiohttp.ClientSession() as session:
        async def upload(role, data, ctype):
            async with session.post(url(hub, "/api/site/plan-image"), data=io.BytesIO(data),
                                    headers={**bearer(hub, role), "Content-Type": ctype}) as r:
                return r.status, await r.json()
        assert (await upload("staff", PNG, "image/png"))[0] == 403
        assert (await upload("installer", PNG, "image/png"))[0] == 403
        assert (await upload("admin", b"GIF89a" + bytes(20), "image/gif"))[1]["error"] == \
            "unsupported_media_type"
        assert (await upload("admin", b"<svg/>", "image/png"))[1]["error"] == "bad_image"
        big = PNG + bytes(console_plan.MAX_IMAGE_BYTES)
        assert (await upload("admin", big, "image/png"))[0] == 413
        async with session.get(url(hub, "/api/site/plan-image"),
                               headers=bearer(hub, "read_only")) as r:
            assert r.status == 404
        assert await upload("admin", PNG, "image/png") == (201, {"image": "/api/site/plan-image",
                                                                 "bytes": len(PNG)})
        async with session.get(url(hub, "/api/site/plan-image"),
                               headers=bearer(hub, "read_only")) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "image/png"
            assert await r.read() == PNG
        status, doc = await get(session, hub, "/api/site/plan", "read_only")
        assert doc["image"] == "/api/site/plan-image"
        # a JPEG replaces the PNG: one plan image
        jpeg = b"\xff\xd8\xff\xe0" + bytes(40)
        assert (await upload("admin", jpeg, "image/jpeg"))[0] == 201
        async with session.get(url(hub, "/api/site/plan-image"),
                               headers=bearer(hub, "read_only")) as r:
            assert r.headers["Content-Type"] == "image/jpeg" and await r.read() == jpeg


async def test_positions_over_http_reach_the_stream_and_pick_the_nearest(hub):
    alarm = raise_alarm(hub, "tamper:door-101")
    async with aiohttp.ClientSession() as session:
        response = await session.get(url(hub, "/api/alarms/stream"), headers=bearer(hub, "staff"))
        events = Events(response)
        await events.until("ready")
        centre = hub.responder_board.size() and console_plan.alarm_point(hub.site, alarm)
        assert await post_position(session, hub, "p-zhang", {"x": centre[0] + 300, "y": centre[1]},
                                   responder_headers(hub, "p-zhang")) == (200, {
            "responder": hub.responder_board.doc("p-zhang")})
        event, _, data = await events.next(timeout=1.0)
        assert event == "responder" and data["responder"]["id"] == "p-zhang"
        assert data["responder"]["x"] == centre[0] + 300 and data["responder"]["source"] == "http"
        # only one's own position; the admin may report for anyone
        status, body = await post_position(session, hub, "g-wu", {"x": 1, "y": 1},
                                           responder_headers(hub, "p-zhang"))
        assert (status, body["error"]) == (403, "forbidden")
        status, body = await post_position(session, hub, "g-wu", {"x": centre[0] + 10,
                                                                  "y": centre[1]},
                                           bearer(hub, "admin"))
        assert status == 200
        assert (await post_position(session, hub, "g-wu", {"x": 1, "y": 1},
                                    bearer(hub, "staff")))[0] == 403
        assert (await post_position(session, hub, "nobody", {"x": 1, "y": 1},
                                    bearer(hub, "admin")))[1]["error"] == "unknown_responder"
        assert (await post_position(session, hub, "g-wu", {"x": -5, "y": 1},
                                    bearer(hub, "admin")))[1]["error"] == "bad_field"
        # off duty: never suggested, whatever its position
        assert (await post_position(session, hub, "v-li", {"x": centre[0], "y": centre[1]},
                                    bearer(hub, "admin")))[0] == 200
        status, near = await get(session, hub, "/api/alarms/%s/responders" % alarm["id"], "staff")
        assert [(r["id"], r["distance"]) for r in near["responders"]] == [("g-wu", 10.0),
                                                                          ("p-zhang", 300.0)]
        # dispatch with the suggestion: the same command path records whom it sent
        async with session.post(url(hub, "/api/alarms/%s/actions" % alarm["id"]),
                                json={"action": "dispatch", "assignee": "g-wu"},
                                headers=bearer(hub, "staff")) as r:
            assert r.status == 200 and (await r.json())["outcome"] == "applied"
        stored = hub.store.alarm(alarm["id"])
        assert stored["state"] == "dispatched" and stored["assignee"] == "g-wu"
        assert stored["history"][-1]["assignee"] == "g-wu"
        response.close()


async def test_positions_over_mqtt_with_the_generated_acl(tmp_path, make_site_broker, make_broker):
    broker = make_site_broker(site())
    hub = await start_hub(tmp_path / "hub.db", broker, make_broker("upstream"), site())
    try:
        (component,) = [c for c in hub.components if isinstance(c, ResponderPositions)]
        await component.wait_ready(10)
        board = hub.responder_board

        def publish(user, rid, payload):
            c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="r-" + uuid.uuid4().hex[:8])
            login = broker.login(user)
            c.username_pw_set(login["username"], login["password"])
            c.connect(broker.host, broker.port)
            c.loop_start()
            try:
                c.publish("anju/sunrise/responders/%s/position" % rid, payload,
                          qos=1).wait_for_publish(5)
            finally:
                c.disconnect()
                c.loop_stop()

        # another responder's topic and a device's login are refused by the broker
        await asyncio.to_thread(publish, "p-zhang", "g-wu", b'{"x": 5, "y": 5}')
        await asyncio.to_thread(publish, "door-101", "g-wu", b'{"x": 6, "y": 6}')
        # a bad report is dropped by the hub, the good one after it arrives (the control)
        await asyncio.to_thread(publish, "p-zhang", "p-zhang", b'{"x": "here"}')
        await asyncio.to_thread(publish, "p-zhang", "p-zhang", b'{"x": 120, "y": 40}')
        await wait_for(lambda: board.doc("p-zhang")["x"] == 120.0, what="the position")
        assert board.doc("p-zhang")["source"] == "mqtt"
        assert board.doc("g-wu")["x"] is None
        assert component.rejected == 1
    finally:
        await hub.stop()


async def test_a_platform_dispatch_over_mqtt_names_whom_it_sends(tmp_path, make_broker):
    upstream = make_broker("upstream")
    hub = await start_hub(tmp_path / "hub.db", make_broker("site"), upstream, site())
    platform = await asyncio.to_thread(hubkit.Platform, upstream)
    try:
        alarm = raise_alarm(hub, "tamper:door-101")
        cid = "cmd-" + uuid.uuid4().hex[:8]
        await asyncio.to_thread(platform.send, {
            "schema": "anju.command/1", "command_id": cid, "alarm_id": alarm["id"],
            "action": "dispatch", "actor": "police-desk-7", "assignee": "p-zhang"})
        await wait_for(lambda: platform.result(cid) is not None, what="the command's result")
        assert platform.result(cid)["outcome"] == "applied"
        stored = hub.store.alarm(alarm["id"])
        assert (stored["state"], stored["assignee"]) == ("dispatched", "p-zhang")
        # the dispatched version goes upstream naming whom it sent
        await wait_for(lambda: any(m.get("assignee") == "p-zhang" for m in platform.on("alarms")),
                       what="the new version upstream")
    finally:
        await asyncio.to_thread(platform.close)
        await hub.stop()
